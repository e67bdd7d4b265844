package metrics

import "github.com/prometheus/client_golang/prometheus"

// Aggregates is the hook of the differentially private aggregates
// (aggregates.Hook), registered on a Metrics registry only when the
// policy has aggregate outputs.
type Aggregates struct {
	Epsilon    *prometheus.CounterVec // aggregate: ε spent, summed over windows
	Groups     *prometheus.CounterVec // aggregate, result: released, suppressed
	Bounded    *prometheus.CounterVec // aggregate: contributions dropped by bounding
	Excluded   *prometheus.CounterVec // aggregate, reason: events not counted
	FailedRels *prometheus.CounterVec // aggregate: windows not released
}

// NewAggregates creates the aggregates' metrics and registers them on m's
// registry.
func NewAggregates(m *Metrics) *Aggregates {
	a := &Aggregates{
		Epsilon:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_epsilon_spent_total", Help: "Privacy budget ε spent by each aggregate output: its epsilon for every window with contributions (what each subject counted in that window spent)."}, []string{"aggregate"}),
		Groups:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_groups_total", Help: "Groups of aggregate windows, by result: released (noisy count above the threshold, written) or suppressed (below it)."}, []string{"aggregate", "result"}),
		Bounded:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_contributions_bounded_total", Help: "Events not counted by an aggregate because their subject already reached max_groups groups or max_per_group events in a group in the window."}, []string{"aggregate"}),
		Excluded:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_events_excluded_total", Help: "Events an aggregate would count but excluded, by reason (key_not_subject: the Kafka key is not the subject id, so the subject's contributions could not be bounded)."}, []string{"aggregate", "reason"}),
		FailedRels: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_aggregate_release_failures_total", Help: "Aggregate windows that could not be written to the aggregates topic (lost)."}, []string{"aggregate"}),
	}
	m.Registry.MustRegister(a.Epsilon, a.Groups, a.Bounded, a.Excluded, a.FailedRels)
	return a
}

// OnAggregateWindow implements aggregates.Hook.
func (a *Aggregates) OnAggregateWindow(aggregate string, epsilon float64, released, suppressed int) {
	a.Epsilon.WithLabelValues(aggregate).Add(epsilon)
	a.Groups.WithLabelValues(aggregate, "released").Add(float64(released))
	a.Groups.WithLabelValues(aggregate, "suppressed").Add(float64(suppressed))
}

// OnAggregateBounded implements aggregates.Hook.
func (a *Aggregates) OnAggregateBounded(aggregate string, n int) {
	a.Bounded.WithLabelValues(aggregate).Add(float64(n))
}

// OnAggregateExcluded implements aggregates.Hook.
func (a *Aggregates) OnAggregateExcluded(aggregate, reason string, n int) {
	a.Excluded.WithLabelValues(aggregate, reason).Add(float64(n))
}

// OnAggregateReleaseFailed implements aggregates.Hook.
func (a *Aggregates) OnAggregateReleaseFailed(aggregate string) {
	a.FailedRels.WithLabelValues(aggregate).Inc()
}
