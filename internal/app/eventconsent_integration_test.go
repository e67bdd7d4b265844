package app

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/itest"
)

// TestIntegrationEventCarriedConsent: a subject whose stored record grants
// everything sends events carrying their own, stricter consent signals.
func TestIntegrationEventCarriedConsent(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
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
	)
	r := s.start(t, nil)
	itest.Eventually(t, 60*time.Second, "events decided", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == 6
	})
	got, _ := s.delivered(t)
	expectSets(t, "output", got, map[string][]string{
		"personalization": {"plain", "segment", "gpc"},
		"analytics":       {"plain", "rudder", "gpc", "cannot-grant"},
		"advertising":     {"plain", "segment"},
	})
	dlq := itest.ReadAll(t, env.Kafka, s.dlq)
	if len(dlq) != 1 || messageID(t, dlq[0].Value) != "malformed" {
		t.Fatalf("dead letters: %v", len(dlq))
	}
}
