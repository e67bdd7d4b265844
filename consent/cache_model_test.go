package consent

// Differential test of the compact cache against a reference model of what
// it may answer: the store's value for the subject at some lookup that
// began within the TTL and after the subject's last invalidation / purge,
// never a record expired at now.

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

	"github.com/consentd/consentd/internal/lib/hooks"
)

type hitCounter struct{ subjects, hits int }

func (h *hitCounter) OnLookup(subjects, hits int) { h.subjects += subjects; h.hits += hits }

type histEntry struct {
	rec      Record
	from, to int // op interval [from, to); to = MaxInt while current
}

type modelStore struct {
	mu    sync.Mutex
	cur   map[string]Record
	now   func() time.Time
	calls int
}

func (m *modelStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	out := make(map[string]Record, len(subjects))
	for _, s := range subjects {
		r := m.cur[s]
		if r.ExpiredAt(m.now()) { // like redisstore.Decode: expired is no record
			r = Record{}
		}
		out[s] = r
	}
	return out, nil
}

var modelZone = time.FixedZone("X", 5400)

func randPurpose(rng *rand.Rand, hostile bool) string {
	if hostile && rng.IntN(3) == 0 {
		return "h" + strconv.Itoa(rng.IntN(200)) + strings.Repeat("z", rng.IntN(3)*50)
	}
	return []string{"analytics", "ads", "personalization", "email", "", "a\x00b", "é"}[rng.IntN(7)]
}

func randRecord(rng *rand.Rand, now time.Time, hostile bool) Record {
	if rng.IntN(6) == 0 {
		return Record{}
	}
	r := Record{Found: rng.IntN(8) != 0}
	switch rng.IntN(5) {
	case 0:
		r.Version = rng.Int64()
	case 1:
		r.Version = []int64{0, -1, math.MinInt64, math.MaxInt64}[rng.IntN(4)]
	default:
		r.Version = now.UnixMilli() - rng.Int64N(1e9)
	}
	if rng.IntN(5) != 0 {
		r.Granted = map[string]bool{}
		for range rng.IntN(5) {
			r.Granted[randPurpose(rng, hostile)] = rng.IntN(15) != 0
		}
		if hostile && rng.IntN(10) == 0 {
			for range 70 {
				r.Granted["many"+strconv.Itoa(rng.IntN(1000))] = true
			}
		}
		if rng.IntN(2) == 0 {
			r.GrantedAt = map[string]int64{}
			for p := range r.Granted {
				if rng.IntN(3) != 0 {
					switch rng.IntN(4) {
					case 0:
						r.GrantedAt[p] = rng.Int64()
					case 1:
						r.GrantedAt[p] = []int64{0, math.MinInt64, math.MaxInt64}[rng.IntN(3)]
					default:
						r.GrantedAt[p] = r.Version - rng.Int64N(1e6)
					}
				}
			}
			if rng.IntN(20) == 0 {
				r.GrantedAt["notgranted"] = 7
			}
		}
	} else if rng.IntN(20) == 0 {
		r.GrantedAt = map[string]int64{"x": 1}
	}
	switch rng.IntN(6) {
	case 0:
		r.LinkedTo = "user-" + strconv.Itoa(rng.IntN(100))
	case 1:
		r.LinkedTo = strings.Repeat("L", []int{1, 255, 256, 65535, 65536, 70000}[rng.IntN(6)])
	case 2:
		r.LinkedTo = "\x00"
	}
	switch rng.IntN(8) {
	case 0:
		r.Expires = now.Add(time.Duration(rng.IntN(20)) * time.Second).UTC()
	case 1:
		r.Expires = time.UnixMilli(now.Add(time.Duration(rng.IntN(20)) * time.Second).UnixMilli())
	case 2:
		r.Expires = now.Add(time.Duration(rng.IntN(20)) * time.Second).In(modelZone)
	case 3:
		r.Expires = time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)
	case 4:
		r.Expires = now.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
	}
	return r
}

func modelSubjects() []string {
	s := []string{"", "\x00", "a\x00", "a", "b", "\xff\xfe", strings.Repeat("s", 65535), strings.Repeat("s", 65534) + "t",
		strings.Repeat("s", 65536), "user-1", "user-2"}
	for i := range 60 {
		s = append(s, "subj-"+strconv.Itoa(i))
	}
	for i := range 5 {
		s = append(s, strings.Repeat(strconv.Itoa(i), 3000))
	}
	return s
}

func runDifferential(t *testing.T, seed uint64, cfg CacheConfig, steps int, hostile bool) {
	rng := rand.New(rand.NewPCG(seed, 99))
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st := &modelStore{cur: map[string]Record{}, now: func() time.Time { return now }}
	hc := &hitCounter{}
	c := NewCache(st, cfg, hooks.List{hc})
	setClock(c, func() time.Time { return now })
	defer func() { t.Logf("lookups %d hits %d", hc.subjects, hc.hits) }()
	subjects := modelSubjects()
	hist := map[string][]histEntry{}
	lastInval := map[string]int{}
	lastPurge := 0
	opTime := []time.Time{}
	set := func(op int, s string, r Record) {
		h := hist[s]
		if len(h) == 0 {
			h = []histEntry{{rec: Record{}, from: 0, to: math.MaxInt}}
		}
		if n := len(h); n > 0 {
			h[n-1].to = op
		}
		hist[s] = append(h, histEntry{rec: r, from: op, to: math.MaxInt})
		st.mu.Lock()
		st.cur[s] = r
		st.mu.Unlock()
	}
	for op := 0; op < steps; op++ {
		opTime = append(opTime, now)
		switch k := rng.IntN(100); {
		case k < 55: // lookup
			batch := make([]string, 1+rng.IntN(8))
			for i := range batch {
				batch[i] = subjects[rng.IntN(len(subjects))]
			}
			got, err := c.Lookup(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range batch {
				r := got[s]
				if r.ExpiredAt(now) {
					t.Fatalf("seed %d op %d: %q served expired %+v at %v", seed, op, trunc(s), r, now)
				}
				ok := false
				h := hist[s]
				if len(h) == 0 {
					h = []histEntry{{rec: Record{}, from: 0, to: math.MaxInt}}
				}
				for _, e := range h {
					L := min(e.to-1, op) // latest op at which the store held e.rec
					if L < e.from || L <= lastInval[s] || L <= lastPurge {
						if !(L == op && L >= e.from) { // the current op's own store read
							continue
						}
					}
					want := e.rec
					if want.ExpiredAt(now) {
						want = Record{}
					}
					if opTime[L].Add(cfg.TTL).After(now) && reflect.DeepEqual(r, want) {
						ok = true
						break
					}
				}
				if !ok {
					for _, e := range hist[s] {
						t.Logf("hist [%d,%d) %s", e.from, e.to, fmtRec(e.rec))
					}
					t.Fatalf("seed %d op %d: %q: cache answered %s\nstore now %s\nlastInval %d lastPurge %d", seed, op, trunc(s), fmtRec(r), fmtRec(st.cur[s]), lastInval[s], lastPurge)
				}
			}
		case k < 70: // store change, then invalidation (as redisstore does)
			s := subjects[rng.IntN(len(subjects))]
			set(op, s, randRecord(rng, now, hostile))
			c.Invalidate(s)
			lastInval[s] = op
		case k < 75: // silent change (invalidation lost): only the TTL bounds it
			s := subjects[rng.IntN(len(subjects))]
			set(op, s, randRecord(rng, now, hostile))
		case k < 77:
			c.Purge()
			lastPurge = op
		case k < 78:
			c.SetBypass(true)
			lastPurge = op
			if rng.IntN(2) == 0 {
				c.SetBypass(false)
			}
		case k < 80:
			c.SetBypass(false)
		default:
			now = now.Add(time.Duration(rng.Int64N(int64(cfg.TTL) / 3)))
		}
		if e, b := c.used(); e < 0 || b < 0 || (cfg.MaxBytes > 0 && b > cfg.MaxBytes) || e > cfg.Size {
			t.Fatalf("seed %d op %d: usage %d entries %d bytes (cfg %+v)", seed, op, e, b, cfg)
		}
	}
}

func trunc(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("%q...(%d bytes)", s[:20], len(s))
	}
	return strconv.Quote(s)
}

func fmtRec(r Record) string {
	l := r.LinkedTo
	if len(l) > 20 {
		l = trunc(l)
	}
	return fmt.Sprintf("{Found:%v V:%d G:%v At:%v Link:%s Exp:%v(%s)}", r.Found, r.Version, r.Granted, r.GrantedAt, l, r.Expires, r.Expires.Location())
}

func TestCacheAgreesWithModel(t *testing.T) {
	cfgs := []CacheConfig{
		{Size: 1, TTL: 2 * time.Second},
		{Size: 3, TTL: 2 * time.Second, MaxBytes: 1},
		{Size: 5, TTL: 2 * time.Second, MaxBytes: 600},
		{Size: 50, TTL: 2 * time.Second, MaxBytes: 5000},
		{Size: 50, TTL: 10 * time.Second, MaxBytes: 200_000},
		{Size: 5000, TTL: 2 * time.Second},
		{Size: 100000, TTL: time.Minute, MaxBytes: 300_000},
		{Size: math.MaxInt, TTL: math.MaxInt64, MaxBytes: math.MaxInt},
	}
	for i, cfg := range cfgs {
		for seed := range uint64(2) {
			t.Run(fmt.Sprintf("cfg%d/seed%d", i, seed), func(t *testing.T) {
				if cfg.TTL > time.Hour {
					cfg.TTL = time.Hour // keeps the model's time arithmetic in range
				}
				runDifferential(t, seed, cfg, 20000, seed%2 == 1)
			})
		}
	}
}
