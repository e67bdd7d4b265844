package pipeline

import (
	"context"
	"hash/maphash"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/policy"
)

func TestContributions(t *testing.T) {
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.FromBytes("p.yaml", []byte(`
version: v1
purposes: [analytics]
pseudonym_key: k1
outputs:
  - {name: analytics, topic: clean, require: [analytics], when: {type: [track]}}
  - {name: dropped, topic: aggs, kind: aggregate, of: analytics, epsilon: 1, delta: 1e-6, group_by: [context.location.country, event], sum: {field: properties.revenue, min: 0, max: 100}}
`), keys)
	if err != nil {
		t.Fatal(err)
	}
	st := &mapStore{recs: map[string]consent.Record{"granted": {Found: true, Version: 1, Granted: map[string]bool{"analytics": true}}}}
	seed := maphash.MakeSeed()
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: st, DeadLetterTopic: "dlq", AggregateSeed: seed})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(key, value string) kafka.Message {
		return kafka.Message{Topic: "raw", Key: []byte(key), Value: []byte(value)}
	}
	res, err := p.Process(context.Background(), []kafka.Message{
		msg("u1", `{"type":"track","event":"Order Completed","userId":"u1","context":{"location":{"country":"DE"}},"properties":{"revenue":12.5}}`),
		msg("u1", `{"type":"track","event":"Viewed","userId":"u1","context":{"location":{"country":"alice@example.com"}}}`),
		msg("other", `{"type":"track","event":"Viewed","userId":"u2"}`),
		msg("granted", `{"type":"track","event":"Viewed","userId":"granted"}`), // written: not counted
		msg("u3", `{"type":"identify","userId":"u3"}`),                         // filtered: not counted
		msg("", `{"type":"track","event":"Viewed"}`),                           // no subject: not counted
		msg("u4", `not json`), // dead-lettered: not counted
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Contribution{
		{Subject: maphash.String(seed, "u1"), Group: "DE" + GroupSep + "Order Completed", Value: 12.5},
		{Subject: maphash.String(seed, "u1"), Group: policy.SegmentRedacted + GroupSep + "Viewed"},
		{Excluded: ExcludedKeyNotSubject},
	}
	got := res.Accounting.Contributions
	if len(got) != len(want) {
		t.Fatalf("contributions = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("contribution %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A refused write does not lose the batch's contributions.
	acc := Account(res, &WriteReport{Refused: []Refusal{{Output: "analytics", Reason: "too_large", DeadLettered: true}}})
	if len(acc.Contributions) != len(want) {
		t.Fatalf("Account kept %d contributions, want %d", len(acc.Contributions), len(want))
	}
}
