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
