package metrics

import (
	"errors"
	"testing"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/hooks"
)

// The condition gauges and consentd_ready are read from the readiness
// tracker at scrape time, so they always agree with /readyz.
func TestConditionsFollowReadiness(t *testing.T) {
	r := &hooks.Readiness{}
	m := New(r)
	r.OnCondition("kafka_write raw/3", errors.New("broken"))
	if got := Sum(m.Registry, "consentd_condition_failing", map[string]string{"condition": "kafka_write raw/3"}); got != 1 {
		t.Fatalf("condition gauge %v, want 1", got)
	}
	if got := Sum(m.Registry, "consentd_ready", nil); got != 0 {
		t.Fatalf("consentd_ready %v while a condition fails", got)
	}
	r.OnCondition("kafka_write raw/3", nil)
	if got := len(Collect(m.Registry, "consentd_condition_failing", nil)); got != 0 {
		t.Fatalf("%d condition series after recovery, want none", got)
	}
	if got := Sum(m.Registry, "consentd_ready", nil); got != 1 {
		t.Fatalf("consentd_ready %v after recovery", got)
	}
}

func TestBarrierHooksCount(t *testing.T) {
	m := New(&hooks.Readiness{})
	l := hooks.List{m}
	hooks.Each(l, func(h interface{ OnLeaseLost(string) }) { h.OnLeaseLost("fenced") })
	hooks.Each(l, func(h interface{ OnMembersFenced(int) }) { h.OnMembersFenced(2) })
	if got := Sum(m.Registry, "consentd_barrier_lease_lost_total", map[string]string{"reason": "fenced"}); got != 1 {
		t.Fatalf("lease lost %v, want 1", got)
	}
	if got := Sum(m.Registry, "consentd_barrier_members_fenced_total", nil); got != 2 {
		t.Fatalf("members fenced %v, want 2", got)
	}
}

func TestCacheUsageGauges(t *testing.T) {
	m := New(&hooks.Readiness{})
	hooks.Each(hooks.List{m}, func(h consent.CacheUsageHook) { h.OnCacheUsage(3, 400) })
	if e, b := Sum(m.Registry, "consentd_consent_cache_entries", nil), Sum(m.Registry, "consentd_consent_cache_bytes", nil); e != 3 || b != 400 {
		t.Fatalf("cache gauges %v entries, %v bytes; want 3, 400", e, b)
	}
}

// The aggregates' metrics carry nothing the release hides: no count of
// groups below the threshold, none of contributions dropped by bounding.
func TestAggregateMetricsHideWhatTheReleaseHides(t *testing.T) {
	m := New(&hooks.Readiness{})
	a := NewAggregates(m)
	a.OnAggregateWindow("dropped", 0.5, 0)
	a.OnAggregateWindow("dropped", 0.5, 3)
	a.OnAggregateKeying("dropped", "subject_in_several_partitions", 2)
	if got := Sum(m.Registry, "consentd_aggregate_epsilon_spent_total", nil); got != 1 {
		t.Fatalf("ε spent %v, want 1 (every window, released or not)", got)
	}
	if got := Sum(m.Registry, "consentd_aggregate_groups_total", map[string]string{"result": "released"}); got != 3 {
		t.Fatalf("released %v, want 3", got)
	}
	if got := len(Collect(m.Registry, "consentd_aggregate_groups_total", map[string]string{"result": "suppressed"})); got != 0 {
		t.Fatalf("%d suppressed series: the groups below the threshold count the subjects the release hides", got)
	}
	if got := len(Collect(m.Registry, "consentd_aggregate_contributions_bounded_total", nil)); got != 0 {
		t.Fatalf("%d bounded-contributions series: an exact count of one flooder's events", got)
	}
	if got := Sum(m.Registry, "consentd_aggregate_keying_evidence_total", map[string]string{"reason": "subject_in_several_partitions"}); got != 2 {
		t.Fatalf("keying evidence %v, want 2", got)
	}
}
