package aggregates

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// The library's noise comes from crypto/rand and cannot be seeded: the
// statistical tests below use bounds whose false-failure probability is
// computed and below 1e-9, instead of a fixed seed.

// recorder is a Writer that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (r *recorder) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, msgs...)
	r.mu.Unlock()
	return nil
}

func (r *recorder) take(t testing.TB) []Release {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Release, len(r.msgs))
	for i, m := range r.msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	r.msgs = nil
	return out
}

// counter is a Hook that keeps totals.
type counter struct {
	windows, released, failed int
	epsilon                   float64
	excluded, keying          map[string]int
}

func (c *counter) OnAggregateWindow(_ string, eps float64, released int) {
	c.windows++
	c.epsilon += eps
	c.released += released
}
func (c *counter) OnAggregateExcluded(_, reason string, n int) {
	if c.excluded == nil {
		c.excluded = map[string]int{}
	}
	c.excluded[reason] += n
}
func (c *counter) OnAggregateKeying(_, reason string, n int) {
	if c.keying == nil {
		c.keying = map[string]int{}
	}
	c.keying[reason] += n
}
func (c *counter) OnAggregateReleaseFailed(string) { c.failed++ }

// clock is an injectable clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type harness struct {
	g     *Aggregator
	w     *recorder
	hook  *counter
	clock *clock
	agg   *policy.Aggregate
}

func newHarness(t testing.TB, agg string) *harness {
	t.Helper()
	p, err := policy.FromBytes("p.yaml", []byte(`
version: v1
purposes: [analytics]
pseudonym_key: k1
outputs:
  - {name: analytics, topic: clean, require: [analytics]}
  - {name: dropped, topic: aggs, kind: aggregate, of: analytics, window: 1m, `+agg+`}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{w: &recorder{}, hook: &counter{}, clock: &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}, agg: p.Aggregates[0]}
	h.g, err = New(Config{Policy: p, Writer: h.w, Hooks: hooks.List{h.hook}, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// add hands the aggregator one acknowledged batch: n events of subject s
// in group.
func (h *harness) add(s uint64, group string, n int) {
	acc := pipeline.NewAccounting()
	for range n {
		acc.Contributions = append(acc.Contributions, pipeline.Contribution{Subject: s, Group: group, Value: 1})
	}
	h.g.OnBatchWritten(&acc)
}

// bounded returns the open window's counts after bounding, before noise.
func (h *harness) bounded() map[string]int64 {
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	if h.g.open[0] == nil {
		return map[string]int64{}
	}
	return h.g.open[0].boundedCounts()
}

// next ends the window and releases it.
func (h *harness) next(t testing.TB) []Release {
	t.Helper()
	h.clock.now = h.clock.now.Add(time.Minute)
	h.g.Flush(context.Background())
	return h.w.take(t)
}

// chernoffExp returns t such that the mean of n independent exponential
// variables with mean b exceeds (1+t)b, or falls below (1-lo)b, each with
// probability at most p (Chernoff bounds of the Gamma distribution:
// P(mean ≥ (1+t)b) ≤ exp(-n(t-ln(1+t))), P(mean ≤ (1-t)b) ≤
// exp(-n(-t-ln(1-t)))).
func chernoffExp(n int, p float64) (hi, lo float64) {
	target := -math.Log(p) / float64(n)
	solve := func(f func(float64) float64, top float64) float64 {
		a, b := 0.0, top
		for range 200 {
			m := (a + b) / 2
			if f(m) < target {
				a = m
			} else {
				b = m
			}
		}
		return b
	}
	hi = solve(func(t float64) float64 { return t - math.Log1p(t) }, 10)
	lo = solve(func(t float64) float64 { return -t - math.Log1p(-t) }, 1-1e-12)
	return hi, lo
}

func TestNoiseHasTheConfiguredScale(t *testing.T) {
	// k=2, c=2, ε=0.5: Laplace scale b = k·c/ε = 8, variance 2b² = 128.
	h := newHarness(t, "epsilon: 0.5, delta: 1e-6, max_groups: 2, max_per_group: 2")
	const windows, subjects = 2000, 250
	const trueCount = 2 * subjects
	b := float64(h.agg.MaxGroups*h.agg.MaxPerGroup) / h.agg.Epsilon
	var sumAbs, sumSq float64
	for range windows {
		for s := range subjects {
			h.add(uint64(s+1), "G", 2)
		}
		if got := h.bounded()["G"]; got != trueCount {
			t.Fatalf("bounded count = %d, want %d", got, trueCount)
		}
		rels := h.next(t)
		// The threshold is about c + b·ln(k/2δ) ≈ 112: a count of 500
		// is below it with probability under e^-48.
		if len(rels) != 1 {
			t.Fatalf("released %d groups, want 1", len(rels))
		}
		x := float64(rels[0].Count - trueCount)
		sumAbs += math.Abs(x)
		sumSq += x * x
	}
	// |Laplace(b)| is exponential with mean b, and the library's integer
	// noise is a Laplace sample rounded to an integer (within 0.5 of it):
	// the mean absolute error lies in [(1-lo)b-0.5, (1+hi)b+0.5] but with
	// probability below 2e-10 (each side 1e-10), hence a false failure
	// below 1e-9. A scale off by k, c or ε (a factor 2 here) fails.
	hi, lo := chernoffExp(windows, 1e-10)
	mean := sumAbs / windows
	if mean < (1-lo)*b-0.5 || mean > (1+hi)*b+0.5 {
		t.Fatalf("mean |noise| = %.3f over %d windows, want within [%.3f, %.3f] (Laplace scale %.1f)", mean, windows, (1-lo)*b-0.5, (1+hi)*b+0.5, b)
	}
	t.Logf("mean |noise| %.3f (Laplace: %.1f, accepted %.3f..%.3f); variance %.1f (Laplace: %.1f)", mean, b, (1-lo)*b-0.5, (1+hi)*b+0.5, sumSq/windows, 2*b*b)
	if h.hook.windows != windows || math.Abs(h.hook.epsilon-windows*0.5) > 1e-6 {
		t.Fatalf("hook: %d windows, ε spent %v; want %d and %v", h.hook.windows, h.hook.epsilon, windows, windows*0.5)
	}
}

func TestGaussianNoiseScale(t *testing.T) {
	// Gaussian noise: σ from the library for the count's share of the
	// budget (ε, δ/2). Every |noise| stays below z·σ with z = 7: each
	// sample exceeds it with probability 2Φ(-7.1) ≈ 1.25e-12, 400 samples
	// together below 5e-10. The mean |noise| is σ·√(2/π); it must be
	// above a tenth of it (a noise 10 times too small fails).
	h := newHarness(t, "epsilon: 1, delta: 1e-5, max_groups: 1, max_per_group: 1, noise: gaussian")
	const windows, subjects = 400, 300
	sigma := noise.SigmaForGaussian(1, 1, 1, 1e-5/2)
	var sumAbs float64
	for range windows {
		for s := range subjects {
			h.add(uint64(s+1), "G", 1)
		}
		rels := h.next(t)
		if len(rels) != 1 {
			t.Fatalf("released %d groups, want 1", len(rels))
		}
		x := math.Abs(float64(rels[0].Count - subjects))
		if x > 7.1*sigma+0.5 {
			t.Fatalf("|noise| = %v, above 7.1σ = %v", x, 7.1*sigma)
		}
		sumAbs += x
	}
	// The mean of 400 half-normal samples is below a tenth of its
	// expectation with probability below e^-600 (Chernoff with λ = 10/σ:
	// E[e^-λ|X|] = 2e^50·Φ(-10) ≈ 0.079, times e^(λ·0.08σ) ≈ 2.23, to the
	// 400th power).
	if mean := sumAbs / windows; mean < 0.1*sigma*math.Sqrt(2/math.Pi) {
		t.Fatalf("mean |noise| = %v, want about %v", mean, sigma*math.Sqrt(2/math.Pi))
	}
}

func TestFloodingSubjectMovesGroupsByItsBoundAtMost(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6, max_groups: 2, max_per_group: 3")
	k, c := int64(h.agg.MaxGroups), int64(h.agg.MaxPerGroup)
	base := func() {
		for s := range 100 {
			for g := range 5 {
				h.add(uint64(1000+s), fmt.Sprintf("G%d", (s+g)%5), 1)
			}
		}
	}
	base()
	without := h.bounded()
	h.next(t)

	base()
	// The flooding subject: 10 000 events over 50 groups, in batches.
	for i := range 100 {
		acc := pipeline.NewAccounting()
		for j := range 100 {
			acc.Contributions = append(acc.Contributions, pipeline.Contribution{Subject: 7, Group: fmt.Sprintf("G%d", (i*100+j)%50), Value: 1e6})
		}
		h.g.OnBatchWritten(&acc)
	}
	with := h.bounded()
	changed, total := 0, int64(0)
	for g, n := range with {
		d := n - without[g]
		if d < 0 || d > c {
			t.Errorf("group %s moved by %d, bound c = %d", g, d, c)
		}
		if d > 0 {
			changed++
			total += d
		}
	}
	if changed > int(k) || total > k*c {
		t.Fatalf("the flooder changed %d groups by %d in all, bound k = %d groups, k·c = %d", changed, total, k, k*c)
	}
	if total != k*c {
		t.Fatalf("the flooder counted %d, want exactly k·c = %d (its first k groups, c each)", total, k*c)
	}
	if len(h.hook.excluded) != 0 {
		t.Fatalf("excluded %v: bounding drops silently (a count would be the flooder's)", h.hook.excluded)
	}
}

func TestSumIsClippedPerSubject(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6, max_per_group: 5, sum: {field: properties.revenue, min: 0, max: 10}")
	for s := range 200 {
		h.add(uint64(s+1), "G", 5) // 5 × 1 per subject: 5, inside [0, 10]
	}
	h.add(9999, "G", 5) // a subject whose sum is clipped below
	h.g.mu.Lock()
	w := h.g.open[0]
	h.g.mu.Unlock()
	w.subjects[9999].groups[0].sum = 1e9
	rels := h.next(t)
	if len(rels) != 1 || rels[0].Sum == nil {
		t.Fatalf("releases = %+v, want one with a sum", rels)
	}
	// True clipped sum: 200·5 + 10 = 1010. Sum noise: Laplace with scale
	// k·max/(ε/2) = 20; |noise| > 20·ln(1e10) ≈ 461 with probability 1e-10.
	if got := *rels[0].Sum; math.Abs(got-1010) > 20*math.Log(1e10) {
		t.Fatalf("sum = %v, want 1010 ± %v (the flooder's 1e9 clipped to 10)", got, 20*math.Log(1e10))
	}
}

// binomialTail returns P(X ≥ m) for X ~ Binomial(n, p).
func binomialTail(n, m int, p float64) float64 {
	below := 0.0
	for i := range m {
		lc, _ := math.Lgamma(float64(n + 1))
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		below += math.Exp(lc - a - b + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return 1 - below
}

func TestSingleSubjectGroupsAreNotReleased(t *testing.T) {
	const delta, windows = 1e-6, 2000
	h := newHarness(t, fmt.Sprintf("epsilon: 1, delta: %g, group_by: [event]", delta))
	lonely, crowd := 0, 0
	for range windows {
		h.add(1, "lonely", 1)
		for s := range 200 {
			h.add(uint64(100+s), "crowd", 1)
		}
		for _, r := range h.next(t) {
			if r.Count < 0 {
				t.Fatalf("negative count released: %+v", r)
			}
			switch r.Group["event"] {
			case "lonely":
				lonely++
			case "crowd":
				crowd++
			default:
				t.Fatalf("unexpected group %v", r.Group)
			}
		}
	}
	// A group of one subject passes the threshold with probability at
	// most δ per window: over 2000 windows, 4 or more releases happen
	// with probability below 1e-9 (binomial tail); 0 is expected.
	if p := binomialTail(windows, 4, delta); p > 1e-9 {
		t.Fatalf("bound too loose: P(≥4) = %g", p)
	}
	if lonely >= 4 {
		t.Fatalf("a group of one subject was released in %d of %d windows (δ = %g)", lonely, windows, delta)
	}
	// The crowd (200 subjects, threshold about 1 + ln(1/2δ) ≈ 14) is
	// released every time: the test would see a release if there were one.
	if crowd != windows {
		t.Fatalf("the group of 200 subjects was released in %d of %d windows", crowd, windows)
	}
	if h.hook.released != lonely+crowd {
		t.Fatalf("hook: %d released, want %d", h.hook.released, lonely+crowd)
	}
	t.Logf("group of one subject released in %d of %d windows", lonely, windows)
}

func TestExcludedContributionsAreNotCounted(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6")
	acc := pipeline.NewAccounting()
	for range 50 {
		acc.Contributions = append(acc.Contributions, pipeline.Contribution{Excluded: pipeline.ExcludedKeyNotSubject})
	}
	acc.Contributions = append(acc.Contributions, pipeline.Contribution{Subject: 3, Group: ""})
	h.g.OnBatchWritten(&acc)
	if got := h.bounded(); len(got) != 1 || got[""] != 1 {
		t.Fatalf("bounded counts = %v, want only the one counted event", got)
	}
	if h.hook.excluded[pipeline.ExcludedKeyNotSubject] != 50 {
		t.Fatalf("excluded = %v, want 50 key_not_subject", h.hook.excluded)
	}
}

func TestReleaseMessage(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6, group_by: [context.location.country, event]")
	for s := range 300 {
		h.add(uint64(s+1), "DE"+pipeline.GroupSep+"Order Completed", 1)
	}
	start := h.clock.now.Truncate(time.Minute)
	h.clock.now = h.clock.now.Add(time.Minute)
	h.g.Flush(context.Background())
	if len(h.w.msgs) != 1 {
		t.Fatalf("messages = %d, want 1", len(h.w.msgs))
	}
	m := h.w.msgs[0]
	if m.Topic != "aggs" || string(m.Key) != `["dropped","`+start.Format(time.RFC3339)+`","DE","Order Completed"]` {
		t.Fatalf("topic %q key %q", m.Topic, m.Key)
	}
	if len(m.Headers) != 2 || m.Headers[0].Key != wire.HeaderPolicyVersion || string(m.Headers[0].Value) != "v1" || m.Headers[1].Key != wire.HeaderPolicyDigest {
		t.Fatalf("headers = %v, want the policy version and digest only", m.Headers)
	}
	r := h.w.take(t)[0]
	if r.Aggregate != "dropped" || r.Of != "analytics" || r.WindowStart != start.Format(time.RFC3339) || r.WindowEnd != start.Add(time.Minute).Format(time.RFC3339) ||
		r.Group["context.location.country"] != "DE" || r.Group["event"] != "Order Completed" || r.Mechanism != "laplace" || r.Epsilon != 1 || r.Delta != 1e-6 ||
		r.MaxGroups != 1 || r.MaxPerGroup != 1 || r.Sum != nil || r.Count <= 0 {
		t.Fatalf("release = %+v", r)
	}
}

// BenchmarkOnBatchWritten is the aggregator's cost per acknowledged
// batch of 1000 contributions (10 000 subjects, 50 groups, k = 2, c = 3),
// paid once the batch's writes are acknowledged.
func BenchmarkOnBatchWritten(b *testing.B) {
	benchBatches(b, func(g *Aggregator, acc *pipeline.Accounting) { g.OnBatchWritten(acc) })
}

// BenchmarkObservePartition is the keying check's cost per batch of the
// same 1000 contributions (one partition), paid on the decide stage.
func BenchmarkObservePartition(b *testing.B) {
	benchBatches(b, func(g *Aggregator, acc *pipeline.Accounting) { g.ObservePartition("raw", 0, acc.Contributions) })
}

// benchBatches runs fn over a batch of 1000 contributions (10 000
// subjects, 50 groups, k = 2, c = 3), a new window every 100 batches.
func benchBatches(b *testing.B, fn func(*Aggregator, *pipeline.Accounting)) {
	h := newHarness(b, "epsilon: 1, delta: 1e-6, max_groups: 2, max_per_group: 3")
	acc := pipeline.NewAccounting()
	for i := range 1000 {
		acc.Contributions = append(acc.Contributions, pipeline.Contribution{Subject: uint64(i * 7919 % 10000), Group: fmt.Sprintf("G%d", i%50), Value: 1})
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		fn(h.g, &acc)
		if n++; n%100 == 0 {
			h.next(b) // a new window now and then, as in production
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(acc.Contributions)), "ns/contribution")
}

func TestThresholdThatOverflowsIsRefused(t *testing.T) {
	// Aggregates built by hand: the policy compiler refuses both
	// settings already, and New must too.
	for _, tt := range []struct {
		name string
		a    policy.Aggregate
	}{
		// δ/2 below 2^-53: the library's Gaussian threshold is +Inf, and
		// every single-subject group was released with count 0.
		{"gaussian tiny delta", policy.Aggregate{Noise: policy.NoiseGaussian, Epsilon: 1, Delta: 1e-16, MaxGroups: 1, MaxPerGroup: 1}},
		// About 1.8e21, which wrapped to MinInt64: every group released.
		{"laplace tiny epsilon", policy.Aggregate{Noise: policy.NoiseLaplace, Epsilon: 1e-13, Delta: 1e-6, MaxGroups: 100, MaxPerGroup: 1000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			a.Name, a.Topic, a.Window, a.MaxSubjects, a.MaxGroupsPerWindow = "dropped", "aggs", time.Minute, 10, 10
			_, err := New(Config{Policy: &policy.Policy{Aggregates: []*policy.Aggregate{&a}}, Writer: &recorder{}})
			if err == nil || !strings.Contains(err.Error(), "aggregate dropped") || !strings.Contains(err.Error(), "threshold") {
				t.Fatalf("New: err = %v, want the threshold of aggregate dropped refused", err)
			}
		})
	}
}

func TestEveryWindowEndSpendsEpsilon(t *testing.T) {
	h := newHarness(t, "epsilon: 0.5, delta: 1e-6")
	for range 3 {
		h.next(t) // nothing contributed: releasing nothing is a release
	}
	for s := range 5 {
		h.add(uint64(s+1), "", 1)
	}
	h.next(t)
	// A gap of 4 windows between two flushes spends 4 windows.
	h.clock.now = h.clock.now.Add(3 * time.Minute)
	h.next(t)
	if h.hook.windows != 8 || math.Abs(h.hook.epsilon-8*0.5) > 1e-9 {
		t.Fatalf("hook: %d windows, ε %v; want 8 windows, ε 4 (whoever contributed)", h.hook.windows, h.hook.epsilon)
	}
}

func TestWindowCaps(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6, group_by: [event], max_subjects: 10, max_groups_per_window: 3")
	core, logs := observer.New(zap.WarnLevel)
	h.g.cfg.Log = zap.New(core)
	for range 2 { // the caps hold per window
		for s := range 20 {
			h.add(uint64(s+1), "G", 1)
		}
		if got := h.bounded(); got["G"] != 10 {
			t.Fatalf("counted %v, want the first 10 subjects only", got)
		}
		if h.hook.excluded[ExcludedCapSubjects] != 10 {
			t.Fatalf("excluded %v, want 10 %s", h.hook.excluded, ExcludedCapSubjects)
		}
		h.hook.excluded = nil
		h.next(t)
	}
	for s := range 6 {
		h.add(uint64(s+1), fmt.Sprintf("G%d", s), 1)
	}
	h.add(50, "G0", 1) // a group already held still counts
	if got := h.bounded(); len(got) != 3 || got["G0"] != 2 {
		t.Fatalf("counted %v, want 3 groups, G0 twice", got)
	}
	if h.hook.excluded[ExcludedCapGroups] != 3 {
		t.Fatalf("excluded %v, want 3 %s", h.hook.excluded, ExcludedCapGroups)
	}
	if n := logs.FilterMessageSnippet("reached its cap").Len(); n != 3 {
		t.Fatalf("%d cap warnings, want one per window (3)", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.Key != "aggregate" && f.Key != "window_start" && f.Key != "max_subjects" && f.Key != "max_groups_per_window" {
				t.Fatalf("warning field %s: only the aggregate, its window and caps", f.Key)
			}
		}
	}
}

func TestSubjectInSeveralPartitionsIsDetected(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6")
	core, logs := observer.New(zap.WarnLevel)
	h.g.cfg.Log = zap.New(core)
	contrib := func(subjects ...uint64) []pipeline.Contribution {
		var cs []pipeline.Contribution
		for _, s := range subjects {
			cs = append(cs, pipeline.Contribution{Subject: s})
		}
		return append(cs, pipeline.Contribution{Excluded: pipeline.ExcludedKeyNotSubject})
	}
	h.g.ObservePartition("raw", 0, contrib(1, 2))
	h.g.ObservePartition("raw", 0, contrib(1, 2)) // again from the same partition: fine
	if len(h.hook.keying) != 0 {
		t.Fatalf("keying %v after one partition", h.hook.keying)
	}
	h.g.ObservePartition("raw", 1, contrib(2, 3))
	h.g.ObservePartition("raw", 2, contrib(2))      // subject 2 counted once
	h.g.ObservePartition("other", 0, contrib(1, 3)) // another topic's partition 0
	if got := h.hook.keying[KeyingSeveralPartitions]; got != 3 {
		t.Fatalf("keying %v, want 3 subjects in several partitions", h.hook.keying)
	}
	h.next(t)
	h.g.ObservePartition("raw", 1, contrib(1)) // a new window forgets
	if got := h.hook.keying[KeyingSeveralPartitions]; got != 3 {
		t.Fatalf("keying %v, want still 3 in a new window", h.hook.keying)
	}
	h.g.ObservePartition("raw", 0, contrib(1))
	if got := h.hook.keying[KeyingSeveralPartitions]; got != 4 {
		t.Fatalf("keying %v, want 4", h.hook.keying)
	}
	if n := logs.FilterMessageSnippet("two raw partitions").Len(); n != 2 {
		t.Fatalf("%d keying warnings, want one per window (2)", n)
	}
}

func TestReleaseKeysAreUnambiguous(t *testing.T) {
	h := newHarness(t, "epsilon: 1, delta: 1e-6, group_by: [event, properties.plan]")
	for s := range 300 {
		h.add(uint64(s+1), "a|b"+pipeline.GroupSep+"c", 1)
		h.add(uint64(1000+s), "a"+pipeline.GroupSep+"b|c", 1)
	}
	h.clock.now = h.clock.now.Add(time.Minute)
	h.g.Flush(context.Background())
	if len(h.w.msgs) != 2 {
		t.Fatalf("messages = %d, want 2", len(h.w.msgs))
	}
	if k0, k1 := string(h.w.msgs[0].Key), string(h.w.msgs[1].Key); k0 == k1 {
		t.Fatalf("groups (a|b, c) and (a, b|c) share the key %s", k0)
	}
}
