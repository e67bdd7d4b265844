package barrier

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

type seqCache struct {
	n           atomic.Uint64
	mu          sync.Mutex
	invalidated []string
}

func (s *seqCache) Seq() uint64 { return s.n.Load() }
func (s *seqCache) Purge()      { s.n.Add(1) }
func (s *seqCache) Invalidate(subject string) {
	s.mu.Lock()
	s.invalidated = append(s.invalidated, subject)
	s.mu.Unlock()
	s.n.Add(1)
}

type fencedErr struct{}

func (fencedErr) Error() string { return "fenced" }
func (fencedErr) Fenced() bool  { return true }

// fakeLease is a Lease in memory; barriers are delivered through pub.
type fakeLease struct {
	mu        sync.Mutex
	fenced    bool
	down      bool
	rejoins   int
	left      bool
	lapse     bool // the next heartbeat finds the lease ended
	confirmed []string
	ttl       time.Duration
	pub       chan [2]any // id, subjects
}

func (m *fakeLease) TTL() time.Duration { return m.ttl }

func (m *fakeLease) Heartbeat(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("redis down")
	}
	if m.fenced {
		return fencedErr{}
	}
	if m.lapse {
		m.lapse = false
		return lapsedErr{}
	}
	return nil
}

type lapsedErr struct{}

func (lapsedErr) Error() string { return "lease had ended" }
func (lapsedErr) Lapsed() bool  { return true }

func (m *fakeLease) Rejoin(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("redis down")
	}
	m.fenced = false
	m.rejoins++
	return nil
}

func (m *fakeLease) Leave(context.Context) error {
	m.mu.Lock()
	m.left = true
	m.mu.Unlock()
	return nil
}

func (m *fakeLease) Confirm(_ context.Context, id string) error {
	m.mu.Lock()
	m.confirmed = append(m.confirmed, id)
	m.mu.Unlock()
	return nil
}

func (m *fakeLease) Watch(ctx context.Context, handle func(string, []string)) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-m.pub:
			go handle(b[0].(string), b[1].([]string))
		}
	}
}

// recorder is a hook that records conditions and lost leases.
type recorder struct {
	mu    sync.Mutex
	conds map[string]error
	lost  []string
	fence int
}

func (r *recorder) OnCondition(c string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conds == nil {
		r.conds = map[string]error{}
	}
	r.conds[c] = err
}
func (r *recorder) OnLeaseLost(reason string) {
	r.mu.Lock()
	r.lost = append(r.lost, reason)
	r.mu.Unlock()
}
func (r *recorder) OnMembersFenced(n int) { r.mu.Lock(); r.fence += n; r.mu.Unlock() }

func (r *recorder) snapshot() (map[string]error, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := map[string]error{}
	for k, v := range r.conds {
		c[k] = v
	}
	return c, append([]string(nil), r.lost...)
}

func openMember(c Cache) *Member {
	m := NewMember(&fakeLease{ttl: time.Hour}, c, nil, nil)
	m.leaseEnd = time.Now().Add(time.Hour)
	return m
}

func TestDrainWaitsForWritesCheckedBefore(t *testing.T) {
	c := &seqCache{}
	m := openMember(c)
	ctx := context.Background()
	old, err := m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Check(old) // checked at seq 0
	notYet, _ := m.Begin(ctx)
	c.n.Store(1) // a change: Invalidate
	done := make(chan error, 1)
	go func() { done <- m.Drain(ctx, c.Seq()) }()
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) while a write checked before the change was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	m.Check(notYet) // checked after the change: need not be waited for
	m.End(old)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("Drain did not return once the old write ended")
	}
	m.End(notYet)
}

func TestMemberHoldsWritesWithoutLease(t *testing.T) {
	c := &seqCache{}
	l := &fakeLease{ttl: 300 * time.Millisecond}
	rec := &recorder{}
	m := NewMember(l, c, hooks.List{rec}, nil)
	m.margin = 100 * time.Millisecond
	if conds, _ := rec.snapshot(); conds[CondBarrier] == nil {
		t.Fatal("a new member reports the barrier condition healthy before it joined")
	}
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := m.Begin(short); err == nil {
		t.Fatal("a write started before the instance joined")
	}
	ctx, stop := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); m.keepLease(ctx, 20*time.Millisecond) }()
	w, err := m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.End(w)
	if c.Seq() == 0 {
		t.Fatal("joining did not purge the cache")
	}
	// The condition is reported by the lease loop, which may still be on
	// its way there when the first write is let through.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		conds, _ := rec.snapshot()
		if conds[CondBarrier] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("joined, but the barrier condition fails: %v", conds[CondBarrier])
		}
	}

	// Fenced: writes are held until the instance purged and rejoined; the
	// loss is reported.
	l.mu.Lock()
	l.fenced = true
	l.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	l.mu.Lock()
	rejoins := l.rejoins
	l.mu.Unlock()
	if rejoins < 2 {
		t.Fatalf("%d rejoins, want a rejoin after the fence", rejoins)
	}
	if _, lost := rec.snapshot(); len(lost) == 0 || lost[0] != "fenced" {
		t.Fatalf("lease losses reported %v, want fenced first", lost)
	}

	// Redis down: the lease runs out and writes are held.
	l.mu.Lock()
	l.down = true
	l.mu.Unlock()
	time.Sleep(l.ttl)
	held, cancelHeld := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelHeld()
	if _, err := m.Begin(held); err == nil {
		t.Fatal("a write started after the lease ran out")
	}
	conds, lost := rec.snapshot()
	if !errors.Is(conds[CondBarrier], ErrLeaseLapsed) || lost[len(lost)-1] != "lapsed" {
		t.Fatalf("lapsed lease: condition %v, losses %v", conds[CondBarrier], lost)
	}
	l.mu.Lock()
	l.down = false
	l.mu.Unlock()
	w, err = m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.End(w)
	stop()
	<-runDone
}

func TestMemberConfirmsOnlyAfterOlderWritesEnd(t *testing.T) {
	c := &seqCache{}
	l := &fakeLease{ttl: time.Hour, pub: make(chan [2]any, 1)}
	m := NewMember(l, c, nil, nil)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	w, err := m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Check(w)
	l.pub <- [2]any{"b1", []string{"alice"}}
	time.Sleep(50 * time.Millisecond)
	l.mu.Lock()
	early := len(l.confirmed)
	l.mu.Unlock()
	if early != 0 {
		t.Fatal("confirmed while a write checked before the barrier was in flight")
	}
	m.End(w)
	deadline := time.Now().Add(time.Second)
	for {
		l.mu.Lock()
		n := len(l.confirmed)
		l.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no confirmation after the write ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	inv := c.invalidated
	c.mu.Unlock()
	if len(inv) != 1 || inv[0] != "alice" {
		t.Fatalf("invalidated %v, want [alice]", inv)
	}
	stop()
	<-done
	if !l.left {
		t.Fatal("Run returned without leaving the registry")
	}
}

// TestMemberCatchesUpAfterALapse: a member whose lease ended without a
// failed renewal (the registry says so, or its own clock does after a
// freeze) reports the lapse, holds writes, purges its cache (so batches
// decided before are decided again) and rejoins before writing again.
func TestMemberCatchesUpAfterALapse(t *testing.T) {
	c := &seqCache{}
	l := &fakeLease{ttl: time.Hour}
	rec := &recorder{}
	m := NewMember(l, c, hooks.List{rec}, nil)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go m.keepLease(ctx, 10*time.Millisecond)
	rejoins := func() int { l.mu.Lock(); defer l.mu.Unlock(); return l.rejoins }
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("joining", func() bool { return rejoins() == 1 })

	seq := c.Seq()
	l.mu.Lock()
	l.lapse = true
	l.mu.Unlock()
	wait("a rejoin after the registry said the lease ended", func() bool { return rejoins() == 2 })
	if c.Seq() == seq {
		t.Fatal("the cache was not purged after the lapse")
	}
	if _, lost := rec.snapshot(); len(lost) != 1 || lost[0] != "lapsed" {
		t.Fatalf("lost leases reported: %v", lost)
	}

	// Frozen past the lease by the local clock: the next renewal would
	// succeed, but the member catches up first.
	seq = c.Seq()
	m.mu.Lock()
	m.leaseEnd = time.Now().Add(-time.Second)
	m.mu.Unlock()
	wait("a rejoin after the lease ran out locally", func() bool { return rejoins() == 3 })
	if c.Seq() == seq {
		t.Fatal("the cache was not purged after the local lapse")
	}
	if _, lost := rec.snapshot(); len(lost) != 2 || lost[1] != "lapsed" {
		t.Fatalf("lost leases reported: %v", lost)
	}
	w, err := m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.End(w)
}
