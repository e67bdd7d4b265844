package app

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationConsentIngestion feeds every record format, a stale
// update, an expired record, a tombstone and an invalid record through the
// consent topic, then checks what each subject's events reach.
func TestIntegrationConsentIngestion(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	consentTopic := s.raw + ".consent"
	itest.CreateTopics(t, env.Kafka, 1, consentTopic)
	rec := func(key, value string) kafka.Message { return kafka.Message{Key: []byte(key), Value: []byte(value)} }
	itest.Produce(t, env.Kafka, consentTopic,
		rec("n1", `{"subject":"n1","purposes":{"personalization":true,"analytics":true},"version":100,"source":"cmp"}`),
		rec("n1", `{"subject":"n1","purposes":{"personalization":false,"analytics":false},"version":90,"source":"cmp"}`), // stale
		rec("s1", `{"type":"track","event":"Segment Consent Preference Updated","userId":"s1","timestamp":"2026-11-22T10:00:00Z","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":false,"Advertising":false}}}}`),
		rec("r1", `{"type":"track","userId":"r1","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"provider":"custom","allowedConsentIds":["Analytics"],"deniedConsentIds":["Advertising","Personalization"],"resolutionStrategy":"and"}}}`),
		rec("x", `{"subject":"x","purposes":{"dancing":true},"version":1}`), // invalid
		rec("t1", `{"subject":"t1","purposes":{"personalization":true,"analytics":true},"version":5}`),
		kafka.Message{Key: []byte("t1")}, // tombstone: erase t1
		rec("e1", `{"subject":"e1","purposes":{"personalization":true,"analytics":true},"version":5,"expires_at":"2020-01-01T00:00:00Z"}`),
		rec("w1", `{"subject":"w1","purposes":{"personalization":true,"analytics":true,"advertising":true},"version":1}`),
		rec("w1", `{"subject":"w1","purposes":{"personalization":false,"analytics":true,"advertising":false},"version":2}`), // withdraws two
		rec("m1", `{"subject":"m2","purposes":{"personalization":true},"version":7}`),                                       // key is not the subject
		rec("", `{"subject":"m3","purposes":{"personalization":true},"version":7}`),                                         // no key
		rec("}x", `{"subject":"}x","purposes":{"personalization":true},"version":7}`),                                       // no Redis Cluster hash tag: refused, not retried forever
		kafka.Message{Key: []byte("}y")}, // the same for a tombstone
	)
	r := s.start(t, func(c *config.Config) { c.Consent.Topic = consentTopic; c.Consent.GroupID = s.group + "-consent" })
	itest.Eventually(t, 60*time.Second, "all consent records handled", func() bool {
		return metrics.Sum(r.app.Metrics.Registry, "consentd_consent_updates_total", nil) == 14
	})
	for series, want := range map[string]float64{
		`consentd_consent_updates_total{format="native",result="applied"}`:      5,
		`consentd_consent_updates_total{format="native",result="stale"}`:        1,
		`consentd_consent_updates_total{format="segment",result="applied"}`:     1,
		`consentd_consent_updates_total{format="rudderstack",result="applied"}`: 1,
		`consentd_consent_updates_total{format="tombstone",result="erased"}`:    1,
		`consentd_consent_updates_total{format="unknown",result="invalid"}`:     5,
	} {
		if got := r.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	st := redisstore.New(itest.Redis(t, env.Redis), s.prefix, time.Second, nil)
	recs, err := st.Lookup(context.Background(), []string{"n1", "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if recs["n1"].Version != 100 || !recs["n1"].Allows("personalization") || recs["t1"].Found {
		t.Fatalf("stored: %+v", recs)
	}
	// A record whose key is not its subject is never applied: tombstones
	// and compaction work by key and could not remove it.
	if recs, err := st.Lookup(context.Background(), []string{"m1", "m2", "m3"}); err != nil || recs["m1"].Found || recs["m2"].Found || recs["m3"].Found {
		t.Fatalf("a record keyed apart from its subject was applied: %+v %v", recs, err)
	}

	// Events collected now, after every grant (pre-consent events are
	// dropped by default).
	now := time.Now().UTC().Format(time.RFC3339Nano)
	ev := func(subject, id string) kafka.Message {
		return kafka.Message{Key: []byte(subject), Value: []byte(`{"type":"track","event":"Order Completed","userId":"` + subject + `","messageId":"` + id + `","timestamp":"` + now + `"}`)}
	}
	early := kafka.Message{Key: []byte("n1"), Value: []byte(`{"type":"track","event":"Order Completed","userId":"n1","messageId":"early","timestamp":"2020-01-01T00:00:00Z"}`)}
	// Message ids differ from the subjects: a subject id anywhere else in
	// an event is scrubbed.
	itest.Produce(t, env.Kafka, s.raw, ev("n1", "msg-n"), ev("s1", "msg-s"), ev("r1", "msg-r"), ev("t1", "msg-t"), ev("e1", "msg-e"), early)
	itest.Eventually(t, 30*time.Second, "events decided", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == 6
	})
	if n := r.metric(t, `consentd_decisions_total{action="skip",output="personalization",reason="pre_consent:personalization"}`); n != 1 {
		t.Errorf("pre-consent skips = %v, want 1 (the event collected before n1 consented)", n)
	}
	// e1 was stored already expired: the expiry sweeper retracts what it
	// granted and deletes it.
	rdb := itest.Redis(t, env.Redis)
	itest.Eventually(t, 30*time.Second, "expired record swept", func() bool {
		n, err := rdb.Exists(context.Background(), redisstore.RecordKey(s.prefix, "e1")).Result()
		return err == nil && n == 0
	})
	got, retractions := s.delivered(t)
	erased := pseud("t1") + " erased personalization,analytics,advertising"
	withdrawn := pseud("w1") + " consent_revoked personalization,advertising"
	expired := pseud("e1") + " consent_revoked personalization,analytics"
	expectSets(t, "retractions on", retractions, map[string][]string{s.perso: {erased, withdrawn, expired}, s.ana: {erased, expired}, s.adv: {erased, withdrawn, expired}})
	expectSets(t, "output", got, map[string][]string{"personalization": {"msg-n", "msg-s"}, "analytics": {"msg-n", "msg-r"}, "advertising": nil})
	reasons := map[string]int{}
	for _, m := range itest.ReadAll(t, env.Kafka, s.dlq) {
		r, _ := itest.Header(m, wire.HeaderDLQReason)
		reasons[r]++
	}
	if len(reasons) != 2 || reasons["invalid_consent_record"] != 3 || reasons[kafkaops.ReasonConsentKeyMismatch] != 2 {
		t.Fatalf("dead letters by reason: %v", reasons)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
