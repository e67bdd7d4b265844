package pipeline

import (
	"context"
	"hash/maphash"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/lib/hooks"
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
	obs := &partitionObserver{}
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: st, DeadLetterTopic: "dlq", AggregateSeed: seed, Hooks: hooks.List{obs}})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(key, value string) kafka.Message {
		return kafka.Message{Topic: "raw", Partition: 3, Key: []byte(key), Value: []byte(value)}
	}
	res, err := p.Process(context.Background(), []kafka.Message{
		msg("u1", `{"type":"track","event":"Order Completed","userId":"u1","context":{"location":{"country":"DE"}},"properties":{"revenue":12.5}}`),
		msg("u1", `{"type":"track","event":"Viewed","userId":"u1","context":{"location":{"country":"alice@example.com"}}}`),
		msg("u1", `{"type":"track","event":"Order Completed","userId":"u1","context":{"location":{"country":"DE"}}}`),       // DE admitted: from the labels
		msg("user-77", `{"type":"track","event":"Viewed","userId":"user-77","context":{"location":{"country":"user-77"}}}`), // its own id
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
		{Subject: maphash.String(seed, "u1"), Group: "DE" + GroupSep + "Order Completed"},
		{Subject: maphash.String(seed, "user-77"), Group: policy.SegmentRedacted + GroupSep + "Viewed"},
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
	// The batch's partition is told with its contributions.
	if obs.calls != 1 || obs.topic != "raw" || obs.partition != 3 || !slices.Equal(obs.contributions, got) {
		t.Fatalf("observed %d calls, %s/%d %+v; want one, raw/3 with the batch's contributions", obs.calls, obs.topic, obs.partition, obs.contributions)
	}
	// A refused write does not lose the batch's contributions.
	acc := Account(res, &WriteReport{Refused: []Refusal{{Output: "analytics", Reason: "too_large", DeadLettered: true}}})
	if len(acc.Contributions) != len(want) {
		t.Fatalf("Account kept %d contributions, want %d", len(acc.Contributions), len(want))
	}
}

// partitionObserver is a PartitionObserver that keeps the last call.
type partitionObserver struct {
	calls         int
	topic         string
	partition     int
	contributions []Contribution
}

func (o *partitionObserver) ObservePartition(topic string, partition int, cs []Contribution) {
	o.calls++
	o.topic, o.partition, o.contributions = topic, partition, slices.Clone(cs)
}

// BenchmarkProcessBatchAggregate is BenchmarkProcessBatch with an
// aggregate output over analytics (two group_by fields and a sum) added
// to the shipped policy, and messages keyed by their subject as the
// aggregate requires: what an aggregate costs the decide stage.
func BenchmarkProcessBatchAggregate(b *testing.B) {
	msgs, st := synthBatch(1000)
	p := aggregateProcessor(b, st)
	keyBySubject(b, p.cfg.Policy, msgs)
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		b.Fatal(err)
	}
	benchProcess(b, p, msgs)
	b.ReportMetric(float64(len(res.Accounting.Contributions)), "contributions/batch")
}

// aggregateProcessor returns a processor of the shipped policy with an
// aggregate output over analytics (two group_by fields and a sum).
func aggregateProcessor(b *testing.B, st consent.Store) *Processor {
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	text, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	withAgg := strings.Replace(string(text), "outputs:\n", `outputs:
  - name: dropped
    kind: aggregate
    topic: aggs
    of: analytics
    group_by: [context.location.country, event]
    epsilon: 1
    delta: 1e-6
    sum: {field: properties.revenue, min: 0, max: 500}
`, 1)
	pol, err := policy.FromBytes("policy.yaml", []byte(withAgg), keys)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: st, DeadLetterTopic: "dlq", MaxMessageBytes: 4096})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkContribute is the part of BenchmarkProcessBatchAggregate the
// aggregate adds to the decide stage, alone (the end-to-end difference is
// within the noise of a shared machine): reported per event of the batch.
func BenchmarkContribute(b *testing.B) {
	msgs, st := synthBatch(1000)
	p := aggregateProcessor(b, st)
	keyBySubject(b, p.cfg.Policy, msgs)
	docs := make([]event.Doc, len(msgs))
	subjects := make([]string, len(msgs))
	decisions := make([]*policy.Decision, len(msgs))
	for i := range msgs {
		if docs[i].Parse(msgs[i].Value) != nil {
			continue
		}
		s, _, ok, _ := p.cfg.Policy.Subject(&docs[i])
		if !ok {
			continue
		}
		recs, _ := st.Lookup(context.Background(), []string{s})
		d, err := p.decider.DecideAt(&docs[i], s, recs[s], policy.Times{})
		if err != nil {
			continue
		}
		subjects[i], decisions[i] = s, &policy.Decision{Outputs: slices.Clone(d.Outputs)}
	}
	res := &Result{}
	b.ReportAllocs()
	for b.Loop() {
		res.Accounting.Contributions = res.Accounting.Contributions[:0]
		for i := range msgs {
			if decisions[i] != nil {
				p.contribute(res, &msgs[i], &docs[i], subjects[i], decisions[i])
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	b.ReportMetric(float64(len(res.Accounting.Contributions)), "contributions/batch")
}

// BenchmarkProcessBatchKeyed is BenchmarkProcessBatch with the messages
// keyed as in BenchmarkProcessBatchAggregate, its baseline.
func BenchmarkProcessBatchKeyed(b *testing.B) {
	msgs, st := synthBatch(1000)
	keyBySubject(b, testPolicy(b), msgs)
	benchProcess(b, newTestProcessor(b, st), msgs)
}

// keyBySubject sets each message's key to its subject id.
func keyBySubject(b *testing.B, pol *policy.Policy, msgs []kafka.Message) {
	for i := range msgs {
		var doc event.Doc
		if err := doc.Parse(msgs[i].Value); err != nil {
			continue
		}
		if s, _, ok, _ := pol.Subject(&doc); ok {
			msgs[i].Key = []byte(s)
		}
	}
}
