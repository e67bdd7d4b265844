package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationConformanceVectors runs one conformance vector of each
// kind (policy/testdata/conformance/vectors) through Kafka and Redis: a
// subject whose stored record grants everything sends events carrying the
// vectors' signals, mapped to the shipped policy's purposes.
func TestIntegrationConformanceVectors(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	policy, err := os.ReadFile(s.cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	// Segment's documented example uses a Functional category; the
	// rudder-server test, consent id foo-1.
	p := strings.Replace(string(policy), "  Personalization: personalization\n", "  Functional: personalization\n  foo-1: analytics\n", 1)
	p += `
iab:
  vendor_id: 10
  tcf_purposes: {personalization: [1], analytics: [1, 8], advertising: [1, 2]}
  tcf_flexible_purposes: [2, 7, 8, 9, 10, 11]
  opt_out_denies: [advertising]
`
	if err := os.WriteFile(s.cfg.Policy, []byte(p), 0o600); err != nil {
		t.Fatal(err)
	}
	rdb := itest.Redis(t, env.Redis)
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	if err := redisstore.Put(context.Background(), rdb, s.prefix, "u", 3, all); err != nil {
		t.Fatal(err)
	}
	// vector returns the context object of a vector's event.
	vector := func(name string) string {
		b, err := os.ReadFile(filepath.Join("../../policy/testdata/conformance/vectors", name))
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Event struct {
				Context json.RawMessage `json:"context"`
			} `json:"event"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return string(v.Event.Context)
	}
	ev := func(id, ctx string) kafka.Message {
		return kafka.Message{Key: []byte("u"), Value: []byte(`{"type":"track","event":"Order Completed","userId":"u","messageId":"` + id + `","context":` + ctx + `}`)}
	}
	itest.Produce(t, env.Kafka, s.raw,
		// TCF: a type-0 publisher restriction on purpose 2 for vendor 10.
		ev("tcf-restriction", vector("tcf-encoded-002.json")),
		// TCF v2.3: a Disclosed Vendors segment without vendor 10.
		ev("tcf-undisclosed", vector("tcf-encoded-014.json")),
		// GPP: the same restriction in a TCF EU section.
		ev("gpp-tcf", vector("gpp-encoded-020.json")),
		// GPP: usnat not opted out, usmn opted out of sale.
		ev("gpp-usmn", vector("gpp-encoded-073.json")),
		// GPP: header only (iabgpp-java GppModelTest).
		ev("gpp-header-only", vector("gpp-iabgpp-java-001.json")),
		// US Privacy 1NYN: opted out of sale.
		ev("usp", vector("usp-iabgpp-java-004.json")),
		// GPC: Sec-GPC "1".
		ev("gpc", vector("gpc-gpc-001.json")),
		// Segment's documented consent object: Analytics false.
		ev("segment", vector("segment-segment-docs-018.json")),
		// rudder-server: foo-1 denied for a OneTrust destination.
		ev("rudderstack", vector("rudderstack-rudder-server-004.json")),
		// A corrupt GPP section: dead-lettered.
		ev("gpp-corrupt", `{"gppString":"DBABLA~zz"}`),
	)
	r := s.start(t, nil)
	itest.Eventually(t, 60*time.Second, "events decided", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == 10
	})
	got, _ := s.delivered(t)
	expectSets(t, "output", got, map[string][]string{
		"personalization": {"tcf-restriction", "gpp-tcf", "gpp-usmn", "gpp-header-only", "usp", "gpc", "segment", "rudderstack"},
		"analytics":       {"tcf-restriction", "gpp-tcf", "gpp-usmn", "gpp-header-only", "usp", "gpc"},
		// The shipped advertising output requires personalization too.
		"advertising": {"gpp-header-only", "segment", "rudderstack"},
	})
	var dead []string
	for _, m := range itest.ReadAll(t, env.Kafka, s.dlq) {
		reason, _ := itest.Header(m, wire.HeaderDLQReason)
		dead = append(dead, messageID(t, m.Value)+":"+reason)
	}
	if !sameSet(dead, []string{"gpp-corrupt:invalid_consent_string"}) {
		t.Fatalf("dead letters: %v", dead)
	}
}
