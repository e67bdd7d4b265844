package consent

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

type countingStore struct {
	mu    sync.Mutex
	recs  map[string]Record
	calls [][]string
	err   error
}

func (s *countingStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, append([]string(nil), subjects...))
	if s.err != nil {
		return nil, s.err
	}
	out := map[string]Record{}
	for _, sub := range subjects {
		out[sub] = s.recs[sub]
	}
	return out, nil
}

func TestCacheBatchesMissesAndCachesNoRecord(t *testing.T) {
	st := &countingStore{recs: map[string]Record{"a": {Found: true, Version: 1, Granted: map[string]bool{"p": true}}}}
	c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, nil)
	got, err := c.Lookup(context.Background(), []string{"a", "b", "a", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.calls) != 1 {
		t.Fatalf("%d store calls, want 1", len(st.calls))
	}
	miss := st.calls[0]
	sort.Strings(miss)
	if len(miss) != 3 || miss[0] != "a" || miss[1] != "b" || miss[2] != "c" {
		t.Fatalf("store asked for %v, want each subject once", miss)
	}
	if !got["a"].Allows("p") || got["b"].Found || got["c"].Found || len(got) != 3 {
		t.Fatalf("answers %+v", got)
	}
	// Everything, including "no record", is now cached.
	if _, err := c.Lookup(context.Background(), []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if len(st.calls) != 1 {
		t.Fatalf("cached lookups went to the store: %v", st.calls)
	}
	c.Invalidate("b")
	_, _ = c.Lookup(context.Background(), []string{"a", "b"})
	if len(st.calls) != 2 || len(st.calls[1]) != 1 || st.calls[1][0] != "b" {
		t.Fatalf("after Invalidate: %v", st.calls)
	}
}

func TestCacheTTLAndErrors(t *testing.T) {
	st := &countingStore{recs: map[string]Record{}}
	c := NewCache(st, CacheConfig{Size: 100, TTL: 50 * time.Millisecond}, nil)
	_, _ = c.Lookup(context.Background(), []string{"a"})
	st.recs["a"] = Record{Found: true, Version: 2, Granted: map[string]bool{"p": true}}
	time.Sleep(120 * time.Millisecond)
	got, _ := c.Lookup(context.Background(), []string{"a"})
	if !got["a"].Allows("p") {
		t.Fatal("stale answer served after the TTL")
	}
	st.err = errors.New("down")
	c.Purge()
	if got, err := c.Lookup(context.Background(), []string{"a"}); err == nil || got != nil {
		t.Fatalf("store error: got %v, %v; want no answer and the error", got, err)
	}
}

func TestCacheDisabled(t *testing.T) {
	st := &countingStore{recs: map[string]Record{}}
	c := NewCache(st, CacheConfig{Size: 0, TTL: time.Second}, nil)
	_, _ = c.Lookup(context.Background(), []string{"a"})
	_, _ = c.Lookup(context.Background(), []string{"a"})
	if len(st.calls) != 2 {
		t.Fatalf("size 0 still caches: %d calls", len(st.calls))
	}
}

func TestRecordAllows(t *testing.T) {
	tests := []struct {
		name string
		r    Record
		want bool
	}{
		{"zero", Record{}, false},
		{"not found ignores grants", Record{Granted: map[string]bool{"p": true}}, false},
		{"granted", Record{Found: true, Granted: map[string]bool{"p": true}}, true},
		{"denied", Record{Found: true, Granted: map[string]bool{"p": false}}, false},
		{"absent purpose", Record{Found: true, Granted: map[string]bool{"q": true}}, false},
	}
	for _, tt := range tests {
		if got := tt.r.Allows("p"); got != tt.want {
			t.Errorf("%s: Allows = %v", tt.name, got)
		}
	}
}

func TestCacheBypassAndInvalidationRace(t *testing.T) {
	st := &countingStore{recs: map[string]Record{"a": {Found: true, Version: 1, Granted: map[string]bool{"p": true}}}}
	c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, nil)
	c.SetBypass(true)
	_, _ = c.Lookup(context.Background(), []string{"a"})
	_, _ = c.Lookup(context.Background(), []string{"a"})
	if len(st.calls) != 2 {
		t.Fatalf("bypassed cache answered from memory: %d store calls", len(st.calls))
	}
	c.SetBypass(false)
	_, _ = c.Lookup(context.Background(), []string{"a"})
	_, _ = c.Lookup(context.Background(), []string{"a"})
	if len(st.calls) != 3 {
		t.Fatalf("cache not used after bypass ended: %d store calls", len(st.calls))
	}

	// An answer read before an invalidation must not be cached after it.
	slow := &invalidatingStore{inner: st, invalidate: true}
	c2 := NewCache(slow, CacheConfig{Size: 100, TTL: time.Minute}, nil)
	slow.c = c2
	_, _ = c2.Lookup(context.Background(), []string{"b"})
	slow.invalidate = false
	_, _ = c2.Lookup(context.Background(), []string{"b"})
	if slow.calls != 2 {
		t.Fatalf("an answer racing an invalidation was cached (%d store calls)", slow.calls)
	}
}

// invalidatingStore invalidates the subject while its lookup is in flight,
// as a concurrent consent change would.
type invalidatingStore struct {
	inner      Store
	c          *Cache
	invalidate bool
	calls      int
}

func (s *invalidatingStore) Lookup(ctx context.Context, subjects []string) (map[string]Record, error) {
	s.calls++
	if s.invalidate {
		s.c.Invalidate(subjects[0])
	}
	return s.inner.Lookup(ctx, subjects)
}

func TestCacheChangedSince(t *testing.T) {
	c := NewCache(&countingStore{recs: map[string]Record{}}, CacheConfig{Size: 10, TTL: time.Minute}, nil)
	s0 := c.Seq()
	if c.ChangedSince(s0, []string{"a", "b"}) {
		t.Fatal("changed with no invalidation")
	}
	c.Invalidate("b")
	if !c.ChangedSince(s0, []string{"a", "b"}) || c.ChangedSince(s0, []string{"a", "c"}) {
		t.Fatal("per-subject change not tracked")
	}
	s1 := c.Seq()
	if c.ChangedSince(s1, []string{"b"}) {
		t.Fatal("a change before the decision counted as after it")
	}
	c.SetBypass(true) // a purge: everything may have changed
	if !c.ChangedSince(s1, []string{"zzz"}) {
		t.Fatal("purge not seen as a change")
	}
}

type usageHook struct{ entries, bytes int }

func (h *usageHook) OnCacheUsage(entries, bytes int) { h.entries, h.bytes = entries, bytes }

func TestCacheReportsUsage(t *testing.T) {
	st := &countingStore{recs: map[string]Record{"a": {Found: true, Version: 1, Granted: map[string]bool{"p": true}}}}
	h := &usageHook{}
	c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, hooks.List{h})
	if _, err := c.Lookup(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if entries, bytes := c.used(); h.entries != 2 || entries != 2 || h.bytes != bytes || bytes <= 0 {
		t.Fatalf("hook told %d entries, %d bytes; the cache holds %d, %d", h.entries, h.bytes, entries, bytes)
	}
	c.Invalidate("a")
	_, _ = c.Lookup(context.Background(), []string{"b"})
	if h.entries != 1 {
		t.Fatalf("hook told %d entries after an invalidation, want 1", h.entries)
	}
}

// setClock makes c read now for record expiries and for TTLs alike, as if
// the wall clock and the monotonic one moved together.
func setClock(c *Cache, now func() time.Time) {
	start := now()
	c.now = now
	c.elapsed = func() time.Duration { return now().Sub(start) }
}
