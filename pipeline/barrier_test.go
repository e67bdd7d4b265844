package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type seqTracker struct{ n atomic.Uint64 }

func (s *seqTracker) Seq() uint64                        { return s.n.Load() }
func (s *seqTracker) ChangedSince(uint64, []string) bool { return false }
func (s *seqTracker) Purge()                             { s.n.Add(1) }

type fakeMember struct {
	mu      sync.Mutex
	fenced  bool
	down    bool
	rejoins int
}

type fencedErr struct{}

func (fencedErr) Error() string { return "fenced" }
func (fencedErr) Fenced() bool  { return true }

func (m *fakeMember) Heartbeat(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("redis down")
	}
	if m.fenced {
		return fencedErr{}
	}
	return nil
}

func (m *fakeMember) Rejoin(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("redis down")
	}
	m.fenced = false
	m.rejoins++
	return nil
}

func TestWriteFenceDrainWaitsForWritesCheckedBefore(t *testing.T) {
	tr := &seqTracker{}
	f := &WriteFence{Changes: tr, Cache: tr, lease: time.Now().Add(time.Hour)}
	ctx := context.Background()
	old, err := f.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.check(old) // checked at seq 0
	unchecked, _ := f.begin(ctx)
	tr.n.Store(1) // a change: Invalidate
	done := make(chan error, 1)
	go func() { done <- f.Drain(ctx, tr.Seq()) }()
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) while a write checked before the change was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.check(unchecked) // checked after the change: need not be waited for
	f.end(old)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("Drain did not return once the old write ended")
	}
	f.end(unchecked)
}

func TestWriteFenceHoldsWritesWithoutLease(t *testing.T) {
	tr := &seqTracker{}
	m := &fakeMember{}
	f := &WriteFence{Changes: tr, Cache: tr, Member: m, TTL: 300 * time.Millisecond, Margin: 100 * time.Millisecond}
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := f.begin(short); err == nil {
		t.Fatal("a write started before the instance joined")
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go f.Run(ctx, 20*time.Millisecond)
	w, err := f.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.end(w)
	if tr.Seq() == 0 {
		t.Fatal("joining did not purge the cache")
	}

	// Fenced: writes are held until the instance purged and rejoined.
	m.mu.Lock()
	m.fenced = true
	m.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	m.mu.Lock()
	rejoins := m.rejoins
	m.mu.Unlock()
	if rejoins < 2 {
		t.Fatalf("%d rejoins, want a rejoin after the fence", rejoins)
	}

	// Redis down: the lease runs out and writes are held.
	m.mu.Lock()
	m.down = true
	m.mu.Unlock()
	time.Sleep(f.TTL)
	held, cancelHeld := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelHeld()
	if _, err := f.begin(held); err == nil {
		t.Fatal("a write started after the lease ran out")
	}
	m.mu.Lock()
	m.down = false
	m.mu.Unlock()
	w, err = f.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.end(w)
}
