package metrics

import (
	"strconv"
	"time"

	"github.com/consentd/consentd/pipeline"
)

// Metrics implements the observation hooks of every core package:
// pipeline.Hooks, consent.CacheHooks, redisstore.Hooks and
// pipeline.ConsentTopicHooks. The core packages import no Prometheus.

// OnBatchWritten implements pipeline.Hooks.
func (m *Metrics) OnBatchWritten(a *pipeline.Accounting) {
	for k, v := range a.Consumed {
		m.Consumed.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Written {
		m.Written.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Dropped {
		m.Dropped.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Dead {
		m.DeadLettered.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Decisions {
		if v > 0 {
			m.Decisions.WithLabelValues(k.Output, k.Action, k.Reason).Add(float64(v))
		}
	}
}

// OnProduce implements pipeline.Hooks.
func (m *Metrics) OnProduce(elapsed time.Duration, _ int, err error) {
	if err != nil {
		m.ProduceErrors.Inc()
		return
	}
	m.ProduceSecs.Observe(elapsed.Seconds())
}

// OnCommit implements pipeline.Hooks.
func (m *Metrics) OnCommit(err error, lags []pipeline.PartitionLag) {
	if err != nil {
		m.Commits.WithLabelValues("error").Inc()
		return
	}
	for _, l := range lags {
		m.CommitLag.WithLabelValues(l.Topic, strconv.Itoa(l.Partition)).Set(float64(l.Lag))
	}
	m.Commits.WithLabelValues("ok").Inc()
}

// OnGeneration implements pipeline.Hooks.
func (m *Metrics) OnGeneration(int32) { m.Rebalances.Inc() }

// OnReadiness implements pipeline.Hooks.
func (m *Metrics) OnReadiness(ready bool) {
	if ready {
		m.Ready.Set(1)
	} else {
		m.Ready.Set(0)
	}
}

// OnCondition implements pipeline.HealthHooks.
func (m *Metrics) OnCondition(cond string, failing bool) {
	if failing {
		m.Condition.WithLabelValues(cond).Set(1)
	} else {
		m.Condition.DeleteLabelValues(cond)
	}
}

// OnLookup implements consent.CacheHooks.
func (m *Metrics) OnLookup(subjects, cacheHits int) {
	m.Lookups.Add(float64(subjects))
	m.CacheHits.Add(float64(cacheHits))
}

// OnRoundTrip implements redisstore.Hooks.
func (m *Metrics) OnRoundTrip(elapsed time.Duration, err error) {
	m.LookupSeconds.Observe(elapsed.Seconds())
	if err != nil {
		m.RedisErrors.Inc()
	}
}

// OnInvalidRecord implements redisstore.Hooks.
func (m *Metrics) OnInvalidRecord() { m.InvalidRecord.Inc() }

// OnConsentUpdate implements pipeline.ConsentTopicHooks.
func (m *Metrics) OnConsentUpdate(format, result string) {
	m.Updates.WithLabelValues(format, result).Inc()
}
