package metrics

import (
	"strconv"
	"time"

	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

// Metrics is a hook (internal/lib/hooks) implementing every hook
// interface consentd's packages declare: pipeline's BatchWrittenHook,
// ProduceHook, StageHook, ShadowHook, CommitHook and GenerationHook, consent.LookupHook and CacheUsageHook, redisstore's RoundTripHook and InvalidRecordHook,
// kafkaops.ConsentUpdateHook and barrier's FencedHook and LeaseLostHook.
// Readiness conditions are read from the readiness tracker at each scrape
// (New), so that /readyz and the gauges never disagree. The core packages
// import no Prometheus.

// OnBatchWritten implements pipeline.BatchWrittenHook.
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
	for k, v := range a.Segments {
		m.Segments.WithLabelValues(k.Output, k.Field, k.Value, k.Stage).Add(float64(v))
	}
}

// OnProduce implements pipeline.ProduceHook.
func (m *Metrics) OnProduce(elapsed time.Duration, _ int, err error) {
	if err != nil {
		m.ProduceErrors.Inc()
		return
	}
	m.ProduceSecs.Observe(elapsed.Seconds())
}

// OnShadow implements pipeline.ShadowHook.
func (m *Metrics) OnShadow(_ []byte, diffs []policy.Diff) {
	m.ShadowEvents.Inc()
	for _, d := range diffs {
		m.ShadowDiffs.WithLabelValues(d.Output, d.Kind).Inc()
	}
}

// OnStage implements pipeline.StageHook.
func (m *Metrics) OnStage(stage string, elapsed time.Duration) {
	m.StageSeconds.WithLabelValues(stage).Observe(elapsed.Seconds())
}

// OnCommit implements pipeline.CommitHook.
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

// OnGeneration implements pipeline.GenerationHook.
func (m *Metrics) OnGeneration(int32) { m.Rebalances.Inc() }

// OnMembersFenced implements barrier.FencedHook.
func (m *Metrics) OnMembersFenced(n int) { m.MembersFenced.Add(float64(n)) }

// OnLeaseLost implements barrier.LeaseLostHook.
func (m *Metrics) OnLeaseLost(reason string) { m.LeaseLost.WithLabelValues(reason).Inc() }

// OnLookup implements consent.LookupHook.
func (m *Metrics) OnLookup(subjects, cacheHits int) {
	m.Lookups.Add(float64(subjects))
	m.CacheHits.Add(float64(cacheHits))
}

// OnCacheUsage implements consent.CacheUsageHook.
func (m *Metrics) OnCacheUsage(entries, bytes int) {
	m.CacheEntries.Set(float64(entries))
	m.CacheBytes.Set(float64(bytes))
}

// OnRoundTrip implements redisstore.RoundTripHook.
func (m *Metrics) OnRoundTrip(elapsed time.Duration, err error) {
	m.LookupSeconds.Observe(elapsed.Seconds())
	if err != nil {
		m.RedisErrors.Inc()
	}
}

// OnInvalidRecord implements redisstore.InvalidRecordHook.
func (m *Metrics) OnInvalidRecord() { m.InvalidRecord.Inc() }

// OnConsentUpdate implements kafkaops.ConsentUpdateHook.
func (m *Metrics) OnConsentUpdate(format, result string) {
	m.Updates.WithLabelValues(format, result).Inc()
}

// OnIdentityLinks implements pipeline.LinkHook.
func (m *Metrics) OnIdentityLinks(result string, n int) {
	m.Links.WithLabelValues(result).Add(float64(n))
}
