package pipeline

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// Producer writes messages; *kafka.Writer implements it. WriteMessages
// returns only once every message is acknowledged or failed; on partial
// failure it returns kafka.WriteErrors, one entry per message (nil for
// the written ones). Safe for concurrent use.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// WriteFence holds clean writes while this instance may not write and
// lets whoever changes consent wait for the writes in flight;
// *barrier.Member implements it. Safe for concurrent use.
type WriteFence interface {
	// Begin waits until writes may start and registers one in flight. It
	// fails only when ctx ends.
	Begin(ctx context.Context) (id uint64, err error)
	// Check is called just before write id's batch is checked for
	// staleness (BatchProcessor.Stale).
	Check(id uint64)
	// End unregisters write id: acknowledged, or given up.
	End(id uint64)
	// Open reports whether a write in flight may still start a produce
	// call (the instance's lease is current). A write whose retry finds
	// it closed stops, ends and is begun again: it waits, and its batch
	// is checked (and decided again) before it is retried.
	Open() bool
}

// openFence lets every write through: the engine without a barrier.
type openFence struct{}

func (openFence) Begin(context.Context) (uint64, error) { return 0, nil }
func (openFence) Check(uint64)                          {}
func (openFence) End(uint64)                            {}
func (openFence) Open() bool                            { return true }

// ChangeTracker tells whether consent changed after a batch was decided,
// so that a batch still waiting to be written is decided again.
// *consent.Cache implements it, fed by invalidations. Safe for concurrent
// use.
type ChangeTracker interface {
	// Seq returns the current change sequence number; take it before a
	// lookup.
	Seq() uint64
	// ChangedSince reports whether any of subjects may have changed after
	// seq.
	ChangedSince(seq uint64, subjects []string) bool
}

// Linker records the identity links that identify and alias events
// establish (anonymous id → user id), under its rules for what events may
// link; *redisstore.Updater implements it. LinkEvents returns the result
// of each anonymous id ("linked", "unchanged", "refused_relink": already
// linked to another user, "refused_cap": the user has too many linked
// ids, "refused_user": the id is itself a user, or the user is linked to
// another); it must be atomic per link and safe for concurrent use.
type Linker interface {
	LinkEvents(ctx context.Context, links map[string]string) (map[string]string, error)
}

// ReasonTooManyLinkedIDs dead-letters an identify or alias event that
// would link one more anonymous id to a user who has the most allowed
// (identity.max_linked_ids): an unbounded set would make an erasure of
// the user arbitrarily slow.
const ReasonTooManyLinkedIDs = "too_many_linked_ids"

// BatchProcessor turns a batch of raw messages into the messages to
// write. Process and Stale are called by one goroutine at a time (one
// processor per partition worker and per write loop). *Processor is the
// consentd implementation; enginetest runs the engine's contract against
// any.
type BatchProcessor interface {
	// Process decides msgs. It returns an error only when ctx ends before
	// the batch could be decided; then nothing of the batch is written or
	// committed. The Result must not change once returned.
	Process(ctx context.Context, msgs []kafka.Message) (*Result, error)
	// Stale reports whether consent that res was decided with changed
	// since: the engine then calls Process again just before the write.
	Stale(res *Result) bool
}
