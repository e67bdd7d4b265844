package consent

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lookupOne looks subject up in c and fails the test on an error.
func lookupOne(t *testing.T, c *Cache, subject string) Record {
	t.Helper()
	got, err := c.Lookup(context.Background(), []string{subject})
	if err != nil {
		t.Fatal(err)
	}
	return got[subject]
}

func manyPurposes(n int, prefix string) map[string]bool {
	out := make(map[string]bool, n)
	for i := range n {
		out[prefix+strconv.Itoa(i)] = true
	}
	return out
}

// TestCacheRoundTrip checks that a cached record comes back exactly as the
// store gave it, whether the cache holds it compact or whole.
func TestCacheRoundTrip(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	zone := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		rec  Record
		full bool // kept whole rather than compact
	}{
		{"no record", Record{}, false},
		{"found, nothing granted", Record{Found: true, Version: 3, Granted: map[string]bool{}}, false},
		{"found, nil Granted", Record{Found: true, Version: 3}, false},
		{"not found with grants", Record{Granted: map[string]bool{"p": true}}, false},
		{"grants", Record{Found: true, Version: 9, Granted: map[string]bool{"a": true, "b": true, "c": true}}, false},
		{"grant times", Record{Found: true, Version: 1_760_000_000_000, Granted: map[string]bool{"a": true, "b": true}, GrantedAt: map[string]int64{"a": 1_759_000_000_000, "b": 1_760_000_000_000}}, false},
		{"some grant times", Record{Found: true, Version: 5, Granted: map[string]bool{"a": true, "b": true, "c": true}, GrantedAt: map[string]int64{"b": 77}}, false},
		{"a grant time of zero", Record{Found: true, Version: 5, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{"a": 0}}, false},
		{"extreme times", Record{Found: true, Version: math.MinInt64, Granted: map[string]bool{"a": true, "b": true}, GrantedAt: map[string]int64{"a": math.MaxInt64, "b": math.MinInt64}}, false},
		{"times after the version", Record{Found: true, Version: 100, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{"a": 1 << 50}}, false},
		{"negative version", Record{Found: true, Version: -1, Granted: map[string]bool{"a": true}}, false},
		{"linked", Record{Found: true, Version: 2, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{"a": 1}, LinkedTo: "user-42"}, false},
		{"linked, nothing else", Record{LinkedTo: "user-7"}, false},
		{"expires, local", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}, Expires: time.UnixMilli(later.UnixMilli())}, false},
		{"expires, UTC", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}, Expires: later}, false},
		{"expires, other zone", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}, Expires: later.In(zone)}, true},
		{"expires past nanosecond range", Record{Found: true, Version: 1, Expires: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, true},
		{"a purpose granted false", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true, "b": false}}, true},
		{"a time for a purpose not granted", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{"b": 4}}, true},
		{"times without grants", Record{Found: true, Version: 1, GrantedAt: map[string]int64{"b": 4}}, true},
		{"empty GrantedAt", Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{}}, true},
		{"more than 64 purposes", Record{Found: true, Version: 1, Granted: manyPurposes(100, "p")}, true},
		{"a very long link", Record{Found: true, Version: 1, LinkedTo: strings.Repeat("u", maxKeyLen+1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &countingStore{recs: map[string]Record{"s": tt.rec}}
			c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, nil)
			setClock(c, func() time.Time { return now })
			first := lookupOne(t, c, "s")
			second := lookupOne(t, c, "s")
			if len(st.calls) != 1 {
				t.Fatalf("%d store calls, want 1: the record was not cached", len(st.calls))
			}
			for _, got := range []Record{first, second} {
				if !reflect.DeepEqual(got, tt.rec) {
					t.Fatalf("got %+v, want %+v", got, tt.rec)
				}
			}
			sh, h := c.shard("s")
			i, _, ok := sh.lookup("s", h)
			if !ok {
				t.Fatal("not in its shard")
			}
			if full := sh.entries[i].flags&flagFull != 0; full != tt.full {
				t.Fatalf("kept whole: %v, want %v", full, tt.full)
			}
		})
	}
}

func TestCacheInternsGrantedMaps(t *testing.T) {
	st := &countingStore{recs: map[string]Record{
		"a": {Found: true, Version: 1, Granted: map[string]bool{"x": true, "y": true}},
		"b": {Found: true, Version: 2, Granted: map[string]bool{"y": true, "x": true}, GrantedAt: map[string]int64{"x": 5}},
		"c": {Found: true, Version: 3, Granted: map[string]bool{"x": true}},
	}}
	c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, nil)
	if _, err := c.Lookup(context.Background(), []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup(context.Background(), []string{"a", "b", "c"})
	if err != nil || len(st.calls) != 1 {
		t.Fatalf("hits went to the store: %v, %d calls", err, len(st.calls))
	}
	ptr := func(s string) uintptr { return reflect.ValueOf(got[s].Granted).Pointer() }
	if ptr("a") != ptr("b") {
		t.Error("records granting the same purposes do not share their Granted map")
	}
	if ptr("a") == ptr("c") {
		t.Error("records granting different purposes share a Granted map")
	}
	for s, r := range got {
		if !reflect.DeepEqual(r.Granted, st.recs[s].Granted) {
			t.Errorf("%s: Granted %v, stored %v", s, r.Granted, st.recs[s].Granted)
		}
	}
	if got["b"].GrantedAt["x"] != 5 || len(got["b"].GrantedAt) != 1 || got["a"].GrantedAt != nil {
		t.Errorf("grant times: %v and %v", got["b"].GrantedAt, got["a"].GrantedAt)
	}
}

// filler answers every subject with a record granting a few of 8
// purposes, half of them with grant times, some linked; a subject
// prefixed "big-" links to a long id.
type filler struct {
	mu    sync.Mutex
	calls int
}

func (f *filler) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	out := make(map[string]Record, len(subjects))
	for _, s := range subjects {
		out[s] = fillerRecord(s)
	}
	return out, nil
}

func fillerRecord(s string) Record {
	r := syntheticRecord(s)
	if strings.HasPrefix(s, "big-") {
		r.Found, r.LinkedTo = true, strings.Repeat("u", 2000)
	}
	return r
}

func TestCacheBounds(t *testing.T) {
	tests := []struct {
		name     string
		cfg      CacheConfig
		subjects int
		prefix   string
		bytes    bool // the byte budget binds, not the entry bound
	}{
		{"entries, one shard", CacheConfig{Size: 50, TTL: time.Minute}, 1000, "s-", false},
		{"entries, many shards", CacheConfig{Size: 20_000, TTL: time.Minute}, 60_000, "s-", false},
		{"bytes, one shard", CacheConfig{Size: 1_000_000, TTL: time.Minute, MaxBytes: 20_000}, 5000, "s-", true},
		{"bytes, many shards", CacheConfig{Size: 1_000_000, TTL: time.Minute, MaxBytes: 4 << 20}, 100_000, "s-", true},
		{"bytes, large records", CacheConfig{Size: 1_000_000, TTL: time.Minute, MaxBytes: 200_000}, 5000, "big-", true},
		{"entries before bytes", CacheConfig{Size: 100, TTL: time.Minute, MaxBytes: 1 << 30}, 1000, "s-", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &filler{}
			c := NewCache(f, tt.cfg, nil)
			batch := make([]string, 0, 500)
			check := func() {
				t.Helper()
				entries, bytes := c.used()
				var sumEntries, sumBytes int
				for i := range c.shards {
					sh := &c.shards[i]
					sh.mu.Lock()
					if sh.count > sh.maxLen || sh.maxBytes > 0 && sh.bytes > sh.maxBytes {
						t.Fatalf("shard %d holds %d entries, %d bytes; bounds %d, %d", i, sh.count, sh.bytes, sh.maxLen, sh.maxBytes)
					}
					sumEntries += sh.count
					sumBytes += sh.bytes
					sh.mu.Unlock()
				}
				if entries != sumEntries || bytes != sumBytes {
					t.Fatalf("usage says %d entries, %d bytes; shards hold %d, %d", entries, bytes, sumEntries, sumBytes)
				}
				if entries > tt.cfg.Size || tt.cfg.MaxBytes > 0 && bytes > tt.cfg.MaxBytes {
					t.Fatalf("%d entries, %d bytes: bounds %d, %d", entries, bytes, tt.cfg.Size, tt.cfg.MaxBytes)
				}
			}
			for i := range tt.subjects {
				batch = append(batch, tt.prefix+strconv.Itoa(i))
				if len(batch) == cap(batch) || i == tt.subjects-1 {
					got, err := c.Lookup(context.Background(), batch)
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range batch {
						if !reflect.DeepEqual(got[s], fillerRecord(s)) {
							t.Fatalf("%s: %+v", s, got[s])
						}
					}
					check()
					batch = batch[:0]
				}
			}
			entries, bytes := c.used()
			if tt.bytes && bytes < tt.cfg.MaxBytes*9/10 || !tt.bytes && entries != tt.cfg.Size {
				t.Fatalf("%d entries, %d bytes: the cache is not full (bounds %d, %d)", entries, bytes, tt.cfg.Size, tt.cfg.MaxBytes)
			}
			// The last subjects looked up are cached: looked up again,
			// most do not go to the store.
			calls := f.calls
			last := tt.prefix + strconv.Itoa(tt.subjects-1)
			if r := lookupOne(t, c, last); !reflect.DeepEqual(r, fillerRecord(last)) || f.calls != calls {
				t.Fatalf("the last subject cached: %+v (%d store calls, had %d)", r, f.calls, calls)
			}
			t.Logf("%d entries, %d bytes (%.0f per entry)", entries, bytes, float64(bytes)/float64(entries))
		})
	}
}

func TestCacheEntryLargerThanBudget(t *testing.T) {
	f := &filler{}
	c := NewCache(f, CacheConfig{Size: 100, TTL: time.Minute, MaxBytes: 1000}, nil)
	for range 2 {
		if r := lookupOne(t, c, "big-1"); !reflect.DeepEqual(r, fillerRecord("big-1")) {
			t.Fatalf("answer %+v", r)
		}
	}
	if f.calls != 2 {
		t.Fatalf("%d store calls, want 2: a record larger than the budget was cached", f.calls)
	}
	if n, b := c.used(); n != 0 || b != 0 {
		t.Fatalf("holds %d entries, %d bytes", n, b)
	}
}

func TestCacheTTLAndExpiryWithClock(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		rec       Record
		advance   time.Duration
		wantCalls int
	}{
		{"within the TTL", Record{Found: true, Version: 1}, 9 * time.Second, 1},
		{"at the TTL", Record{Found: true, Version: 1}, 10 * time.Second, 2},
		{"no record, at the TTL", Record{}, 10 * time.Second, 2},
		{"before the expiry", Record{Found: true, Version: 1, Expires: start.Add(5 * time.Second)}, 4 * time.Second, 1},
		{"at the expiry", Record{Found: true, Version: 1, Expires: start.Add(5 * time.Second)}, 5 * time.Second, 2},
		{"at the expiry, kept whole", Record{Found: true, Version: 1, Granted: map[string]bool{"a": false}, Expires: start.Add(5 * time.Second)}, 5 * time.Second, 2},
		{"at the expiry, other zone", Record{Found: true, Version: 1, Expires: start.Add(5 * time.Second).In(time.FixedZone("X", 3600))}, 5 * time.Second, 2},
		{"expired already", Record{Found: true, Version: 1, Expires: start}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &countingStore{recs: map[string]Record{"s": tt.rec}}
			c := NewCache(st, CacheConfig{Size: 10, TTL: 10 * time.Second}, nil)
			now := start
			setClock(c, func() time.Time { return now })
			lookupOne(t, c, "s")
			now = now.Add(tt.advance)
			lookupOne(t, c, "s")
			if len(st.calls) != tt.wantCalls {
				t.Fatalf("%d store calls, want %d", len(st.calls), tt.wantCalls)
			}
		})
	}
}

// TestCacheEvictsStaleFirst checks that the CLOCK hand takes an entry past
// its TTL before a recently used one.
func TestCacheEvictsStaleFirst(t *testing.T) {
	st := &countingStore{recs: map[string]Record{}}
	c := NewCache(st, CacheConfig{Size: 3, TTL: 10 * time.Second}, nil)
	now := time.Unix(1000, 0)
	setClock(c, func() time.Time { return now })
	for _, s := range []string{"a", "b", "c"} {
		lookupOne(t, c, s)
		now = now.Add(4 * time.Second)
	}
	// Now "a" is past its TTL; "b" and "c" are used again.
	for _, s := range []string{"b", "c"} {
		lookupOne(t, c, s)
	}
	lookupOne(t, c, "d") // evicts a
	calls := len(st.calls)
	for _, s := range []string{"b", "c", "d"} {
		lookupOne(t, c, s)
	}
	if len(st.calls) != calls {
		t.Fatalf("store asked again: %v", st.calls[calls:])
	}
}

// TestCacheManyPurposeNames feeds the cache records over 10,000 distinct
// purpose names: the intern tables stay within their caps, every answer
// is right, and a purge empties the tables so that ordinary records are
// compact again.
func TestCacheManyPurposeNames(t *testing.T) {
	recs := map[string]Record{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		r := Record{Found: true, Version: int64(i), Granted: map[string]bool{}, GrantedAt: map[string]int64{}}
		for range 1 + rng.IntN(4) {
			p := fmt.Sprintf("purpose-%d", rng.IntN(10_000))
			r.Granted[p] = true
			r.GrantedAt[p] = int64(rng.IntN(1 << 40))
		}
		recs["s"+strconv.Itoa(i)] = r
	}
	st := &countingStore{recs: recs}
	c := NewCache(st, CacheConfig{Size: 10_000, TTL: time.Minute}, nil)
	subjects := make([]string, 0, len(recs))
	for s := range recs {
		subjects = append(subjects, s)
	}
	for range 2 {
		got, err := c.Lookup(context.Background(), subjects)
		if err != nil {
			t.Fatal(err)
		}
		for s, want := range recs {
			if !reflect.DeepEqual(got[s], want) {
				t.Fatalf("%s: %+v, want %+v", s, got[s], want)
			}
		}
	}
	if len(st.calls) != 1 {
		t.Fatalf("%d store calls: records kept whole were not cached", len(st.calls))
	}
	purposes, sets := c.intern.size()
	if purposes > maxPurposes || sets > maxPurposeSets {
		t.Fatalf("intern tables grew to %d purposes, %d sets", purposes, sets)
	}
	c.Purge()
	if p, s := c.intern.size(); p != 0 || s != 0 {
		t.Fatalf("after a purge: %d purposes, %d sets", p, s)
	}
	st.recs["ordinary"] = Record{Found: true, Version: 1, Granted: map[string]bool{"analytics": true}}
	lookupOne(t, c, "ordinary")
	sh, h := c.shard("ordinary")
	if i, _, ok := sh.lookup("ordinary", h); !ok || sh.entries[i].flags&flagFull != 0 {
		t.Fatal("an ordinary record after the purge is not compact")
	}
}

// TestCacheManyPurposeSets fills the set table past its cap over few
// purposes.
func TestCacheManyPurposeSets(t *testing.T) {
	recs := map[string]Record{}
	for i := range maxPurposeSets + 500 {
		r := Record{Found: true, Version: 1, Granted: map[string]bool{}}
		for b := range 20 {
			if i&(1<<b) != 0 {
				r.Granted["p"+strconv.Itoa(b)] = true
			}
		}
		recs["s"+strconv.Itoa(i)] = r
	}
	st := &countingStore{recs: recs}
	c := NewCache(st, CacheConfig{Size: 10_000, TTL: time.Minute}, nil)
	subjects := make([]string, 0, len(recs))
	for s := range recs {
		subjects = append(subjects, s)
	}
	for range 2 {
		got, err := c.Lookup(context.Background(), subjects)
		if err != nil {
			t.Fatal(err)
		}
		for s, want := range recs {
			if !reflect.DeepEqual(got[s], want) {
				t.Fatalf("%s: %+v, want %+v", s, got[s], want)
			}
		}
	}
	if _, sets := c.intern.size(); sets != maxPurposeSets {
		t.Fatalf("%d sets interned, want the cap %d", sets, maxPurposeSets)
	}
}

// TestShardIndex drives one shard's index and arena through random puts,
// replacements, removals and evictions, against a map.
func TestShardIndex(t *testing.T) {
	var in interner
	var u usage
	s := &shard{maxLen: 300, usage: &u}
	want := map[string]Record{}
	rng := rand.New(rand.NewPCG(5, 6))
	hash := func(k string) uint32 { return uint32(fnv64(k)) & 0xff } // many collisions
	for step := range 50_000 {
		k := "k" + strconv.Itoa(rng.IntN(1000))
		switch rng.IntN(4) {
		case 0, 1:
			r := fillerRecord(k + "/" + strconv.Itoa(step))
			x := in.encode(r)
			x.e.stale = math.MaxInt64
			s.put(k, hash(k), x, 0)
			want[k] = r
		case 2:
			s.removeKey(k, hash(k))
			delete(want, k)
		case 3:
			// Evictions drop entries: one found must be the last put,
			// one not found is forgotten.
			e, tail, full, ok := s.get(k, hash(k), time.Unix(0, 0), instant{})
			w, held := want[k]
			switch {
			case ok && !held:
				t.Fatalf("step %d: %s found after its removal", step, k)
			case ok:
				got := e.record(tail, in.setTable())
				if full != nil {
					got = *full
				}
				if !reflect.DeepEqual(got, w) {
					t.Fatalf("step %d: %s is %+v, want %+v", step, k, got, w)
				}
			default:
				delete(want, k)
			}
		}
		if s.count > s.maxLen || s.count != int(u.entries.Load()) {
			t.Fatalf("step %d: count %d, usage %d", step, s.count, u.entries.Load())
		}
	}
	// Every entry held is found through the index, and nothing else is.
	live := 0
	for i := range s.entries {
		e := &s.entries[i]
		if e.flags&flagLive == 0 {
			continue
		}
		live++
		k := string(s.arena[e.off : e.off+uint32(e.keyLen)])
		if j, _, ok := s.lookup(k, hash(k)); !ok || j != uint32(i) {
			t.Fatalf("%s held at %d but the index finds %d, %v", k, i, j, ok)
		}
	}
	used := 0
	for _, v := range s.index {
		if v != 0 {
			used++
		}
	}
	if live != s.count || used != s.count {
		t.Fatalf("%d live entries, %d index slots, count %d", live, used, s.count)
	}
	if s.dead > len(s.arena) || len(s.arena) > cap(s.arena) {
		t.Fatalf("arena: %d dead of %d (cap %d)", s.dead, len(s.arena), cap(s.arena))
	}
}

// TestCacheConcurrent runs lookups, invalidations, purges and bypasses
// together (under -race in CI): every answer is the store's.
func TestCacheConcurrent(t *testing.T) {
	f := &filler{}
	c := NewCache(f, CacheConfig{Size: 3000, TTL: time.Minute, MaxBytes: 400_000}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			batch := make([]string, 50)
			for range 300 {
				for i := range batch {
					batch[i] = "s-" + strconv.Itoa(rng.IntN(5000))
				}
				switch rng.IntN(40) {
				case 0:
					c.Purge()
				case 1:
					c.SetBypass(true)
					c.SetBypass(false)
				case 2, 3, 4:
					c.Invalidate(batch[0])
				}
				got, err := c.Lookup(ctx, batch)
				if err != nil {
					t.Error(err)
					return
				}
				for _, s := range batch {
					if !reflect.DeepEqual(got[s], fillerRecord(s)) {
						t.Errorf("%s: %+v", s, got[s])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
