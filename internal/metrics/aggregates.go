package metrics

import "github.com/prometheus/client_golang/prometheus"

// Aggregates is the hook of the differentially private aggregates
// (aggregates.Hook), registered on a Metrics registry only when the
// policy has aggregate outputs.
//
// None of them counts what the release hides: no count of the groups
// below the threshold, none of the contributions bounding dropped, and
// the ε spent grows with every window end, contributed to or not.
type Aggregates struct {
	Epsilon    *prometheus.CounterVec // aggregate: ε spent, summed over windows
	Groups     *prometheus.CounterVec // aggregate, result: released
	Excluded   *prometheus.CounterVec // aggregate, reason: events not counted
	Keying     *prometheus.CounterVec // aggregate, reason: evidence the raw topic is not keyed by subject
	FailedRels *prometheus.CounterVec // aggregate: windows not released
}

// NewAggregates creates the aggregates' metrics and registers them on m's
// registry.
func NewAggregates(m *Metrics) *Aggregates {
	a := &Aggregates{
		Epsilon: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_epsilon_spent_total", Help: "Privacy budget ε spent by each aggregate output: its epsilon for every window that ended, whether or not anything was contributed to it."}, []string{"aggregate"}),
		Groups:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_groups_total", Help: "Groups of aggregate windows released (noisy count above the threshold, written)."}, []string{"aggregate", "result"}),
		Excluded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_events_excluded_total", Help: "Events an aggregate would count but excluded, by reason (key_not_subject: the Kafka key is not the subject id; cap_subjects, cap_groups: the window reached max_subjects or max_groups_per_window)."},
			[]string{"aggregate", "reason"}),
		Keying: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_keying_evidence_total", Help: "Subjects whose events an aggregate counted from two raw partitions in one window (reason subject_in_several_partitions): the raw topic is not partitioned by subject, so their contributions are bounded per instance only."},
			[]string{"aggregate", "reason"}),
		FailedRels: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_release_failures_total", Help: "Aggregate windows that could not be written to the aggregates topic (lost)."}, []string{"aggregate"}),
	}
	m.Registry.MustRegister(a.Epsilon, a.Groups, a.Excluded, a.Keying, a.FailedRels)
	return a
}

// OnAggregateWindow implements aggregates.Hook.
func (a *Aggregates) OnAggregateWindow(aggregate string, epsilon float64, released int) {
	a.Epsilon.WithLabelValues(aggregate).Add(epsilon)
	a.Groups.WithLabelValues(aggregate, "released").Add(float64(released))
}

// OnAggregateExcluded implements aggregates.Hook.
func (a *Aggregates) OnAggregateExcluded(aggregate, reason string, n int) {
	a.Excluded.WithLabelValues(aggregate, reason).Add(float64(n))
}

// OnAggregateKeying implements aggregates.Hook.
func (a *Aggregates) OnAggregateKeying(aggregate, reason string, n int) {
	a.Keying.WithLabelValues(aggregate, reason).Add(float64(n))
}

// OnAggregateReleaseFailed implements aggregates.Hook.
func (a *Aggregates) OnAggregateReleaseFailed(aggregate string) {
	a.FailedRels.WithLabelValues(aggregate).Inc()
}
