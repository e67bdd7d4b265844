package consent

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Shard-level differential test with hostile hashes (all equal, or a few
// values), long keys and tails forcing arena compactions, byte budgets
// forcing evictions, records kept whole and compact, interner resets.
func TestShardAgreesWithModel(t *testing.T) {
	for _, hmod := range []uint32{1, 3, 1 << 31} {
		for _, maxBytes := range []int{0, 2000, 70_000, 400_000} {
			for seed := range uint64(4) {
				rng := rand.New(rand.NewPCG(seed, uint64(hmod)))
				var in interner
				var u usage
				s := &shard{maxLen: 1 + rng.IntN(200), maxBytes: maxBytes, usage: &u}
				want := map[string]Record{}
				now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				hash := func(k string) uint32 { return uint32(fnv64(k)) % hmod }
				for step := range 20000 {
					k := "k" + strconv.Itoa(rng.IntN(400))
					if rng.IntN(4) == 0 {
						k += strings.Repeat("\x00", rng.IntN(3000))
					}
					switch rng.IntN(6) {
					case 0, 1, 2:
						r := randRecord(rng, now, rng.IntN(2) == 0)
						if r.ExpiredAt(now) {
							continue
						}
						x := in.encode(r)
						x.e.stale = math.MaxInt64
						s.put(k, hash(k), x, now.UnixNano())
						want[k] = r
					case 3:
						s.removeKey(k, hash(k))
						delete(want, k)
					case 4:
						e, tail, full, ok := s.get(k, hash(k), now, instant{wall: now.UnixNano(), mono: now.UnixNano()})
						w, held := want[k]
						switch {
						case ok && !held:
							t.Fatalf("step %d: %q found after its removal", step, trunc(k))
						case ok:
							var got Record
							if full != nil { // kept whole: the entry has no set
								got = *full
							} else {
								got = e.record(tail, in.setTable())
							}
							if !reflect.DeepEqual(got, w) {
								t.Fatalf("hmod %d maxBytes %d seed %d step %d: %s is %s, want %s", hmod, maxBytes, seed, step, trunc(k), fmtRec(got), fmtRec(w))
							}
						default:
							delete(want, k)
						}
					case 5:
						if rng.IntN(200) == 0 { // Purge
							s.clear()
							in.reset()
							clear(want)
						}
					}
					if s.count > s.maxLen || (maxBytes > 0 && s.bytes > maxBytes) || s.count != int(u.entries.Load()) || s.bytes != int(u.bytes.Load()) {
						t.Fatalf("step %d: count %d/%d bytes %d/%d usage %d %d", step, s.count, s.maxLen, s.bytes, maxBytes, u.entries.Load(), u.bytes.Load())
					}
				}
				// every live entry reachable, index consistent
				live := 0
				for i := range s.entries {
					e := &s.entries[i]
					if e.flags&flagLive == 0 {
						continue
					}
					live++
					k := string(s.arena[e.off : e.off+uint32(e.keyLen)])
					if j, _, ok := s.lookup(k, hash(k)); !ok || j != uint32(i) {
						t.Fatalf("%s held at %d but the index finds %d, %v", trunc(k), i, j, ok)
					}
				}
				if live != s.count || len(s.full) > s.count {
					t.Fatalf("live %d count %d full %d", live, s.count, len(s.full))
				}
			}
		}
	}
}
