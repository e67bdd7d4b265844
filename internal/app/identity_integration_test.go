package app

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationIdentityLinks: after an identify event links an anonymous
// id to a user, events known only by the anonymous id are decided with the
// strictest of both records, and the user's revocation reaches them.
func TestIntegrationIdentityLinks(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	rdb := itest.Redis(t, env.Redis)
	ctx := context.Background()
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	if err := redisstore.Put(ctx, rdb, s.prefix, "anon-9", 1, all); err != nil {
		t.Fatal(err)
	}
	if err := redisstore.Put(ctx, rdb, s.prefix, "user-9", 1, map[string]bool{"personalization": true, "analytics": true}); err != nil {
		t.Fatal(err)
	}
	r := s.start(t, nil)
	anonEvent := func(id string) kafka.Message {
		return kafka.Message{Key: []byte("anon-9"), Value: []byte(`{"type":"track","event":"Order Completed","anonymousId":"anon-9","messageId":"` + id + `"}`)}
	}
	consumed := func(n float64) func() bool {
		return func() bool { return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == n }
	}
	itest.Produce(t, env.Kafka, s.raw, anonEvent("before-link"))
	itest.Eventually(t, 60*time.Second, "first event", consumed(1))
	itest.Produce(t, env.Kafka, s.raw, kafka.Message{Value: []byte(`{"type":"identify","userId":"user-9","anonymousId":"anon-9","messageId":"identify"}`)})
	itest.Eventually(t, 30*time.Second, "identify", consumed(2))
	itest.Produce(t, env.Kafka, s.raw, anonEvent("after-link"))
	itest.Eventually(t, 30*time.Second, "linked event", consumed(3))
	// The user withdraws analytics: the anonymous id's events follow.
	if _, err := redisstore.NewUpdater(rdb, s.prefix).Patch(ctx, "user-9", map[string]bool{"analytics": false}); err != nil {
		t.Fatal(err)
	}
	itest.Produce(t, env.Kafka, s.raw, anonEvent("after-revoke"))
	itest.Eventually(t, 30*time.Second, "event after the user's revocation", consumed(4))

	got, _ := s.delivered(t)
	expectSets(t, "output", got, map[string][]string{
		"personalization": {"before-link", "identify", "after-link", "after-revoke"},
		"analytics":       {"before-link", "after-link"},
		"advertising":     {"before-link"}, // the user never granted advertising
	})
	if st, err := redisstore.NewUpdater(rdb, s.prefix).Read(ctx, "anon-9"); err != nil || st.LinkedTo != "user-9" {
		t.Fatalf("stored link: %+v %v", st, err)
	}
}
