// Package aggregates releases the policy's aggregate outputs:
// differentially private counts (and bounded sums) of the events a clean
// output did not write, per tumbling window of processing time, grouped
// by non-personal fields.
//
// The Aggregator is a pipeline.BatchWrittenHook: it counts the
// contributions (pipeline.Contribution) of batches whose writes were
// acknowledged, bounds each subject's contributions per window (at most
// max_groups groups, max_per_group events per group, its sum per group
// clipped), and when a window ends adds noise and thresholds each group
// with Google's differential-privacy library (dpagg, noise), then writes
// one message per released group to the aggregate's topic. Each window
// holds at most max_subjects subjects and max_groups_per_window groups.
// It is also a pipeline.PartitionObserver: a subject seen in two raw
// partitions in one window is evidence that the raw topic is not
// partitioned by subject (bounding is per instance), reported, not
// corrected.
//
// Owns: windows, their caps, contribution bounding, noise, thresholding and the
// aggregates topic's messages. The decision of what counts is the
// policy's (policy.Aggregate.Counts) and the pipeline's (contribute).
package aggregates

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// Writer writes the released messages (a kafka.Writer).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Hook is told what the aggregator did, for metrics. Calls are
// synchronous: return quickly.
//
// Nothing a Hook is told may depend on who contributed beyond what the
// release itself shows: how many groups fell below the threshold, or
// how many contributions bounding dropped, would count the subjects the
// release hides. Hence no such calls.
type Hook interface {
	// OnAggregateWindow: a window of the aggregate ended, whether or not
	// anything was contributed to it (releasing nothing is a release
	// too); epsilon was spent on it and released groups were released
	// (the count of a differentially private output).
	OnAggregateWindow(aggregate string, epsilon float64, released int)
	// OnAggregateExcluded: n events were not counted, for reason
	// (pipeline.ExcludedKeyNotSubject, ExcludedCapSubjects,
	// ExcludedCapGroups).
	OnAggregateExcluded(aggregate, reason string, n int)
	// OnAggregateKeying: n subjects of the aggregate's window were seen
	// in more than one raw partition (reason KeyingSeveralPartitions):
	// the raw topic is not partitioned by subject.
	OnAggregateKeying(aggregate, reason string, n int)
	// OnAggregateReleaseFailed: a window's release could not be written.
	OnAggregateReleaseFailed(aggregate string)
}

// Reasons of OnAggregateExcluded beyond pipeline's, and of
// OnAggregateKeying.
const (
	// ExcludedCapSubjects: the window already held max_subjects subjects;
	// a new subject's contribution was dropped.
	ExcludedCapSubjects = "cap_subjects"
	// ExcludedCapGroups: the window already held max_groups_per_window
	// groups; a contribution to a new group was dropped.
	ExcludedCapGroups = "cap_groups"
	// KeyingSeveralPartitions: a subject's contributions came from two
	// raw partitions in one window.
	KeyingSeveralPartitions = "subject_in_several_partitions"
)

// Config configures an Aggregator.
type Config struct {
	// Policy holds the aggregates (Policy.Aggregates); required.
	Policy *policy.Policy
	// Writer writes to the aggregates' topics; required.
	Writer Writer
	// Backoff bounds the waits between failed writes of a release.
	// Default: 100ms to 5s.
	Backoff retry.Backoff
	// Hooks are told about windows, exclusions, keying evidence and failed
	// releases (Hook). Default: none.
	Hooks hooks.List
	// Log receives failed releases, caps reached and keying evidence
	// (no personal data). Default: none.
	Log *zap.Logger
	// Now is the clock windows are cut by. Default: time.Now.
	Now func() time.Time
}

// ReleaseAttempts bounds the attempts to write one window's release:
// a window that cannot be written is lost (logged and counted), not
// held, so that the windows after it are not delayed.
const ReleaseAttempts = 5

// Tick is how often Run closes the windows that ended: a release is
// written at most Tick after its window's end.
const Tick = 200 * time.Millisecond

// Aggregator counts contributions and releases them. Safe for concurrent
// use.
type Aggregator struct {
	cfg Config
	mu  sync.Mutex
	// open holds the window being filled of each aggregate (nil: none).
	open []*window
	// ended holds windows that ended, waiting for Run.
	ended []*window
	// spentTo holds, per aggregate, the end of the next window whose
	// budget is not yet accounted (OnAggregateWindow).
	spentTo []time.Time
	// partitions numbers the raw partitions seen (ObservePartition).
	partitions map[topicPartition]int32
}

type topicPartition struct {
	topic     string
	partition int
}

// window is one aggregate's window: the bounded contributions of each
// subject seen in it.
type window struct {
	agg        int
	start, end time.Time
	subjects   map[uint64]*subject
	// groups are the distinct groups contributed to (for
	// max_groups_per_window).
	groups map[string]struct{}
	// partitions holds the raw partition each subject was seen in
	// (ObservePartition); severalPartitions once it was seen in two.
	partitions map[uint64]int32
	// capped and keyingWarned: the window's cap, and its keying, were
	// logged.
	capped, keyingWarned bool
}

// severalPartitions marks, in window.partitions, a subject already
// seen in two raw partitions.
const severalPartitions = -1

// subject is one subject's contributions in a window: at most
// max_groups groups.
type subject struct {
	groups []groupContribution
}

// groupContribution is one subject's contribution to one group: at most
// max_per_group events, and the sum of their values.
type groupContribution struct {
	group string
	n     int64
	sum   float64
}

// New validates cfg and returns an Aggregator: every aggregate's
// parameters must be accepted by the library.
func New(cfg Config) (*Aggregator, error) {
	if cfg.Policy == nil || cfg.Writer == nil {
		return nil, fmt.Errorf("aggregates: Policy and Writer are required")
	}
	cfg.Backoff.ApplyDefaults()
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	aggs := cfg.Policy.Aggregates
	for _, a := range aggs {
		b := budgetOf(a)
		if a.MaxSubjects < 1 || a.MaxGroupsPerWindow < 1 {
			return nil, fmt.Errorf("aggregate %s: max_subjects (%d) and max_groups_per_window (%d) must be at least 1", a.Name, a.MaxSubjects, a.MaxGroupsPerWindow)
		}
		if _, err := b.newCount(); err != nil {
			return nil, fmt.Errorf("aggregate %s: %w", a.Name, err)
		}
		if _, err := b.threshold(); err != nil {
			return nil, fmt.Errorf("aggregate %s: %w", a.Name, err)
		}
		if a.Sum != nil {
			if _, err := b.newSum(); err != nil {
				return nil, fmt.Errorf("aggregate %s: %w", a.Name, err)
			}
		}
	}
	g := &Aggregator{cfg: cfg, open: make([]*window, len(aggs)), spentTo: make([]time.Time, len(aggs)), partitions: map[topicPartition]int32{}}
	now := cfg.Now()
	for i, a := range aggs {
		g.spentTo[i] = now.Truncate(a.Window).Add(a.Window)
	}
	return g, nil
}

// OnBatchWritten implements pipeline.BatchWrittenHook: the batch's
// contributions are counted in the window open now.
func (g *Aggregator) OnBatchWritten(acc *pipeline.Accounting) {
	if len(acc.Contributions) == 0 {
		return
	}
	aggs := g.cfg.Policy.Aggregates
	type excl struct {
		agg    int
		reason string
	}
	var excluded map[excl]int
	var capped []*window
	g.mu.Lock()
	now := g.cfg.Now()
	for i := range acc.Contributions {
		c := &acc.Contributions[i]
		if c.Aggregate < 0 || c.Aggregate >= len(aggs) {
			continue
		}
		if c.Excluded != "" {
			if excluded == nil {
				excluded = map[excl]int{}
			}
			excluded[excl{c.Aggregate, c.Excluded}]++
			continue
		}
		w := g.windowAt(c.Aggregate, now)
		// Contributions beyond bounding are dropped silently: how many
		// there were is what one subject did.
		if reason := w.add(aggs[c.Aggregate], c); reason != "" {
			if excluded == nil {
				excluded = map[excl]int{}
			}
			excluded[excl{c.Aggregate, reason}]++
			if !w.capped {
				w.capped = true
				capped = append(capped, w)
			}
		}
	}
	g.mu.Unlock()
	for _, w := range capped {
		a := aggs[w.agg]
		g.cfg.Log.Warn("aggregate window reached its cap: contributions beyond it are not counted, and the window's guarantee is weaker (see max_subjects)",
			zap.String("aggregate", a.Name), zap.Time("window_start", w.start), zap.Int("max_subjects", a.MaxSubjects), zap.Int("max_groups_per_window", a.MaxGroupsPerWindow))
	}
	for k, n := range excluded {
		hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateExcluded(aggs[k.agg].Name, k.reason, n) })
	}
}

// windowAt returns aggregate i's window open at now, ending the open one
// if now is past it. g.mu is held.
func (g *Aggregator) windowAt(i int, now time.Time) *window {
	w := g.open[i]
	if w != nil && now.Before(w.end) {
		return w
	}
	if w != nil {
		g.ended = append(g.ended, w)
	}
	size := g.cfg.Policy.Aggregates[i].Window
	start := now.Truncate(size)
	w = &window{agg: i, start: start, end: start.Add(size), subjects: map[uint64]*subject{}, groups: map[string]struct{}{}}
	g.open[i] = w
	return w
}

// add bounds and counts c. It returns why c was dropped by a cap of the
// window (ExcludedCapSubjects, ExcludedCapGroups), "" when c was
// counted or dropped by contribution bounding.
func (w *window) add(a *policy.Aggregate, c *pipeline.Contribution) string {
	s := w.subjects[c.Subject]
	if s == nil {
		if len(w.subjects) >= a.MaxSubjects {
			return ExcludedCapSubjects
		}
		s = &subject{}
		w.subjects[c.Subject] = s
	}
	j := slices.IndexFunc(s.groups, func(gc groupContribution) bool { return gc.group == c.Group })
	if j < 0 {
		if len(s.groups) >= a.MaxGroups {
			return ""
		}
		if _, ok := w.groups[c.Group]; !ok {
			if len(w.groups) >= a.MaxGroupsPerWindow {
				return ExcludedCapGroups
			}
			w.groups[c.Group] = struct{}{}
		}
		s.groups = append(s.groups, groupContribution{group: c.Group})
		j = len(s.groups) - 1
	}
	gc := &s.groups[j]
	if gc.n >= int64(a.MaxPerGroup) {
		return ""
	}
	gc.n++
	gc.sum += c.Value
	return ""
}

// ObservePartition implements pipeline.PartitionObserver: the
// contributions of a batch of raw partition (topic, partition), before
// its writes. A subject seen in two raw partitions in one window is
// evidence that the raw topic is not partitioned by subject: its
// events may reach other instances, where its contributions are bounded
// apart. It is counted (OnAggregateKeying) and logged once per window;
// its contributions still count.
func (g *Aggregator) ObservePartition(topic string, partition int, contributions []pipeline.Contribution) {
	aggs := g.cfg.Policy.Aggregates
	var several map[int]int
	var warn []*window
	g.mu.Lock()
	now := g.cfg.Now()
	tp := topicPartition{topic, partition}
	id, ok := g.partitions[tp]
	if !ok {
		id = int32(len(g.partitions))
		g.partitions[tp] = id
	}
	for i := range contributions {
		c := &contributions[i]
		if c.Excluded != "" || c.Aggregate < 0 || c.Aggregate >= len(aggs) {
			continue
		}
		w := g.windowAt(c.Aggregate, now)
		if w.partitions == nil {
			w.partitions = map[uint64]int32{}
		}
		seen, ok := w.partitions[c.Subject]
		switch {
		case !ok:
			if len(w.partitions) < aggs[c.Aggregate].MaxSubjects {
				w.partitions[c.Subject] = id
			}
		case seen != id && seen != severalPartitions:
			w.partitions[c.Subject] = severalPartitions
			if several == nil {
				several = map[int]int{}
			}
			several[c.Aggregate]++
			if !w.keyingWarned {
				w.keyingWarned = true
				warn = append(warn, w)
			}
		}
	}
	g.mu.Unlock()
	for _, w := range warn {
		g.cfg.Log.Warn("aggregate: a subject's events came from two raw partitions in one window: the raw topic is not partitioned by subject, so a subject whose events reach m instances spends up to m·ε per window (partition the raw topic by key)",
			zap.String("aggregate", aggs[w.agg].Name), zap.Time("window_start", w.start))
	}
	for i, n := range several {
		hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateKeying(aggs[i].Name, KeyingSeveralPartitions, n) })
	}
}

// boundedCounts returns the window's counts per group after bounding,
// before noise.
func (w *window) boundedCounts() map[string]int64 {
	out := map[string]int64{}
	for _, s := range w.subjects {
		for _, gc := range s.groups {
			out[gc.group] += gc.n
		}
	}
	return out
}

// Run closes the windows that ended, every Tick, and writes their
// releases, until ctx ends. The window open when ctx ends is not
// released (its counts are lost).
func (g *Aggregator) Run(ctx context.Context) {
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Flush(ctx)
		}
	}
}

// Flush closes the windows that ended by now (Config.Now) and writes
// their releases.
//
// Every window end spends its aggregate's ε, whether or not anything was
// contributed: the windows with contributions are released, the others
// release nothing (also a release), and the budget spent (the hook's
// epsilon) depends on the clock only, not on who was seen.
func (g *Aggregator) Flush(ctx context.Context) {
	ended, empty := g.takeEnded(g.cfg.Now())
	for _, w := range ended {
		g.release(ctx, w)
	}
	aggs := g.cfg.Policy.Aggregates
	for i, n := range empty {
		for range n {
			hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateWindow(aggs[i].Name, aggs[i].Epsilon, 0) })
		}
	}
}

// takeEnded removes and returns the windows that ended by now, and how
// many window ends of each aggregate passed without one.
func (g *Aggregator) takeEnded(now time.Time) ([]*window, []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, w := range g.open {
		if w != nil && !now.Before(w.end) {
			g.ended = append(g.ended, w)
			g.open[i] = nil
		}
	}
	ended := g.ended
	g.ended = nil
	empty := make([]int, len(g.spentTo))
	for i, a := range g.cfg.Policy.Aggregates {
		for !now.Before(g.spentTo[i]) {
			empty[i]++
			g.spentTo[i] = g.spentTo[i].Add(a.Window)
		}
	}
	for _, w := range ended {
		empty[w.agg] = max(empty[w.agg]-1, 0)
	}
	return ended, empty
}

// Release is one released group: the JSON of a message on the
// aggregate's topic.
type Release struct {
	Aggregate   string            `json:"aggregate"`
	Of          string            `json:"of"`
	WindowStart string            `json:"window_start"`
	WindowEnd   string            `json:"window_end"`
	Group       map[string]string `json:"group"`
	// Count is the noisy count of the group's events, never negative.
	Count int64 `json:"count"`
	// Sum is the noisy sum, with a sum only.
	Sum         *float64 `json:"sum,omitempty"`
	Mechanism   string   `json:"mechanism"`
	Epsilon     float64  `json:"epsilon"`
	Delta       float64  `json:"delta"`
	MaxGroups   int      `json:"max_groups"`
	MaxPerGroup int      `json:"max_per_group"`
}

// release computes w's noisy groups and writes those above the
// threshold.
func (g *Aggregator) release(ctx context.Context, w *window) {
	a := g.cfg.Policy.Aggregates[w.agg]
	rels, err := compute(a, w)
	if err != nil {
		g.cfg.Log.Error("aggregate window not released", zap.String("aggregate", a.Name), zap.Time("window_start", w.start), zap.Error(err))
		hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateWindow(a.Name, a.Epsilon, 0) })
		hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateReleaseFailed(a.Name) })
		return
	}
	hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateWindow(a.Name, a.Epsilon, len(rels)) })
	if len(rels) == 0 {
		return
	}
	msgs := make([]kafka.Message, 0, len(rels))
	headers := []kafka.Header{{Key: wire.HeaderPolicyVersion, Value: []byte(g.cfg.Policy.Version)}}
	if g.cfg.Policy.Digest != "" {
		headers = append(headers, kafka.Header{Key: wire.HeaderPolicyDigest, Value: []byte(g.cfg.Policy.Digest)})
	}
	for _, r := range rels {
		value, err := json.Marshal(r)
		if err != nil {
			continue // a Release always marshals
		}
		msgs = append(msgs, kafka.Message{Topic: a.Topic, Key: key(r, a), Value: value, Headers: headers})
	}
	err = retry.Do(ctx, retry.Policy{Backoff: g.cfg.Backoff, MaxAttempts: ReleaseAttempts, OnRetry: func(attempt int, err error, wait time.Duration) {
		g.cfg.Log.Warn("writing an aggregate window failed; retrying", zap.String("aggregate", a.Name), zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
	}}, func() error { return g.cfg.Writer.WriteMessages(ctx, msgs...) })
	if err != nil {
		g.cfg.Log.Error("aggregate window not released: writing failed", zap.String("aggregate", a.Name), zap.String("topic", a.Topic),
			zap.Time("window_start", w.start), zap.Int("groups", len(msgs)), zap.Error(err))
		hooks.Each(g.cfg.Hooks, func(h Hook) { h.OnAggregateReleaseFailed(a.Name) })
	}
}

// key is a release's message key: the JSON array of the aggregate, the
// window start and the group's values (all non-personal), so that two
// groups never share a key whatever their values hold. It names the
// group; it does not make the topic compactable: with several instances
// each releases its own partial count of a group under the same key, and
// a reader sums them (the topic is not compacted).
func key(r Release, a *policy.Aggregate) []byte {
	parts := []string{r.Aggregate, r.WindowStart}
	for _, f := range a.GroupBy {
		parts = append(parts, r.Group[f.Name])
	}
	k, _ := json.Marshal(parts) // strings always marshal
	return k
}

// compute returns w's releases, sorted by group.
func compute(a *policy.Aggregate, w *window) ([]Release, error) {
	b := budgetOf(a)
	threshold, err := b.threshold()
	if err != nil {
		return nil, err
	}
	type group struct {
		count *dpagg.BoundedSumInt64
		sum   *dpagg.BoundedSumFloat64
	}
	groups := map[string]*group{}
	for _, s := range w.subjects {
		for _, gc := range s.groups {
			gr := groups[gc.group]
			if gr == nil {
				gr = &group{}
				if gr.count, err = b.newCount(); err != nil {
					return nil, err
				}
				if a.Sum != nil {
					if gr.sum, err = b.newSum(); err != nil {
						return nil, err
					}
				}
				groups[gc.group] = gr
			}
			// Each subject adds at most max_per_group to a group's count
			// and its sum clipped to [min, max] (the library clamps).
			if err := gr.count.Add(gc.n); err != nil {
				return nil, err
			}
			if gr.sum != nil {
				if err := gr.sum.Add(gc.sum); err != nil {
					return nil, err
				}
			}
		}
	}
	names := make([]string, 0, len(groups))
	for name := range groups {
		names = append(names, name)
	}
	slices.Sort(names)
	var rels []Release
	for _, name := range names {
		gr := groups[name]
		noisy, err := gr.count.Result()
		if err != nil {
			return nil, err
		}
		// A group is released only when its noisy count reaches the
		// threshold: with probability at least 1-δ_threshold, no group
		// that one subject alone adds to is released. Compared as
		// float64: the threshold is finite and below 2^53 (New).
		if float64(noisy) < threshold {
			continue
		}
		r := Release{
			Aggregate: a.Name, Of: a.Of,
			WindowStart: w.start.UTC().Format(time.RFC3339), WindowEnd: w.end.UTC().Format(time.RFC3339),
			Group: groupMap(a, name), Count: max(noisy, 0),
			Mechanism: a.Noise, Epsilon: a.Epsilon, Delta: a.Delta, MaxGroups: a.MaxGroups, MaxPerGroup: a.MaxPerGroup,
		}
		if gr.sum != nil {
			s, err := gr.sum.Result()
			if err != nil {
				return nil, err
			}
			r.Sum = &s
		}
		rels = append(rels, r)
	}
	return rels, nil
}

// groupMap returns a group's values by field name.
func groupMap(a *policy.Aggregate, group string) map[string]string {
	m := make(map[string]string, len(a.GroupBy))
	if len(a.GroupBy) == 0 {
		return m
	}
	for i, v := range strings.SplitN(group, pipeline.GroupSep, len(a.GroupBy)) {
		m[a.GroupBy[i].Name] = v
	}
	return m
}

// budget is how one window's (ε, δ) is split:
//   - ε: all to the count, or half to the count and half to the sum;
//   - δ: with Laplace noise, all to the threshold (Laplace noise spends
//     none); with Gaussian noise, half to the threshold and half to the
//     noise, itself split like ε.
//
// By basic composition the window's releases are (ε, δ)-DP for a subject
// bounded to k groups and c events per group.
type budget struct {
	a                   *policy.Aggregate
	noise               noise.Noise
	eps, noiseDelta     float64 // per mechanism (count, sum)
	thresholdDelta      float64
	maxGroups, perGroup int64
}

func budgetOf(a *policy.Aggregate) budget {
	b := budget{a: a, maxGroups: int64(a.MaxGroups), perGroup: int64(a.MaxPerGroup)}
	mechanisms := 1.0
	if a.Sum != nil {
		mechanisms = 2
	}
	b.eps = a.Epsilon / mechanisms
	b.noise, b.thresholdDelta = noise.Laplace(), a.Delta
	if a.Noise == policy.NoiseGaussian {
		b.noise, b.thresholdDelta = noise.Gaussian(), a.Delta/2
		b.noiseDelta = a.Delta / 2 / mechanisms
	}
	return b
}

// newCount returns a group's count: a bounded sum of each subject's
// events in the group, clamped to [0, c], each subject in at most k
// groups (the library's Count allows one event per subject and group).
func (b budget) newCount() (*dpagg.BoundedSumInt64, error) {
	return dpagg.NewBoundedSumInt64(&dpagg.BoundedSumInt64Options{
		Epsilon: b.eps, Delta: b.noiseDelta, MaxPartitionsContributed: b.maxGroups,
		Lower: 0, Upper: b.perGroup, Noise: b.noise,
	})
}

// newSum returns a group's sum: each subject's sum clamped to [min, max].
func (b budget) newSum() (*dpagg.BoundedSumFloat64, error) {
	return dpagg.NewBoundedSumFloat64(&dpagg.BoundedSumFloat64Options{
		Epsilon: b.eps, Delta: b.noiseDelta, MaxPartitionsContributed: b.maxGroups,
		Lower: b.a.Sum.Min, Upper: b.a.Sum.Max, Noise: b.noise,
	})
}

// MaxThreshold bounds the threshold: every integer up to it is a
// float64, so a noisy count compares with it exactly.
const MaxThreshold = 1 << 53

// threshold is the smallest noisy count released: the library's
// threshold for a partition one subject adds up to c to (Wilson et al.,
// "Differentially Private SQL with Bounded User Contribution", 2020). A
// threshold that is not finite or above MaxThreshold (a tiny ε or δ with
// a large k·c: the library returns +Inf when δ/2 < 2^-53) is refused: as
// an int64 it would wrap and release every group, or release none.
func (b budget) threshold() (float64, error) {
	t, err := b.noise.Threshold(b.maxGroups, float64(b.perGroup), b.eps, b.noiseDelta, b.thresholdDelta)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(t) || math.IsInf(t, 0) || t > MaxThreshold {
		return 0, fmt.Errorf("the release threshold for epsilon %g, delta %g, max_groups %d, max_per_group %d (%s noise) is %g, not a finite number below 2^53: raise epsilon or delta, or lower max_groups or max_per_group",
			b.a.Epsilon, b.a.Delta, b.a.MaxGroups, b.a.MaxPerGroup, b.a.Noise, t)
	}
	return math.Ceil(t), nil
}

var (
	_ pipeline.BatchWrittenHook  = (*Aggregator)(nil)
	_ pipeline.PartitionObserver = (*Aggregator)(nil)
)
