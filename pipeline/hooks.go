package pipeline

import (
	"sync"
	"time"

	"github.com/consentd/consentd/policy"
)

// Hook interfaces the engine calls (see package internal/lib/hooks):
// RunnerConfig.Hooks and ProcessorConfig.Hooks list values implementing
// any of them. Calls are synchronous: return quickly.
type (
	// BatchWrittenHook is told what a batch did once every write of it is
	// acknowledged. A batch abandoned in a rebalance (and redelivered) is
	// never reported.
	BatchWrittenHook interface{ OnBatchWritten(a *Accounting) }
	// ProduceHook is told about each produce call: its duration, the
	// number of messages and its error (nil when all were acknowledged).
	ProduceHook interface {
		OnProduce(elapsed time.Duration, messages int, err error)
	}
	// CommitHook is told about each offset commit: err is nil when the
	// broker accepted it; commits are the partitions whose offset moved,
	// with the offset committed and the messages fetched beyond it.
	CommitHook interface {
		OnCommit(err error, commits []PartitionLag)
	}
	// GenerationHook is told when a consumer group generation is joined.
	GenerationHook interface{ OnGeneration(id int32) }
	// LinkHook is told, per batch, how many identity links events asked
	// for ended in each result (see Linker).
	LinkHook interface{ OnIdentityLinks(result string, n int) }
	// ShadowHook is told, for every event the shadow policy decided
	// (ProcessorConfig.Shadow), how its decision differs from the live
	// one (none: the same), with the event's pseudonymous key under the
	// live policy. Events are counted when decided: a batch decided again
	// (stale, or redelivered) counts again.
	ShadowHook interface {
		OnShadow(key []byte, diffs []policy.Diff)
	}
	// StageHook is told, per batch, how long it spent in each stage on
	// its way from the raw topic to the clean ones (the Stage constants).
	StageHook interface {
		OnStage(stage string, elapsed time.Duration)
	}
)

// Stages of a batch, as StageHook reports them. Their sum is what the
// batch's first record waited inside consentd; StageAge is what its
// oldest record waited in all.
const (
	// StageFill: from the batch's first message in hand until the batch
	// is complete (full, or batch_linger ended, or the writer was idle).
	StageFill = "fill"
	// StageLookup: identity links and consent lookups, waits for a
	// failing store included.
	StageLookup = "lookup"
	// StageDecide: parsing, deciding and rendering every event.
	StageDecide = "decide"
	// StageQueue: decided, waiting for the partition's earlier batches to
	// be written.
	StageQueue = "queue"
	// StageWrite: from the write's start until every message is
	// acknowledged (held writes, retries and decisions made again
	// included).
	StageWrite = "write"
	// StageAge: when the batch's writes are acknowledged, the time since
	// its oldest raw record's timestamp (the producer's: kafka-go reports
	// it even on LogAppendTime topics): the raw-to-clean latency of that
	// record, producer and broker included. Records without a
	// timestamp, or with one in the future, are not counted.
	StageAge = "age"
)

// PartitionLag is one raw partition's commit: the offset committed (the
// next message to read) and the number of messages fetched but not yet
// committed.
type PartitionLag struct {
	Topic     string
	Partition int
	Offset    int64
	Lag       int64
}

// Stats is a hook that keeps typed totals in memory, for the demo, the
// benchmarks and tests: every acknowledged batch's accounting, and the
// consent lookups (consent.LookupHook, redisstore.RoundTripHook). The
// zero value is ready to use; it is safe for concurrent use.
type Stats struct {
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

// OnBatchWritten implements BatchWrittenHook.
func (s *Stats) OnBatchWritten(a *Accounting) {
	s.mu.Lock()
	s.acc.Add(a)
	s.mu.Unlock()
}

// OnLookup implements consent.LookupHook.
func (s *Stats) OnLookup(subjects, cacheHits int) {
	s.mu.Lock()
	s.lookups += subjects
	s.cacheHits += cacheHits
	s.mu.Unlock()
}

// OnRoundTrip implements redisstore.RoundTripHook.
func (s *Stats) OnRoundTrip(time.Duration, error) {
	s.mu.Lock()
	s.roundTrips++
	s.mu.Unlock()
}

// Snapshot returns a copy of the totals so far.
func (s *Stats) Snapshot() StatsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := StatsSnapshot{Accounting: NewAccounting(), Lookups: s.lookups, CacheHits: s.cacheHits, RoundTrips: s.roundTrips}
	out.Add(&s.acc)
	return out
}
