package consent

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// fnStore answers every subject with f(subject).
type fnStore func(string) Record

func (f fnStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	out := make(map[string]Record, len(subjects))
	for _, s := range subjects {
		out[s] = f(s)
	}
	return out, nil
}

// Purpose names are interned only up to maxPurposeName bytes: a store
// record naming huge purposes is kept whole and accounted to
// cache.max_bytes, and goes when its entry does.
func TestCacheInternedNamesStayBounded(t *testing.T) {
	const nameLen = 1 << 20
	names := make([]string, 64)
	for i := range names {
		names[i] = strings.Repeat(string(rune('A'+i%26)), nameLen-3) + strconv.Itoa(100+i)
	}
	st := fnStore(func(s string) Record {
		i, _ := strconv.Atoi(strings.TrimPrefix(s, "s"))
		return Record{Found: true, Version: 1, Granted: map[string]bool{names[i%64]: true}}
	})
	const budget = 1 << 20
	c := NewCache(st, CacheConfig{Size: 1000, TTL: time.Hour, MaxBytes: budget}, nil)
	base := heapNow()
	for i := range 64 {
		s := "s" + strconv.Itoa(i)
		c.Lookup(context.Background(), []string{s}) // the store's record becomes garbage after this
	}
	for i := range 64 {
		c.Invalidate("s" + strconv.Itoa(i))
	}
	entries, bytes := c.used()
	held := heapNow() - base
	t.Logf("after invalidating everything: %d entries, %d bytes accounted (budget %d), heap held by the cache %d bytes", entries, bytes, budget, held)
	if held > 4*budget {
		t.Errorf("cache holds %d MiB of heap with %d entries and %d accounted bytes (budget %d MiB)", held>>20, entries, bytes, budget>>20)
	}
	runtime.KeepAlive(c)
}

// Purpose sets are interned only over the policy's purposes
// (CacheConfig.Purposes): a store holding thousands of combinations of
// other names cannot fill memory outside cache.max_bytes.
func TestCachePurposeSetsStayBounded(t *testing.T) {
	st := fnStore(func(s string) Record {
		i, _ := strconv.Atoi(strings.TrimPrefix(s, "s"))
		g := map[string]bool{}
		// 4096 distinct sets of ~32 of 64 purposes
		x := uint64(i)*0x9E3779B97F4A7C15 | 1
		for b := range 64 {
			if x&(1<<b) != 0 {
				g["purpose-name-"+strconv.Itoa(b)] = true
			}
		}
		return Record{Found: true, Version: 1, Granted: g}
	})
	const budget = 1 << 20
	// As consentd runs it: the policy's purposes are held compactly, any
	// other name keeps its record whole (and accounted).
	c := NewCache(st, CacheConfig{Size: 100000, TTL: time.Hour, MaxBytes: budget, Purposes: policyPurposes(12, "purpose-name-")}, nil)
	base := heapNow()
	for i := range 4096 {
		c.Lookup(context.Background(), []string{"s" + strconv.Itoa(i)})
	}
	for i := range 4096 {
		c.Invalidate("s" + strconv.Itoa(i))
	}
	entries, bytes := c.used()
	_, sets := c.intern.size()
	held := heapNow() - base
	t.Logf("%d sets interned; %d entries, %d bytes accounted (budget %d); heap held %d", sets, entries, bytes, budget, held)
	if held > 2*budget {
		t.Errorf("cache holds %.1f MiB with nothing cached (budget %d MiB)", float64(held)/(1<<20), budget>>20)
	}
	runtime.KeepAlive(c)
}

// Long subjects: the cache holds no more than its budget allows, and the
// heap it holds stays within a small factor of it (the arenas keep spare
// room; see arenaBytes).
func TestCacheLongSubjectsHeapVsBudget(t *testing.T) {
	st := fnStore(func(s string) Record { return Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}} })
	const budget = 32 << 20
	c := NewCache(st, CacheConfig{Size: 100000, TTL: time.Hour, MaxBytes: budget}, nil)
	base := heapNow()
	pad := strings.Repeat("x", 65000)
	for i := range 20000 {
		c.Lookup(context.Background(), []string{pad + strconv.Itoa(i)})
	}
	entries, bytes := c.used()
	arena, ents, idx := 0, 0, 0
	for i := range c.shards {
		arena += cap(c.shards[i].arena)
		ents += cap(c.shards[i].entries) * int(unsafe.Sizeof(entry{}))
		idx += 8 * len(c.shards[i].index)
	}
	t.Logf("arenas %d, entries %d, index %d bytes; recent map %d subjects", arena, ents, idx, len(c.recent))
	held := heapNow() - base
	t.Logf("%d entries, %d bytes accounted (budget %d); heap held %d (%.2fx budget)", entries, bytes, budget, held, float64(held)/budget)
	if bytes > budget || entries*65000 > budget {
		t.Errorf("%d entries of 65 kB, %d bytes accounted: over the %d-byte budget", entries, bytes, budget)
	}
	if held > 3*budget/2 {
		t.Errorf("heap held %d bytes for a %d-byte budget", held, budget)
	}
	runtime.KeepAlive(c)
}

// Invalidations (as the Redis keyspace notifications deliver them) are
// remembered by a hash of the subject, not the subject: long subjects
// cannot grow the cache's memory past cache.max_bytes.
func TestCacheRecentChangesStayBounded(t *testing.T) {
	st := fnStore(func(s string) Record { return Record{} })
	const budget = 1 << 20
	c := NewCache(st, CacheConfig{Size: 1000, TTL: time.Hour, MaxBytes: budget}, nil)
	base := heapNow()
	pad := strings.Repeat("x", 60000)
	for i := range 5000 {
		c.Invalidate(pad + strconv.Itoa(i))
	}
	held := heapNow() - base
	entries, bytes := c.used()
	t.Logf("%d entries, %d bytes accounted (budget %d); heap held %.1f MiB", entries, bytes, budget, float64(held)/(1<<20))
	if held > 4*budget {
		t.Errorf("invalidations alone hold %.0f MiB (budget %d MiB)", float64(held)/(1<<20), budget>>20)
	}
	runtime.KeepAlive(c)
}

// One record naming 64 junk purposes cannot fill the intern tables: only
// the policy's purposes are interned, so later records stay compact and
// the byte budget holds as many subjects as before.
func TestCacheInternCannotBePoisoned(t *testing.T) {
	legit := func(s string) Record {
		return Record{Found: true, Version: 1_760_000_000_000, Granted: map[string]bool{"analytics": true, "ads": true},
			GrantedAt: map[string]int64{"analytics": 1_759_999_000_000, "ads": 1_759_999_500_000}}
	}
	perEntry := func(poison bool) float64 {
		st := fnStore(func(s string) Record {
			if s == "junk" {
				return Record{Found: true, Version: 1, Granted: manyPurposes(64, "junk")}
			}
			return legit(s)
		})
		c := NewCache(st, CacheConfig{Size: 100000, TTL: time.Hour, Purposes: []string{"analytics", "ads", "personalization"}}, nil)
		if poison {
			c.Lookup(context.Background(), []string{"junk"})
			c.Invalidate("junk")
		}
		for i := range 1000 {
			c.Lookup(context.Background(), []string{"user-" + strconv.Itoa(i)})
		}
		e, b := c.used()
		return float64(b) / float64(e)
	}
	clean, poisoned := perEntry(false), perEntry(true)
	t.Logf("accounted bytes per entry: %.0f clean, %.0f after one junk record", clean, poisoned)
	if poisoned > 2*clean {
		t.Errorf("one record with 64 purpose names makes every later entry %.1fx larger", poisoned/clean)
	}
}

// policyPurposes returns n purpose names with prefix, numbered from 0.
func policyPurposes(n int, prefix string) []string {
	var ps []string
	for i := range n {
		ps = append(ps, prefix+strconv.Itoa(i))
	}
	return ps
}
