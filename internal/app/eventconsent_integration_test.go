package app

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationEventCarriedConsent: a subject whose stored record grants
// everything sends events carrying their own, stricter consent signals.
func TestIntegrationEventCarriedConsent(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	// IAB strings map to purposes through the policy.
	f, err := os.OpenFile(s.cfg.Policy, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`
iab:
  vendor_id: 1
  tcf_purposes: {personalization: [1], analytics: [1, 7], advertising: [1, 2]}
  tcf_legitimate_interest: [7]
  opt_out_denies: [advertising]
  # the TC string below is a global-scope TCF 2.2 fixture without a
  # Disclosed Vendors segment: accept it to test its purposes
  require_service_specific: false
  disclosed_vendors_required_from: never
`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rdb := itest.Redis(t, env.Redis)
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	if err := redisstore.Put(context.Background(), rdb, s.prefix, "u", 3, all); err != nil {
		t.Fatal(err)
	}
	if err := redisstore.Put(context.Background(), rdb, s.prefix, "weak", 3, map[string]bool{"analytics": true}); err != nil {
		t.Fatal(err)
	}
	ev := func(id, subject, ctx string) kafka.Message {
		return kafka.Message{Key: []byte(subject), Value: []byte(`{"type":"track","event":"Order Completed","userId":"` + subject + `","messageId":"` + id + `","context":` + ctx + `}`)}
	}
	itest.Produce(t, env.Kafka, s.raw,
		ev("plain", "u", `{}`),
		ev("segment", "u", `{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":false,"Advertising":true}}}`),
		ev("rudder", "u", `{"consentManagement":{"allowedConsentIds":["Analytics"],"deniedConsentIds":["Advertising"],"resolutionStrategy":"and"}}`),
		ev("gpc", "u", `{"gpc":true}`),
		ev("cannot-grant", "weak", `{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":true,"Advertising":true}}}`),
		ev("malformed", "u", `{"consent":{"categoryPreferences":{"Analytics":"yes"}}}`),
		// IAB vectors with documented decodings (see policy tests).
		ev("tcf", "u", `{"tcString":"COvzTO5OvzTO5B7ABCENAPEYAIAAAIAAAIqIAAoAAoAA.QAAo.IAAo"}`),
		ev("tcf-old-policy", "u", `{"tcString":"COvzTO5OvzTO5BRAAAENAPCoALIAADgAAAAAAewAwABAAlAB6ABBFADBQAQA9hAAAcAA"}`),
		ev("usp-opt-out", "u", `{"us_privacy":"1YYN"}`),
		ev("gpp-opt-out", "u", `{"gppString":"DBABVg~BVVVVVVg.YA"}`),
	)
	r := s.start(t, nil)
	itest.Eventually(t, 60*time.Second, "events decided", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == 10
	})
	got, _ := s.delivered(t)
	expectSets(t, "output", got, map[string][]string{
		// RudderStack decides on denied ids only: personalization stands.
		"personalization": {"plain", "segment", "rudder", "gpc", "tcf", "usp-opt-out", "gpp-opt-out"},
		"analytics":       {"plain", "rudder", "gpc", "cannot-grant", "usp-opt-out", "gpp-opt-out"},
		"advertising":     {"plain", "segment"},
	})
	dlq := itest.ReadAll(t, env.Kafka, s.dlq)
	var dead []string
	for _, m := range dlq {
		reason, _ := itest.Header(m, wire.HeaderDLQReason)
		dead = append(dead, messageID(t, m.Value)+":"+reason)
	}
	if !sameSet(dead, []string{"malformed:invalid_consent_string", "tcf-old-policy:invalid_consent_string"}) {
		t.Fatalf("dead letters: %v", dead)
	}
}
