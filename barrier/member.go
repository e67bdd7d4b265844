package barrier

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/outage"
)

// CondBarrier is the readiness condition of the revocation barrier: the
// instance's lease is not current, so it writes nothing (fail closed).
const CondBarrier = "revocation_barrier"

// Defaults and fixed timings of the protocol.
const (
	// DefaultLeaseTTL is how long a member's lease lasts unless renewed.
	DefaultLeaseTTL = 3 * time.Second
	// DefaultTimeout is how long a revoker waits for confirmations
	// before it fences the members that did not confirm, and how long a
	// member tries to confirm.
	DefaultTimeout = 2 * time.Second
	// LeaseMargin is how long before its lease ends a member stops
	// starting clean writes, and how long after a fenced member's lease
	// ended the revoker still waits: a write started before the member
	// stopped has that long to land.
	LeaseMargin = time.Second
	// Heartbeats is how many lease renewals fit in one lease.
	Heartbeats = 6
	// heldPoll bounds how long a held write waits before it looks at the
	// lease again.
	heldPoll = 50 * time.Millisecond
)

var (
	// ErrLeaseLapsed is reported on CondBarrier while the lease is not
	// current.
	ErrLeaseLapsed = errors.New("revocation barrier lease not current: writes held")
	// ErrFenced is reported on CondBarrier while the member, fenced by a
	// revoker, purges its cache and rejoins.
	ErrFenced = errors.New("fenced by a revocation barrier: writes held until the instance rejoined")
)

// Member is one running instance's side of the barrier. It implements
// the pipeline's write fence (Begin, Check, End): every clean write is
// registered in flight with the change sequence number its batch was last
// checked at, and no write starts while the lease is not current. Run
// keeps the lease and answers barriers. Safe for concurrent use.
type Member struct {
	lease  Lease
	cache  Cache
	hooks  hooks.List
	log    *zap.Logger
	margin time.Duration
	// Outage receives the lease renewals' failures and recoveries, so
	// that an outage of the registry is a few lines. Set it before Run.
	// Default: a Tracker of its own, on the member's logger.
	Outage *outage.Tracker

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change below
	next     uint64
	inflight map[uint64]uint64 // write id -> seq it was checked at
	leaseEnd time.Time         // writes may start until leaseEnd - margin
	fenced   bool
}

// unchecked marks a write in flight whose batch was not checked yet.
const unchecked = ^uint64(0)

// NewMember returns a member holding lease over cache. It starts with no
// lease (writes held) and reports CondBarrier failing until Run joined.
func NewMember(lease Lease, cache Cache, hs hooks.List, log *zap.Logger) *Member {
	if log == nil {
		log = zap.NewNop()
	}
	// A lease shorter than twice the margin would never open: stop
	// starting writes half a lease before its end instead. Revokers still
	// wait LeaseMargin after a fenced lease ends, so a write started in
	// time has longer than LeaseMargin to land.
	margin := min(LeaseMargin, lease.TTL()/2)
	m := &Member{lease: lease, cache: cache, hooks: hs, log: log, margin: margin, inflight: map[uint64]uint64{}}
	hs.Condition(CondBarrier, ErrLeaseLapsed)
	return m
}

func (m *Member) notifyLocked() {
	if m.changed != nil {
		close(m.changed)
	}
	m.changed = make(chan struct{})
}

func (m *Member) waitChLocked() <-chan struct{} {
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

func (m *Member) openLocked(now time.Time) bool {
	return !m.fenced && now.Before(m.leaseEnd.Add(-m.margin))
}

// Begin waits until writes may start, then registers one write in flight,
// not yet checked, and returns its id. It fails only when ctx ends.
func (m *Member) Begin(ctx context.Context) (uint64, error) {
	for {
		m.mu.Lock()
		if m.openLocked(time.Now()) {
			m.next++
			id := m.next
			m.inflight[id] = unchecked
			m.mu.Unlock()
			return id, nil
		}
		ch := m.waitChLocked()
		m.mu.Unlock()
		t := time.NewTimer(heldPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// Open reports whether a write in flight may start another produce call:
// the lease is current and not within its margin of the end, as for
// Begin.
func (m *Member) Open() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked(time.Now())
}

// Check records the change sequence number just before write id's batch
// is checked for staleness: a barrier for a later change need not wait
// for the write, because the check will see that change.
func (m *Member) Check(id uint64) {
	m.mu.Lock()
	if _, ok := m.inflight[id]; ok {
		m.inflight[id] = m.cache.Seq()
	}
	m.mu.Unlock()
}

// End unregisters write id: acknowledged, or given up.
func (m *Member) End(id uint64) {
	m.mu.Lock()
	delete(m.inflight, id)
	m.notifyLocked()
	m.mu.Unlock()
}

// Drain waits until no write checked before change sequence number seq
// is in flight. Take seq after the change reached the cache (Invalidate,
// then Seq): writes checked later see the change and are decided again.
func (m *Member) Drain(ctx context.Context, seq uint64) error {
	for {
		m.mu.Lock()
		busy := false
		for _, s := range m.inflight {
			if s < seq {
				busy = true
				break
			}
		}
		ch := m.waitChLocked()
		m.mu.Unlock()
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

// Run answers barriers and renews the lease every TTL/Heartbeats until
// ctx ends, then leaves the registry. When a renewal fails the lease
// runs out by itself and writes are held; when the member was fenced or
// its lease lapsed (revokers may have stopped waiting for it), it purges
// the cache (so that every batch decided before is decided again before
// its write), drains its writes and joins again before writing, reporting
// CondBarrier failing meanwhile. A lapse is noticed three ways: a renewal
// fails until the lease ran out, the lease ran out by the local clock
// since the last renewal (the process was frozen), or the registry
// answers that it had (its clock).
func (m *Member) Run(ctx context.Context) {
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); m.lease.Watch(ctx, m.confirm) }()
	m.keepLease(ctx, m.lease.TTL()/Heartbeats)
	<-watchDone
	lctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.lease.Leave(lctx); err != nil {
		m.log.Warn("leaving the revocation barrier failed; the lease runs out by itself", zap.Error(err))
	}
}

// confirm drops the barrier's subjects from the cache, waits until no
// write checked before that is in flight, and confirms. A barrier that
// cannot be confirmed in time is not confirmed: the revoker fences this
// member, which is always safe.
func (m *Member) confirm(id string, subjects []string) {
	for _, s := range subjects {
		m.cache.Invalidate(s)
	}
	seq := m.cache.Seq()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := m.Drain(ctx, seq); err != nil {
		m.log.Warn("a revocation barrier could not be confirmed in time: writes in flight; the revoker fences this instance")
		return
	}
	if err := m.lease.Confirm(ctx, id); err != nil {
		m.log.Warn("confirming a revocation barrier failed; the revoker fences this instance", zap.Error(err))
	}
}

// keepLease is the lease loop of Run.
func (m *Member) keepLease(ctx context.Context, interval time.Duration) {
	loop := outage.OrNew(m.Outage, "the barrier registry", "", m.log).Loop("barrier lease", "writes are held once the lease has run out")
	defer loop.Close()
	lapsed := true // never joined: join as after a lapse
	for ctx.Err() == nil {
		start := time.Now()
		m.mu.Lock()
		ended := !lapsed && !start.Before(m.leaseEnd)
		m.mu.Unlock()
		if ended {
			// The lease ran out since the last renewal without a failed
			// one: the process was frozen (stopped, paused). Revokers may
			// have stopped waiting for it: catch up before any write.
			lapsed = true
			m.lost("lapsed", ErrLeaseLapsed)
		}
		var err error
		if lapsed {
			err = m.catchUp(ctx)
		} else {
			err = m.lease.Heartbeat(ctx)
		}
		switch {
		case err == nil:
			m.mu.Lock()
			m.leaseEnd = start.Add(m.lease.TTL())
			m.fenced = false
			m.notifyLocked()
			m.mu.Unlock()
			m.hooks.Condition(CondBarrier, nil)
			loop.OK()
			lapsed = false
		case IsFenced(err), IsLapsed(err):
			// Fenced by a revoker, or the registry saw the lease end first
			// (its clock): hold writes and rejoin at once.
			m.mu.Lock()
			m.fenced = true
			m.mu.Unlock()
			if IsFenced(err) {
				m.lost("fenced", ErrFenced)
			} else {
				m.lost("lapsed", ErrLeaseLapsed)
			}
			lapsed = true
			continue
		default:
			if ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			gone := !time.Now().Before(m.leaseEnd)
			m.mu.Unlock()
			switch {
			case gone && !lapsed:
				lapsed = true
				m.lost("lapsed", ErrLeaseLapsed)
			case gone:
				// Still catching up (after a fence, say) and the lease ran
				// out meanwhile: say so.
				m.hooks.Condition(CondBarrier, ErrLeaseLapsed)
			}
			loop.Failed(err)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// lost reports the lease lost, through the hooks and the log.
func (m *Member) lost(reason string, err error) {
	m.hooks.Condition(CondBarrier, err)
	hooks.Each(m.hooks, func(h LeaseLostHook) { h.OnLeaseLost(reason) })
	m.log.Warn("revocation barrier lease lost; purging the consent cache and rejoining", zap.String("reason", reason))
}

// catchUp purges the cache, waits for every write in flight and rejoins.
func (m *Member) catchUp(ctx context.Context) error {
	m.mu.Lock()
	m.fenced = true // hold new writes
	m.mu.Unlock()
	m.cache.Purge()
	if err := m.Drain(ctx, m.cache.Seq()); err != nil {
		return err
	}
	return m.lease.Rejoin(ctx)
}
