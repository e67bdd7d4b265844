package consent

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

var benchMillion = flag.Bool("cache.million", false, "BenchmarkCacheMemory also fills a cache with 1,000,000 subjects")
var benchMaxBytes = flag.Int("cache.max_bytes", 0, "the byte budget of the benchmarks' caches (0: none)")

// syntheticStore answers every subject with a record derived from the
// subject, built afresh on each call as Redis answers are: the store keeps
// nothing, so what a benchmark measures is what the cache holds.
type syntheticStore struct{}

var benchPurposes = []string{"analytics", "marketing", "advertising", "personalization", "functional", "sale_of_data", "email", "sms"}

func (syntheticStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	out := make(map[string]Record, len(subjects))
	for _, s := range subjects {
		out[s] = syntheticRecord(s)
	}
	return out, nil
}

// syntheticRecord is a realistic record: one subject in ten has none, the
// others grant 3 to 6 of 8 purposes, two in three with grant times, one in
// ten is an anonymous id linked to a user.
func syntheticRecord(subject string) Record {
	h := fnv64(subject)
	if h%10 == 0 {
		return Record{}
	}
	r := Record{Found: true, Version: 1_760_000_000_000 + int64(h%1_000_000), Granted: map[string]bool{}}
	n := 3 + int(h>>8%4)
	timed := h>>16%3 != 0
	for i := range n {
		p := benchPurposes[(int(h>>24)+i*3)%len(benchPurposes)]
		r.Granted[p] = true
		if timed {
			if r.GrantedAt == nil {
				r.GrantedAt = map[string]int64{}
			}
			r.GrantedAt[p] = r.Version - int64(i)*1000
		}
	}
	if h>>32%10 == 0 {
		r.LinkedTo = "user-" + strconv.FormatUint(h>>40, 10)
	}
	return r
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// benchSubject is a subject id shaped like a UUID (36 bytes).
func benchSubject(i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*7919)
}

// residentBytes returns the process's resident set size where /proc
// tells it, else 0.
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCacheMemory fills a cache with n distinct subjects through
// Lookup, in batches of 1000 as the pipeline does, and reports the heap it
// holds per cached subject (HeapAlloc after a GC, minus the same before).
// The 1,000,000 case runs with -cache.million.
func BenchmarkCacheMemory(b *testing.B) {
	sizes := []int{100_000}
	if *benchMillion {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				debug.FreeOSMemory()
				before := heapAlloc()
				c := NewCache(syntheticStore{}, CacheConfig{Size: n, TTL: time.Minute, MaxBytes: *benchMaxBytes}, nil)
				batch := make([]string, 0, 1000)
				for i := range n {
					batch = append(batch, benchSubject(i))
					if len(batch) == cap(batch) || i == n-1 {
						if _, err := c.Lookup(context.Background(), batch); err != nil {
							b.Fatal(err)
						}
						batch = batch[:0]
					}
				}
				rss := residentBytes() // before the forced GCs of heapAlloc
				after := heapAlloc()
				b.ReportMetric(float64(after-before)/float64(n), "B/subject")
				if entries, bytes := c.used(); entries > 0 {
					b.ReportMetric(float64(bytes)/float64(entries), "accounted-B/subject")
				}
				if rss > 0 {
					b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
				}
				runtime.KeepAlive(c)
			}
		})
	}
}

// BenchmarkCacheLookup looks up batches of 1000 subjects, all cached, out
// of 100,000, and reports the cost per subject.
func BenchmarkCacheLookup(b *testing.B) {
	const n, batchSize = 100_000, 1000
	c := NewCache(syntheticStore{}, CacheConfig{Size: n, TTL: time.Minute, MaxBytes: *benchMaxBytes}, nil)
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = benchSubject(i)
	}
	for i := 0; i < n; i += batchSize {
		if _, err := c.Lookup(context.Background(), subjects[i:i+batchSize]); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([][]string, 64)
	for i := range batches {
		batches[i] = make([]string, batchSize)
		for j := range batches[i] {
			batches[i][j] = subjects[rng.IntN(n)]
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Lookup(context.Background(), batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/subject")
}
