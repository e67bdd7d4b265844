package pipeline

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"
)

// CondBarrier is the readiness condition of the revocation barrier: the
// instance's lease is not current, so it writes nothing (fail closed).
const CondBarrier = "revocation_barrier"

// Membership is an instance's lease in the revocation barrier;
// *redisstore.Member implements it.
type Membership interface {
	// Heartbeat renews the lease; an error wrapping ErrFenced when a
	// revoker fenced the instance.
	Heartbeat(ctx context.Context) error
	// Rejoin lifts the fence and renews the lease.
	Rejoin(ctx context.Context) error
}

// Purger empties a consent cache and makes every decision taken before
// stale; *consent.Cache implements it.
type Purger interface {
	Purge()
}

// WriteFence is the instance's side of the revocation barrier. It knows
// which clean writes are in flight and at which consent-change sequence
// number each was last checked (ChangeTracker.Seq), so that a barrier
// can wait until no write decided before a change is still in flight
// (Drain); and it holds every write while the instance's lease is not
// current (Run), because revokers stop waiting for an instance whose
// lease ended. A nil *WriteFence lets every write through.
type WriteFence struct {
	// Changes is the consent change sequence the writes are checked
	// against; required.
	Changes ChangeTracker
	// Cache is purged when the instance rejoins after its lease lapsed
	// or it was fenced; required.
	Cache Purger
	// Member is the lease; required by Run.
	Member Membership
	// TTL is the lease length the Member uses; Margin is how long before
	// the lease ends writes stop starting.
	TTL, Margin time.Duration
	// Health, if set, reports CondBarrier.
	Health *Health
	// Log receives warnings.
	Log *zap.Logger

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change below
	inflight map[*inflightWrite]struct{}
	lease    time.Time // writes may start until lease - Margin
	fenced   bool
}

type inflightWrite struct {
	seq uint64 // math.MaxUint64: not yet checked
}

func (f *WriteFence) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

func (f *WriteFence) waitCh() <-chan struct{} {
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

// open reports whether writes may start now.
func (f *WriteFence) openLocked(now time.Time) bool {
	return !f.fenced && now.Before(f.lease.Add(-f.Margin))
}

// begin waits until writes may start, then registers one write in
// flight, not yet checked. It fails only when ctx ends.
func (f *WriteFence) begin(ctx context.Context) (*inflightWrite, error) {
	if f == nil {
		return nil, nil
	}
	for {
		f.mu.Lock()
		now := time.Now()
		if f.openLocked(now) {
			if f.inflight == nil {
				f.inflight = map[*inflightWrite]struct{}{}
			}
			w := &inflightWrite{seq: math.MaxUint64}
			f.inflight[w] = struct{}{}
			f.mu.Unlock()
			return w, nil
		}
		ch := f.waitCh()
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// check records the change sequence number before the write's batch is
// checked for staleness: a barrier for a later change need not wait for
// the write.
func (f *WriteFence) check(w *inflightWrite) {
	if f == nil {
		return
	}
	f.mu.Lock()
	w.seq = f.Changes.Seq()
	f.mu.Unlock()
}

// end unregisters a write: acknowledged, or given up.
func (f *WriteFence) end(w *inflightWrite) {
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.inflight, w)
	f.notifyLocked()
	f.mu.Unlock()
}

// Drain waits until no write checked before change sequence number seq
// is in flight. Take seq after the change was applied to the cache (for
// example Invalidate, then Seq): writes checked later see the change and
// are decided again.
func (f *WriteFence) Drain(ctx context.Context, seq uint64) error {
	if f == nil {
		return nil
	}
	for {
		f.mu.Lock()
		busy := false
		for w := range f.inflight {
			if w.seq < seq {
				busy = true
				break
			}
		}
		ch := f.waitCh()
		f.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// ErrLeaseLapsed is reported on CondBarrier while the lease is not current.
var ErrLeaseLapsed = errors.New("revocation barrier lease not current: writes held")

// Run renews the lease every interval until ctx ends. When a renewal
// fails the lease runs out by itself and writes are held. When the
// instance was fenced, or its lease lapsed (revokers may have stopped
// waiting for it), it purges the cache, waits for the writes in flight to
// end and joins again before writing.
func (f *WriteFence) Run(ctx context.Context, interval time.Duration) {
	if f.Log == nil {
		f.Log = zap.NewNop()
	}
	lapsed := true // never joined: join as after a lapse
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if lapsed {
			err = f.catchUp(ctx)
		} else {
			err = f.Member.Heartbeat(ctx)
		}
		switch {
		case err == nil:
			f.mu.Lock()
			f.lease = start.Add(f.TTL)
			f.fenced = false
			f.notifyLocked()
			f.mu.Unlock()
			f.Health.Set(CondBarrier, nil)
			lapsed = false
		case isFenced(err):
			f.mu.Lock()
			f.fenced = true
			f.mu.Unlock()
			f.Health.Set(CondBarrier, err)
			f.Log.Warn("fenced by a revocation barrier; purging the consent cache and rejoining")
			lapsed = true
			continue
		default:
			if ctx.Err() != nil {
				return
			}
			f.mu.Lock()
			gone := !time.Now().Before(f.lease)
			f.mu.Unlock()
			if gone {
				lapsed = true
				f.Health.Set(CondBarrier, ErrLeaseLapsed)
			}
			f.Log.Warn("renewing the revocation barrier lease failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// fencedError is implemented by the error a Membership returns when the
// instance was fenced (redisstore.ErrFenced).
type fencedError interface{ Fenced() bool }

func isFenced(err error) bool {
	var fe fencedError
	return errors.As(err, &fe) && fe.Fenced()
}

// catchUp purges the cache, waits for every write in flight and rejoins.
func (f *WriteFence) catchUp(ctx context.Context) error {
	f.mu.Lock()
	f.fenced = true // hold new writes
	f.mu.Unlock()
	f.Cache.Purge()
	if err := f.Drain(ctx, f.Changes.Seq()); err != nil {
		return err
	}
	return f.Member.Rejoin(ctx)
}
