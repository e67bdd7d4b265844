// Package metrics defines every Prometheus metric consentd exports, as one
// hook (internal/lib/hooks) that implements the hook interfaces of every
// package (hooks.go): the core packages import no Prometheus. One Metrics
// value is created per process (or per test) with its own registry. Must
// not import the composition root.
package metrics

import (
	"net/http"
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// Metrics holds consentd's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Consumed      *prometheus.CounterVec   // topic
	Decisions     *prometheus.CounterVec   // output, action, reason
	Segments      *prometheus.CounterVec   // purpose (output name), field, value, stage
	Written       *prometheus.CounterVec   // output
	Dropped       *prometheus.CounterVec   // reason
	DeadLettered  *prometheus.CounterVec   // reason
	Lookups       prometheus.Counter       // subjects resolved
	CacheHits     prometheus.Counter       // subjects answered by the local cache
	CacheEntries  prometheus.Gauge         // subjects the local cache holds
	CacheBytes    prometheus.Gauge         // bytes the local cache accounts to them
	RedisErrors   prometheus.Counter       // failed round trips
	InvalidRecord prometheus.Counter       // stored records that could not be read
	LookupSeconds prometheus.Histogram     // one pipelined round trip
	ProduceSecs   prometheus.Histogram     // one acknowledged produce call
	StageSeconds  *prometheus.HistogramVec // stage: a batch's time in each stage (pipeline.Stage*)
	ShadowEvents  prometheus.Counter       // events the shadow policy decided
	ShadowDiffs   *prometheus.CounterVec   // output, kind: differences of the shadow policy's decisions
	ProduceErrors prometheus.Counter       // failed produce calls (retried)
	Commits       *prometheus.CounterVec   // result
	CommitLag     *prometheus.GaugeVec     // topic, partition: fetched but not yet committed
	MembersFenced prometheus.Counter       // barrier members this instance fenced
	LeaseLost     *prometheus.CounterVec   // reason: this instance's barrier lease lost (fenced, lapsed)
	Condition     *prometheus.GaugeVec     // condition: 1 while it fails (consentd_ready reads the readiness tracker)
	Rebalances    prometheus.Counter       // generations joined
	Info          *prometheus.GaugeVec     // policy_version
	Updates       *prometheus.CounterVec   // format, result
	Links         *prometheus.CounterVec   // result: identity links asked for by events
}

// New creates and registers all metrics on a fresh registry, with the Go
// runtime and process collectors; consentd_ready and
// consentd_condition_failing read readiness at each scrape.
func New(readiness *hooks.Readiness) *Metrics {
	ready := func() bool { ok, _ := readiness.Ready(); return ok }
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.Consumed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_events_consumed_total", Help: "Raw events consumed, per raw topic."}, []string{"topic"})
	m.Decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_decisions_total", Help: "Per-output decisions: action write or skip, with the reason for skips (consent_denied:<purpose>, filtered, no_subject)."}, []string{"output", "action", "reason"})
	m.Segments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_segment_events_total", Help: "Representation measurement (policy segments): per output (label purpose: the output's name), segment field and value, the events decided for it (stage raw) and those written (stage clean). Values past the field's first top are (other); missing ones (none); personal or unreadable ones (redacted)."}, []string{"purpose", "field", "value", "stage"})
	m.Written = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_events_written_total", Help: "Clean events acknowledged by Kafka, per output."}, []string{"output"})
	m.Dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_events_dropped_total", Help: "Raw events written to no output, per reason."}, []string{"reason"})
	m.DeadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_events_dead_lettered_total", Help: "Raw events sent to the dead-letter topic, per reason."}, []string{"reason"})
	m.Lookups = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_consent_lookups_total", Help: "Subjects whose consent was resolved (cache or Redis)."})
	m.CacheHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_consent_cache_hits_total", Help: "Subjects answered by the local cache."})
	m.CacheEntries = prometheus.NewGauge(prometheus.GaugeOpts{Name: "consentd_consent_cache_entries", Help: "Subjects the local cache holds (cache.size bounds them), as of the last lookup."})
	m.CacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "consentd_consent_cache_bytes", Help: "Bytes the local cache accounts to its entries (cache.max_bytes bounds them), as of the last lookup."})
	m.RedisErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_consent_redis_errors_total", Help: "Failed Redis lookups (each retried; nothing is emitted meanwhile)."})
	m.InvalidRecord = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_consent_invalid_records_total", Help: "Stored consent records that could not be read and were treated as no consent."})
	m.LookupSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consentd_consent_lookup_seconds", Help: "Latency of one pipelined Redis lookup.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.ProduceSecs = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consentd_produce_seconds", Help: "Latency of one acknowledged produce call (a batch).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.StageSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consentd_stage_seconds", Help: "Time a batch spent in each stage on its way from the raw topic to the clean ones: fill (collecting it), lookup (consent and identity links), decide, queue (waiting for earlier batches' writes), write (until acknowledged); age: when its writes were acknowledged, the time since its oldest raw record's timestamp (raw-to-clean latency).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"stage"})
	m.ShadowEvents = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_shadow_events_total", Help: "Events the shadow policy (shadow_policy) decided beside the live one."})
	m.ShadowDiffs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_shadow_diff_total", Help: "Differences between the shadow policy's decisions and the live ones, by output and kind (newly_written, newly_dropped, field_added, field_removed, value_changed, transform_changed, dead_letter_changed)."}, []string{"output", "kind"})
	m.ProduceErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_produce_errors_total", Help: "Failed produce calls (retried until acknowledged)."})
	m.Commits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_offset_commits_total", Help: "Offset commits, by result."}, []string{"result"})
	m.CommitLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consentd_commit_lag_messages", Help: "Messages fetched but not yet committed, per raw partition."}, []string{"topic", "partition"})
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "consentd_ready", Help: "1 when consentd can decide and write events, 0 while it waits (fail closed)."}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	m.MembersFenced = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_barrier_members_fenced_total", Help: "Instances this instance's revocation barriers fenced because they did not confirm in time."})
	m.LeaseLost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_barrier_lease_lost_total", Help: "Times this instance lost its revocation barrier lease and held its writes until it rejoined, by reason (fenced: a revoker fenced it; lapsed: it could not renew in time)."}, []string{"reason"})
	m.Condition = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consentd_condition_failing", Help: "1 for each readiness condition that fails now (consent_store, consumer_group, kafka_write <topic>/<partition>, revocation_barrier); /readyz gives the cause."}, []string{"condition"})
	m.Rebalances = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentd_group_generations_total", Help: "Consumer group generations joined."})
	m.Info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consentd_policy_info", Help: "The loaded policy version (value 1)."}, []string{"policy_version"})
	m.Updates = prometheus.NewCounterVec(consentUpdatesOpts, []string{"format", "result"})
	m.Links = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentd_identity_links_total", Help: "Identity links identify and alias events asked for, by result (linked, unchanged, refused_relink: already linked to another user, refused_cap: the user has identity.max_linked_ids)."}, []string{"result"})
	for _, c := range []prometheus.Collector{m.Updates, m.Links, m.Consumed, m.Decisions, m.Segments, m.Written, m.Dropped, m.DeadLettered, m.Lookups, m.CacheHits, m.CacheEntries, m.CacheBytes, m.RedisErrors, m.InvalidRecord, m.LookupSeconds, m.ProduceSecs, m.StageSeconds, m.ShadowEvents, m.ShadowDiffs, m.ProduceErrors, m.Commits, m.CommitLag, readyGauge, m.MembersFenced, m.LeaseLost, &conditionGauge{vec: m.Condition, r: readiness}, m.Rebalances, m.Info} {
		f(c)
	}
	return m
}

// conditionGauge sets consentd_condition_failing from the readiness
// tracker at each scrape.
type conditionGauge struct {
	mu  sync.Mutex
	vec *prometheus.GaugeVec
	r   *hooks.Readiness
}

func (c *conditionGauge) Describe(ch chan<- *prometheus.Desc) { c.vec.Describe(ch) }

func (c *conditionGauge) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vec.Reset()
	for _, cond := range c.r.Failing() {
		c.vec.WithLabelValues(cond).Set(1)
	}
	c.vec.Collect(ch)
}

// RegisterBuildInfo exports consentd_build_info{version, go_version} 1.
func (m *Metrics) RegisterBuildInfo(version string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "consentd_build_info",
		Help: "The running consentd's version and Go version (value 1).",
	}, []string{"version", "go_version"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	m.Registry.MustRegister(g)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Series is one labelled value of a counter or gauge.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Collect returns every series of the counter or gauge called name whose
// labels include match.
func Collect(g prometheus.Gatherer, name string, match map[string]string) []Series {
	mfs, _ := g.Gather()
	var out []Series
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue series
				}
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			out = append(out, Series{Labels: labels, Value: v})
		}
	}
	return out
}

// Sum adds up Collect's values.
func Sum(g prometheus.Gatherer, name string, match map[string]string) float64 {
	sum := 0.0
	for _, s := range Collect(g, name, match) {
		sum += s.Value
	}
	return sum
}

var consentUpdatesOpts = prometheus.CounterOpts{Name: "consentd_consent_updates_total", Help: "Consent records read from the consent topic, by format and result (applied, stale, erased, invalid)."}
