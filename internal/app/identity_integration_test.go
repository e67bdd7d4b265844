package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/wire"
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

// TestIntegrationForgedIdentityLinks, on real Kafka and Redis: a forged
// identify event cannot move a victim's linked anonymous id to an
// attacker (the attacker's export does not list it, the attacker's
// erasure leaves it and its record alone), the refusal is counted, the
// API can still re-point it; and a user cannot be given more anonymous
// ids by events than identity.max_linked_ids (the events beyond are
// dead-lettered as too_many_linked_ids).
func TestIntegrationForgedIdentityLinks(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	rdb := itest.Redis(t, env.Redis)
	ctx := context.Background()
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	for _, subj := range []string{"victim", "v-anon", "attacker"} {
		if err := redisstore.Put(ctx, rdb, s.prefix, subj, 1, all); err != nil {
			t.Fatal(err)
		}
	}
	limit := 3
	cap3 := func(c *config.Config) { c.Identity.MaxLinkedIDs = &limit }
	r := s.start(t, cap3)
	identify := func(user, anon string) kafka.Message {
		return kafka.Message{Key: []byte(anon), Value: []byte(`{"type":"identify","userId":"` + user + `","anonymousId":"` + anon + `","messageId":"` + user + "-" + anon + `"}`)}
	}
	consumed := func(n float64) func() bool {
		return func() bool { return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == n }
	}
	itest.Produce(t, env.Kafka, s.raw, identify("victim", "v-anon"))
	itest.Eventually(t, 60*time.Second, "the victim's identify", consumed(1))
	itest.Produce(t, env.Kafka, s.raw, identify("attacker", "v-anon"), kafka.Message{Key: []byte("v-anon"),
		Value: []byte(`{"type":"alias","userId":"attacker","previousId":"v-anon","messageId":"alias"}`)})
	itest.Eventually(t, 30*time.Second, "the forged identify and alias", consumed(3))
	if got := r.metric(t, `consentd_identity_links_total{result="refused_relink"}`); got < 1 {
		t.Fatalf("refused relinks counted: %v", got)
	}
	// An alias naming the victim's user id as its previousId: the victim
	// is a user (ids are linked to it), so it is not handed over.
	itest.Produce(t, env.Kafka, s.raw, kafka.Message{Key: []byte("victim"),
		Value: []byte(`{"type":"alias","userId":"attacker","previousId":"victim","messageId":"alias-user"}`)})
	// Two identify events for a fresh id, the attacker's second: the
	// first link stands.
	itest.Produce(t, env.Kafka, s.raw, identify("victim", "n-anon"), identify("attacker", "n-anon"))
	itest.Eventually(t, 30*time.Second, "the alias of a user and the racing identify events", consumed(6))
	if got := r.metric(t, `consentd_identity_links_total{result="refused_user"}`); got != 1 {
		t.Fatalf("refused user links counted: %v", got)
	}
	for anon, want := range map[string]string{"victim": "", "n-anon": "victim"} {
		if st, err := redisstore.NewUpdater(rdb, s.prefix).Read(ctx, anon); err != nil || st.LinkedTo != want {
			t.Fatalf("%s linked to %q, want %q (%v)", anon, st.LinkedTo, want, err)
		}
	}

	cfg := *s.cfg
	cap3(&cfg)
	dsr := s.dsr(t, &cfg)
	exp, err := dsr.Export(ctx, "attacker")
	if err != nil {
		t.Fatal(err)
	}
	if st := exp["stored"].(redisstore.Stored); len(st.LinkedIDs) != 0 || len(exp["linked"].(map[string]redisstore.Stored)) != 0 {
		t.Fatalf("the attacker's export lists linked ids: %+v", exp)
	}
	if ch, err := dsr.Erase(ctx, "attacker"); err != nil || len(ch.ErasedLinked) != 0 {
		t.Fatalf("the attacker's erasure: %+v %v", ch, err)
	}
	if st, err := redisstore.NewUpdater(rdb, s.prefix).Read(ctx, "v-anon"); err != nil || st.LinkedTo != "victim" || len(st.Fields) == 0 {
		t.Fatalf("the victim's anonymous id after the attack: %+v %v", st, err)
	}
	// The API (authenticated, audited) can re-point it.
	if _, err := dsr.Link(ctx, "v-anon", "victim-2"); err != nil {
		t.Fatal(err)
	}
	if st, _ := redisstore.NewUpdater(rdb, s.prefix).Read(ctx, "v-anon"); st.LinkedTo != "victim-2" {
		t.Fatalf("the API did not re-point the link: %+v", st)
	}

	// The cap: five identify events for one user, three links allowed.
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, identify("collector", "c-anon-"+strconv.Itoa(i)))
	}
	itest.Produce(t, env.Kafka, s.raw, msgs...)
	itest.Eventually(t, 30*time.Second, "the collector's identify events", consumed(11))
	ids, err := redisstore.NewUpdater(rdb, s.prefix).LinkedIDs(ctx, "collector")
	if err != nil || len(ids) != limit {
		t.Fatalf("collector has %v linked, want %d: %v", ids, limit, err)
	}
	dead := 0
	for _, m := range itest.ReadAll(t, env.Kafka, s.dlq) {
		if reason, _ := itest.Header(m, wire.HeaderDLQReason); reason == pipeline.ReasonTooManyLinkedIDs {
			dead++
		}
	}
	if dead != 2 {
		t.Fatalf("%d events dead-lettered as %s, want 2", dead, pipeline.ReasonTooManyLinkedIDs)
	}
}
