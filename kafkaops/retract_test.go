package kafkaops

import (
	"context"
	"encoding/base64"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

type recordingProducer struct{ msgs []kafka.Message }

func (r *recordingProducer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// TestRetractorUnderRotatedKeys: after a rotation, a retraction goes out
// under the new key and under the key retired within the retention.
func TestRetractorUnderRotatedKeys(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	now := time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	keys, err := policy.ParseKeyring("keys", []byte(
		"k1:"+b64("0123456789abcdef0123456789abcdef")+":retired=2025-06-09T00:00:00Z\n"+
			"k0:"+b64("fedcba9876543210fedcba9876543210")+":retired=2025-01-01T00:00:00Z\n"+
			"k2:"+b64("abcdef0123456789abcdef0123456789")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := policy.ParseSpec("policy.yaml", []byte(strings.Replace(string(src), "pseudonym_key: k1", "pseudonym_key: k2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	prod := &recordingProducer{}
	r := &Retractor{Policy: pol, Producer: prod, Retention: 7 * 24 * time.Hour, Now: func() time.Time { return now }}
	topics, err := r.Retract(context.Background(), "u1", pol.Purposes, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := keys.AppendPseudonym(nil, "k2", []byte("u1"))
	k1, _ := keys.AppendPseudonym(nil, "k1", []byte("u1"))
	if len(prod.msgs) != 2*len(topics) || len(topics) == 0 {
		t.Fatalf("%d retractions for %d topics, want one per topic and live key (k2, k1)", len(prod.msgs), len(topics))
	}
	for _, topic := range topics {
		var got []string
		for _, m := range prod.msgs {
			if m.Topic == topic {
				if m.Value != nil || string(wire.Header(&m, wire.HeaderRetraction)) != wire.RetractErased {
					t.Errorf("%s: not an erasure tombstone: %+v", topic, m)
				}
				got = append(got, string(m.Key))
			}
		}
		if !slices.Equal(got, []string{string(k2), string(k1)}) {
			t.Errorf("%s: retractions keyed %q, want the new key's then the retired key's", topic, got)
		}
	}
}

// TestRetractorPerOutputKeys: with per-output pseudonyms, each clean topic
// gets the retraction under the key of every output writing there (two
// outputs sharing a topic: both keys), and never under another output's.
func TestRetractorPerOutputKeys(t *testing.T) {
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := policy.ParseSpec("p.yaml", []byte(`
version: "t"
purposes: [personalization, analytics, advertising]
pseudonym_key: k1
pseudonymization: {per_output: true}
outputs:
  - {name: perso, topic: c.perso, require: [personalization]}
  - {name: ads, topic: c.shared, require: [advertising]}
  - {name: stats, topic: c.shared, require: [analytics]}
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, o := range pol.Outputs {
		k, err := pol.OutputKey(o, "u1")
		if err != nil {
			t.Fatal(err)
		}
		want[o.Topic] = append(want[o.Topic], string(k))
	}
	for _, tc := range []struct {
		name     string
		purposes []string
		erased   bool
		topics   map[string][]string
	}{
		{"erasure", pol.Purposes, true, want},
		{"revoke advertising", []string{"advertising"}, false, map[string][]string{"c.shared": want["c.shared"][:1]}},
		{"revoke personalization", []string{"personalization"}, false, map[string][]string{"c.perso": want["c.perso"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prod := &recordingProducer{}
			r := &Retractor{Policy: pol, Producer: prod}
			if _, err := r.Retract(context.Background(), "u1", tc.purposes, tc.erased, 1); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, m := range prod.msgs {
				got[m.Topic] = append(got[m.Topic], string(m.Key))
			}
			if len(got) != len(tc.topics) {
				t.Fatalf("retractions on %v, want %v", got, tc.topics)
			}
			for topic, keys := range tc.topics {
				if !slices.Equal(got[topic], keys) {
					t.Errorf("%s: retractions keyed %q, want %q", topic, got[topic], keys)
				}
			}
		})
	}
	if want["c.shared"][0] == want["c.shared"][1] || want["c.perso"][0] == want["c.shared"][0] {
		t.Fatal("outputs share a key under per_output")
	}
}
