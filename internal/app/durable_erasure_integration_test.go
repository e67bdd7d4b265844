package app

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationErasureSurvivesReplayAndRebuild, on real Kafka and Redis:
// grants arrive on the consent topic; one subject is erased and another
// changed through the CLI's service (both written to the consent topic);
// a third is erased in the store alone. A consentd with a new consent
// group replays the whole topic: the erasures hold (the tombstone, and the
// erasure marker for the one the topic never saw) and the change is what
// the CLI left. Then Redis is flushed and rebuilt from the topic: every
// record and marker the topic accounts for is as it was.
func TestIntegrationErasureSurvivesReplayAndRebuild(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 1)
	consentTopic := s.raw + ".consent"
	itest.CreateTopics(t, env.Kafka, 1, consentTopic)
	grant := func(subject string) kafka.Message {
		return kafka.Message{Key: []byte(subject), Value: []byte(`{"subject":"` + subject + `","purposes":{"personalization":true,"analytics":true,"advertising":true},"version":100,"source":"cmp"}`)}
	}
	itest.Produce(t, env.Kafka, consentTopic, grant("d1"), grant("d2"), grant("d3"), grant("d4"), grant("d5"), grant("d5-a"))
	group := func(n string) func(*config.Config) {
		return func(c *config.Config) { c.Consent.Topic = consentTopic; c.Consent.GroupID = s.group + "-consent-" + n }
	}
	updates := func(r *running, n float64) {
		t.Helper()
		itest.Eventually(t, 60*time.Second, "consent records applied", func() bool {
			return metrics.Sum(r.app.Metrics.Registry, "consentd_consent_updates_total", nil) >= n
		})
	}
	r1 := s.start(t, group("1"))
	updates(r1, 6)

	cfg := *s.cfg
	group("1")(&cfg)
	dsr := s.dsr(t, &cfg)
	ctx := context.Background()
	if ch, err := dsr.Erase(ctx, "d1"); err != nil || !*ch.Erased {
		t.Fatalf("erase d1: %+v %v", ch, err)
	}
	if _, err := dsr.Patch(ctx, "d2", map[string]bool{"analytics": false}); err != nil {
		t.Fatal(err)
	}
	// d4 is erased and consents again at once: the tombstone, read back
	// after the new consent, must not erase it.
	if _, err := dsr.Erase(ctx, "d4"); err != nil {
		t.Fatal(err)
	}
	if _, err := dsr.Patch(ctx, "d4", map[string]bool{"personalization": true}); err != nil {
		t.Fatal(err)
	}
	rdb := itest.Redis(t, env.Redis)
	if _, _, err := redisstore.NewUpdater(rdb, s.prefix).Erase(ctx, "d3", time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	// d5 is erased by a tombstone a CMP sends: its linked id gets a
	// tombstone of its own on the topic.
	if _, err := dsr.Link(ctx, "d5-a", "d5"); err != nil {
		t.Fatal(err)
	}
	itest.Produce(t, env.Kafka, consentTopic, kafka.Message{Key: []byte("d5")})
	updates(r1, 12) // the journaled tombstones and records, d5's and d5-a's tombstones
	tombstones := map[string]bool{}
	for _, m := range itest.ReadAll(t, env.Kafka, consentTopic) {
		if m.Value == nil {
			tombstones[string(m.Key)] = true
		}
	}
	if !tombstones["d5-a"] {
		t.Fatalf("no tombstone for the id linked to a subject erased by a tombstone: %v", tombstones)
	}
	state := func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for _, subj := range []string{"d1", "d2", "d3", "d4", "d5", "d5-a"} {
			for kind, key := range map[string]string{"record": redisstore.RecordKey(s.prefix, subj), "erased": redisstore.ErasedKey(s.prefix, subj)} {
				f, err := rdb.HGetAll(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range f {
					if kind == "record" && v == "0" && !strings.HasPrefix(k, "_") {
						delete(f, k) // a purpose denied reads as one never granted
					}
				}
				out[subj+" "+kind] = f
			}
		}
		return out
	}
	before := state()
	if len(before["d1 record"]) != 0 || len(before["d3 record"]) != 0 || before["d2 record"]["analytics"] == "1" || len(before["d1 erased"]) == 0 ||
		before["d4 record"]["personalization"] != "1" || before["d4 record"]["analytics"] == "1" {
		t.Fatalf("state after the changes: %v", before)
	}
	// export shows the marker.
	if exp, err := dsr.Export(ctx, "d1"); err != nil || !maps.Equal(exp["stored"].(redisstore.Stored).ErasureMarker, before["d1 erased"]) {
		t.Fatalf("export of an erased subject: %+v %v", exp, err)
	}
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}

	// A new consent group replays the topic from its start.
	r2 := s.start(t, group("2"))
	updates(r2, 12)
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	if after := state(); !maps.EqualFunc(after, before, maps.Equal) {
		t.Fatalf("after a replay by a new consent group:\n%v\nbefore:\n%v", after, before)
	}

	// Redis rebuilt from the topic: what the topic accounts for is the same
	// (d3's erasure was made in the store alone, so only d1 and d2 count).
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, s.prefix+"*", 500).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			for _, k := range keys {
				if err := rdb.Del(ctx, k).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	r3 := s.start(t, group("3"))
	updates(r3, 12)
	after := state()
	for _, k := range []string{"d1 record", "d1 erased", "d2 record", "d4 record", "d4 erased", "d5 record", "d5-a record"} {
		if !maps.Equal(after[k], before[k]) {
			t.Errorf("%s rebuilt from the topic: %v, before the flush: %v", k, after[k], before[k])
		}
	}
}
