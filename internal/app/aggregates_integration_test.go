package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/pipeline/aggregates"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationAggregates runs the shipped policy with an aggregate
// output (counts of the events analytics did not write, by country) on
// real Kafka and Redis: subjects who deny analytics send one event each
// in known countries, one subject floods 500 events over several
// countries, a few events are keyed by something other than their
// subject. The aggregates topic must hold only noisy counts within the
// Laplace error bound of ε around the true counts, the flooder moving no
// count by more than k·c = 1, no group of a single subject, and nothing
// personal.
func TestIntegrationAggregates(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 2)
	aggTopic := s.raw + ".aggs"
	itest.CreateTopics(t, env.Kafka, 1, aggTopic)
	const window = 5 * time.Second
	pol, err := os.ReadFile(s.cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	agg := "outputs:\n" + `  - name: dropped_analytics
    kind: aggregate
    topic: ` + aggTopic + `
    of: analytics
    window: 5s
    group_by: [context.location.country]
    epsilon: 1
    delta: 1e-6
    max_groups: 1
    max_per_group: 1
`
	withAgg := strings.Replace(string(pol), "outputs:\n", agg, 1)
	if withAgg == string(pol) {
		t.Fatal("the shipped policy has no outputs list")
	}
	path := filepath.Join(filepath.Dir(s.cfgPath), "policy.aggregates.yaml")
	if err := os.WriteFile(path, []byte(withAgg), 0o600); err != nil {
		t.Fatal(err)
	}

	// Consent: agg-* subjects deny analytics, agg-ok-* grant it.
	rdb := itest.Redis(t, env.Redis)
	ctx := context.Background()
	denied := map[string]bool{"personalization": true, "analytics": false, "advertising": false}
	put := func(subj string, p map[string]bool) {
		if err := redisstore.Put(ctx, rdb, s.prefix, subj, 1, p); err != nil {
			t.Fatal(err)
		}
	}
	truth := map[string]int{"DE": 60, "FR": 40, "LU": 1}
	var events []kafka.Message
	ev := func(key, subj, country string) kafka.Message {
		return kafka.Message{Key: []byte(key), Value: fmt.Appendf(nil, `{"type":"track","event":"Viewed","userId":%q,"context":{"location":{"country":%q}}}`, subj, country)}
	}
	var subjects []string
	for country, n := range truth {
		for i := range n {
			subj := fmt.Sprintf("agg-%s-%d", strings.ToLower(country), i)
			subjects = append(subjects, subj)
			put(subj, denied)
			events = append(events, ev(subj, subj, country))
		}
	}
	for i := range 30 { // granted: written to analytics, not counted
		subj := fmt.Sprintf("agg-ok-%d", i)
		put(subj, map[string]bool{"personalization": true, "analytics": true, "advertising": true})
		events = append(events, ev(subj, subj, "DE"))
	}
	const misKeyed = 7 // denied, but keyed by another id: excluded
	for i := range misKeyed {
		subj := fmt.Sprintf("agg-mk-%d", i)
		put(subj, denied)
		events = append(events, ev("device-"+subj, subj, "FR"))
	}
	// The flooder: its first event in DE (counted: k = 1, c = 1), 499
	// more over DE, FR, ES and IT, all bounded away.
	put("agg-flood", denied)
	countries := []string{"DE", "FR", "ES", "IT"}
	for i := range 500 {
		events = append(events, ev("agg-flood", "agg-flood", countries[i%len(countries)]))
	}
	subjects = append(subjects, "agg-flood")
	truth["DE"]++ // the flooder's first event

	r := s.start(t, func(c *config.Config) { c.Policy = path })
	// Warm up until the group is joined, then produce everything at the
	// start of a window so that it is counted in one window.
	warm := `{"type":"track","event":"Viewed","userId":"agg-ok-0","context":{"location":{"country":"DE"}}}`
	itest.Produce(t, env.Kafka, s.raw, kafka.Message{Key: []byte("agg-ok-0"), Value: []byte(warm)})
	itest.Eventually(t, 60*time.Second, "the warm-up event consumed", func() bool {
		return r.app.Stats.Snapshot().Consumed[s.raw] >= 1
	})
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 200*time.Millisecond)))
	producedAt := time.Now()
	itest.Produce(t, env.Kafka, s.raw, events...)
	itest.Eventually(t, 30*time.Second, "every event consumed", func() bool {
		return r.app.Stats.Snapshot().Consumed[s.raw] >= 1+len(events)
	})
	consumedAt := time.Now()
	if producedAt.Truncate(window) != consumedAt.Truncate(window) {
		t.Skipf("the events took from %s to %s, across a window boundary: the true counts per window are unknown", producedAt.Format(time.StampMilli), consumedAt.Format(time.StampMilli))
	}
	windowStart := producedAt.Truncate(window).UTC().Format(time.RFC3339)

	var rels []aggregates.Release
	// Every window end spends ε, contributed to or not: wait for the
	// window's end, then for its release (DE and FR are released).
	time.Sleep(time.Until(producedAt.Truncate(window).Add(window)))
	var msgs []kafka.Message
	itest.Eventually(t, 30*time.Second, "the window released", func() bool {
		msgs = itest.ReadAll(t, env.Kafka, aggTopic)
		n := 0
		for _, m := range msgs {
			if strings.Contains(string(m.Key), `"`+windowStart+`"`) {
				n++
			}
		}
		return n >= 2
	})
	for _, m := range msgs {
		var rel aggregates.Release
		if err := json.Unmarshal(m.Value, &rel); err != nil {
			t.Fatalf("aggregate message %s: %v", m.Value, err)
		}
		if v, _ := itest.Header(m, wire.HeaderPolicyVersion); v == "" || len(m.Headers) != 2 {
			t.Errorf("headers %v, want the policy version and digest", m.Headers)
		}
		for _, subj := range subjects {
			if strings.Contains(string(m.Key), subj) || strings.Contains(string(m.Value), subj) {
				t.Fatalf("aggregate message names subject %s: %s", subj, m.Value)
			}
		}
		if rel.WindowStart == windowStart {
			rels = append(rels, rel)
		}
	}
	// Laplace noise of scale b = k·c/ε = 1: |noise| > b·ln(1e10) ≈ 23 with
	// probability 1e-10 per group.
	const k, c, eps = 1, 1, 1.0
	bound := float64(k*c) / eps * math.Log(1e10)
	got := map[string]int64{}
	for _, rel := range rels {
		country := rel.Group["context.location.country"]
		got[country] = rel.Count
		if rel.Epsilon != eps || rel.Delta != 1e-6 || rel.Mechanism != "laplace" || rel.MaxGroups != k || rel.MaxPerGroup != c || rel.Of != "analytics" {
			t.Errorf("release parameters %+v", rel)
		}
	}
	t.Logf("released in window %s: %v (true counts %v)", windowStart, got, truth)
	for _, country := range []string{"DE", "FR"} {
		n, ok := got[country]
		if !ok {
			t.Fatalf("%s (true count %d, threshold about 15) not released: %v", country, truth[country], got)
		}
		if math.Abs(float64(n)-float64(truth[country])) > bound {
			t.Errorf("%s: noisy count %d, true %d: error above %.1f", country, n, truth[country], bound)
		}
		// Without the flooder DE would be 60: its 500 events move it by
		// at most k·c = 1 beyond the noise.
		if math.Abs(float64(n)-float64(truth[country])) > bound+k*c {
			t.Errorf("%s moved beyond the flooder's bound", country)
		}
	}
	for _, country := range []string{"LU", "ES", "IT"} {
		// LU: one subject, released with probability at most δ = 1e-6.
		// ES, IT: only the flooder's bounded-away events: no group.
		if n, ok := got[country]; ok {
			t.Errorf("%s released (count %d): a group of at most one subject", country, n)
		}
	}
	// Nothing on /metrics counts what the release hides (the flooder's
	// bounded events, the groups below the threshold).
	if _, body := r.get(t, "/metrics"); strings.Contains(body, "contributions_bounded") || strings.Contains(body, `result="suppressed"`) {
		t.Errorf("/metrics counts what the aggregates hide")
	}
	// The raw topic is partitioned by key (itest.Produce): no subject
	// is seen in two partitions.
	if n := r.metric(t, `consentd_aggregate_keying_evidence_total{aggregate="dropped_analytics",reason="subject_in_several_partitions"}`); n != 0 {
		t.Errorf("keying evidence = %v with a raw topic partitioned by key", n)
	}
	if n := r.metric(t, `consentd_aggregate_events_excluded_total{aggregate="dropped_analytics",reason="key_not_subject"}`); n != misKeyed {
		t.Errorf("excluded events = %v, want %d", n, misKeyed)
	}
	if n := r.metric(t, `consentd_aggregate_groups_total{aggregate="dropped_analytics",result="released"}`); n < 2 {
		t.Errorf("released groups = %v, want at least 2", n)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	s.assertNoPersonalData(t, subjects...)
}
