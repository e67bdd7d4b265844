package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/testing/conformance"
	"github.com/consentd/consentd/policy"
)

// grantOf grants the listed purposes to every subject.
type grantOf []string

func (g grantOf) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	out := map[string]consent.Record{}
	for _, s := range subjects {
		r := consent.Record{Found: true, Version: 1, Granted: map[string]bool{}}
		for _, p := range g {
			r.Granted[p] = true
		}
		out[s] = r
	}
	return out, nil
}

// TestExplainAgreesOnConformanceVectors: for every conformance vector
// (consent signals published by third parties, policy/testdata/conformance)
// decided under its reference policy, what Explain reports (the
// pipeline's own path) is what the reference decides, and what Process
// writes: the outputs withheld, or the dead letter of an invalid string.
func TestExplainAgreesOnConformanceVectors(t *testing.T) {
	vectors := conformance.Load(t)
	keys, _ := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	runs := 0
	for f, v := range vectors {
		for _, run := range v.Runs {
			if len(run.Options) > 0 {
				continue // runs under a deliberate option: the policy core's test covers them
			}
			pol, err := policy.FromBytes(f, []byte(v.PolicyText(run)), keys)
			if err != nil {
				t.Fatalf("%s/%s: %v", f, run.Name, err)
			}
			cfg := ProcessorConfig{Policy: pol, Store: grantOf(v.Purposes), DeadLetterTopic: "dlq"}
			ex, err := mustProcessor(t, cfg).Explain(context.Background(), kafka.Message{Topic: "raw", Value: v.Event})
			if err != nil {
				t.Fatal(err)
			}
			res, err := mustProcessor(t, cfg).Process(context.Background(), []kafka.Message{{Topic: "raw", Value: v.Event}})
			if err != nil {
				t.Fatal(err)
			}
			runs++
			name := f + "/" + run.Name
			if run.Expect.Invalid {
				if ex.Dead == nil || ex.Dead.Reason != policy.ReasonInvalidConsentString || len(res.Out) != 1 || res.Out[0].Topic != "dlq" {
					t.Errorf("%s: explained dead %v, processed %d messages; the reference finds the string invalid", name, ex.Dead, len(res.Out))
				}
				continue
			}
			if ex.Decision == nil {
				t.Errorf("%s: no decision (dead: %v)", name, ex.Dead)
				continue
			}
			var withheld, written []string
			for _, od := range ex.Decision.Outputs {
				if od.Write {
					written = append(written, "c."+od.Output.Name)
				} else {
					withheld = append(withheld, od.Output.Name)
				}
			}
			var topics []string
			for _, m := range res.Out {
				topics = append(topics, m.Topic)
			}
			if strings.Join(withheld, ",") != strings.Join(run.Expect.Withheld, ",") || strings.Join(written, ",") != strings.Join(topics, ",") {
				t.Errorf("%s: explained withheld %v written %v, processed %v; the reference withholds %v", name, withheld, written, topics, run.Expect.Withheld)
			}
		}
	}
	if runs < 300 {
		t.Fatalf("%d runs compared", runs)
	}
}

func mustProcessor(t *testing.T, cfg ProcessorConfig) *Processor {
	t.Helper()
	p, err := NewProcessor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
