package consent

import (
	"context"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

type atomicHits struct{ subjects, hits atomic.Int64 }

func (h *atomicHits) OnLookup(subjects, hits int) {
	h.subjects.Add(int64(subjects))
	h.hits.Add(int64(hits))
}

// versionedStore holds, per subject, a version; the record for (subject,
// version) is a pure function, so every answer can be checked exactly.
type versionedStore struct {
	mu  sync.Mutex
	ver map[string]int64
}

func versionedRecord(s string, v int64) Record {
	if v == 0 {
		return Record{}
	}
	rng := rand.New(rand.NewPCG(uint64(v), uint64(len(s))+uint64(s[len(s)-1])))
	r := Record{Found: v%7 != 0, Version: v, Granted: map[string]bool{}}
	n := rng.IntN(6)
	for range n {
		if rng.IntN(4) == 0 {
			r.Granted["x"+strconv.Itoa(rng.IntN(300))] = true // many names, many sets
		} else {
			r.Granted["p"+strconv.Itoa(rng.IntN(8))] = true
		}
	}
	if rng.IntN(2) == 0 {
		r.GrantedAt = map[string]int64{}
		for _, p := range slices.Sorted(maps.Keys(r.Granted)) {
			r.GrantedAt[p] = v - rng.Int64N(1000)
		}
		if len(r.GrantedAt) == 0 {
			r.GrantedAt = nil
		}
	}
	if rng.IntN(4) == 0 {
		r.LinkedTo = strings.Repeat("u", rng.IntN(300))
	}
	if rng.IntN(10) == 0 {
		r.Granted["false"] = false // kept whole
	}
	return r
}

func (st *versionedStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	st.mu.Lock()
	vs := make(map[string]int64, len(subjects))
	for _, s := range subjects {
		vs[s] = st.ver[s]
	}
	st.mu.Unlock()
	if rand.IntN(3) == 0 {
		time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond) // widen the read-to-put window
	}
	out := make(map[string]Record, len(subjects))
	for s, v := range vs {
		out[s] = versionedRecord(s, v)
	}
	return out, nil
}

func TestCacheInvalidationIsNeverLost(t *testing.T) {
	for _, cfg := range []CacheConfig{
		{Size: 50, TTL: time.Hour, MaxBytes: 20_000},
		{Size: 4096, TTL: time.Hour},
		{Size: 100000, TTL: time.Hour, MaxBytes: 1 << 20},
	} {
		st := &versionedStore{ver: map[string]int64{}}
		hc := &atomicHits{}
		c := NewCache(st, cfg, hooks.List{hc})
		defer func() { t.Logf("cfg %+v: lookups %d hits %d", cfg, hc.subjects.Load(), hc.hits.Load()) }()
		const nsub = 400
		subj := func(i int) string { return "s-" + strconv.Itoa(i) + strings.Repeat("k", i%5*40) }
		var published [nsub]atomic.Int64 // version whose invalidation has returned
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for !stop.Load() {
					i := rng.IntN(nsub)
					s := subj(i)
					st.mu.Lock()
					st.ver[s]++
					v := st.ver[s]
					st.mu.Unlock()
					c.Invalidate(s)
					for {
						old := published[i].Load()
						if old >= v || published[i].CompareAndSwap(old, v) {
							break
						}
					}
					switch rng.IntN(500) {
					case 0:
						c.Purge()
					case 1:
						c.SetBypass(true)
						c.SetBypass(false)
					}
					time.Sleep(time.Duration(rng.IntN(400)) * time.Microsecond)
				}
			})
		}
		var bad atomic.Int64
		for g := range 6 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 2))
				for !stop.Load() {
					idx := make([]int, 1+rng.IntN(20))
					batch := make([]string, len(idx))
					var min []int64
					for k := range idx {
						idx[k] = rng.IntN(nsub)
						batch[k] = subj(idx[k])
						min = append(min, published[idx[k]].Load())
					}
					got, err := c.Lookup(context.Background(), batch)
					if err != nil {
						t.Error(err)
						return
					}
					for k, s := range batch {
						r := got[s]
						if r.Version < min[k] && !(r.Version == 0 && min[k] == 0) {
							if bad.Add(1) < 5 {
								t.Errorf("%s: version %d served after invalidation of %d", s, r.Version, min[k])
							}
						}
						if !reflect.DeepEqual(r, versionedRecord(s, r.Version)) && !(r.Version == 0 && !r.Found) {
							if bad.Add(1) < 5 {
								t.Errorf("%s: %+v is not the store's record of version %d", s, r, r.Version)
							}
						}
					}
				}
			})
		}
		time.Sleep(10 * time.Millisecond)
		go func() { time.Sleep(time.Second); stop.Store(true) }()
		// readers finish; then stop writers
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-done:
				goto out
			case <-time.After(10 * time.Millisecond):
			}
			// stop writers once readers are done: readers are 6 of the goroutines
			if bad.Load() > 0 {
				stop.Store(true)
			}
		}
	out:
		stop.Store(true)
	}
}
