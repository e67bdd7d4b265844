package pipeline

import (
	"sync"
	"time"
)

// Hooks observe the pipeline; internal/metrics implements them for
// Prometheus and Stats keeps typed totals in memory. The pipeline carries
// no metrics code of its own.
//
// Every method is called synchronously from the pipeline's goroutines, so
// implementations must be safe for concurrent use and return quickly.
type Hooks interface {
	// OnBatchWritten is called once every write of a batch is
	// acknowledged, with what the batch did. A batch abandoned in a
	// rebalance (and redelivered) is never reported.
	OnBatchWritten(a *Accounting)
	// OnProduce is called after each produce call with its duration, the
	// number of messages and its error (nil when all were acknowledged).
	OnProduce(elapsed time.Duration, messages int, err error)
	// OnCommit is called after each offset commit: err is nil when the
	// broker accepted it; lags are the committed partitions' fetched but
	// uncommitted message counts.
	OnCommit(err error, lags []PartitionLag)
	// OnGeneration is called when a consumer group generation is joined.
	OnGeneration(id int32)
	// OnReadiness is called with the new readiness whenever a condition
	// changes.
	OnReadiness(ready bool)
}

// PartitionLag is the number of messages of one raw partition fetched but
// not yet committed.
type PartitionLag struct {
	Topic     string
	Partition int
	Lag       int64
}

// NopHooks ignores every call; embed it to implement only some hooks.
type NopHooks struct{}

func (NopHooks) OnBatchWritten(*Accounting)          {}
func (NopHooks) OnProduce(time.Duration, int, error) {}
func (NopHooks) OnCommit(error, []PartitionLag)      {}
func (NopHooks) OnGeneration(int32)                  {}
func (NopHooks) OnReadiness(bool)                    {}

// Tee returns Hooks that call each of hs in order; nil entries are skipped.
func Tee(hs ...Hooks) Hooks {
	var out tee
	for _, h := range hs {
		if h != nil {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return NopHooks{}
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

type tee []Hooks

func (t tee) OnBatchWritten(a *Accounting) {
	for _, h := range t {
		h.OnBatchWritten(a)
	}
}
func (t tee) OnProduce(d time.Duration, n int, err error) {
	for _, h := range t {
		h.OnProduce(d, n, err)
	}
}
func (t tee) OnCommit(err error, lags []PartitionLag) {
	for _, h := range t {
		h.OnCommit(err, lags)
	}
}
func (t tee) OnGeneration(id int32) {
	for _, h := range t {
		h.OnGeneration(id)
	}
}
func (t tee) OnReadiness(ready bool) {
	for _, h := range t {
		h.OnReadiness(ready)
	}
}

// Stats keeps typed totals in memory, for the demo, the benchmarks and
// tests: every acknowledged batch's accounting (as a Hooks), and the
// consent lookups (as consent.CacheHooks and redisstore.Hooks). The zero
// value is ready to use; it is safe for concurrent use.
type Stats struct {
	NopHooks
	mu         sync.Mutex
	acc        Accounting
	lookups    int
	cacheHits  int
	roundTrips int
}

// StatsSnapshot is a copy of Stats' totals.
type StatsSnapshot struct {
	Accounting
	// Lookups counts subjects resolved, CacheHits those the local cache
	// answered, RoundTrips the store's pipelined round trips.
	Lookups, CacheHits, RoundTrips int
}

// OnBatchWritten implements Hooks.
func (s *Stats) OnBatchWritten(a *Accounting) {
	s.mu.Lock()
	s.acc.Add(a)
	s.mu.Unlock()
}

// OnLookup implements consent.CacheHooks.
func (s *Stats) OnLookup(subjects, cacheHits int) {
	s.mu.Lock()
	s.lookups += subjects
	s.cacheHits += cacheHits
	s.mu.Unlock()
}

// OnRoundTrip implements redisstore.Hooks.
func (s *Stats) OnRoundTrip(time.Duration, error) {
	s.mu.Lock()
	s.roundTrips++
	s.mu.Unlock()
}

// OnInvalidRecord implements redisstore.Hooks.
func (s *Stats) OnInvalidRecord() {}

// Snapshot returns a copy of the totals so far.
func (s *Stats) Snapshot() StatsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := StatsSnapshot{Accounting: NewAccounting(), Lookups: s.lookups, CacheHits: s.cacheHits, RoundTrips: s.roundTrips}
	out.Add(&s.acc)
	return out
}
