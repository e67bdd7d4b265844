package consent

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// LookupHook is told, once per Cache.Lookup, the number of distinct
// subjects resolved and how many of them the cache answered (see
// internal/lib/hooks). Calls come from any goroutine and must return
// quickly.
type LookupHook interface {
	OnLookup(subjects, cacheHits int)
}

// CacheUsageHook is told, after each Cache.Lookup, how many subjects the
// cache holds and the bytes it accounts to them (CacheConfig.MaxBytes).
// Calls come from any goroutine and must return quickly.
type CacheUsageHook interface {
	OnCacheUsage(entries, bytes int)
}

// Cache answers lookups from a bounded in-process cache with a short TTL
// and sends only the misses to the underlying Store, in one call. "No
// record" answers are cached too. A record is never served past its
// Expires. Records are held compactly (cache_record.go) in CLOCK-evicted
// shards (cache_shard.go), bounded by entries and by bytes. It is safe for
// concurrent use.
type Cache struct {
	store  Store
	hooks  hooks.List
	ttl    time.Duration
	shards []shard // nil when caching is disabled
	seed   maphash.Seed
	intern interner
	usage  usage
	// bypass is set while changes cannot be heard (the invalidation
	// channel is down): every lookup then goes to the store.
	bypass atomic.Bool
	// seq counts invalidations, so that an answer read from the store
	// before an invalidation is not cached after it.
	seq atomic.Uint64

	// now is the wall clock record expiries are checked against
	// (Record.Expires is a wall time); elapsed is the monotonic clock TTLs
	// are counted on, so that a wall clock stepped back (NTP, a resumed
	// VM) never stretches them.
	now     func() time.Time
	elapsed func() time.Duration

	mu sync.Mutex
	// recent maps a hash of each subject invalidated lately to the seq of
	// its last invalidation: hashes, so that the memory is bounded
	// whatever the subjects' length (two subjects with one hash make a
	// spurious change, the safe side).
	recent map[uint64]uint64
	floor  uint64 // decisions older than this are all stale
}

// maxRecent bounds the invalidations remembered per subject; past it the
// memory is reset and every older decision counts as stale.
const maxRecent = 100000

// Seq returns the current invalidation sequence number: take it before a
// lookup, and ask ChangedSince before acting on the answer.
func (c *Cache) Seq() uint64 { return c.seq.Load() }

// ChangedSince reports whether any of subjects may have changed after seq
// (an invalidation, or a purge, since then).
func (c *Cache) ChangedSince(seq uint64, subjects []string) bool {
	if c.seq.Load() == seq {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < c.floor {
		return true
	}
	for _, s := range subjects {
		if c.recent[maphash.String(c.seed, s)] > seq {
			return true
		}
	}
	return false
}

func (c *Cache) noteChange(subject string) {
	n := c.seq.Add(1)
	c.mu.Lock()
	if subject == "" {
		c.floor = n
		c.recent = nil
	} else {
		if len(c.recent) >= maxRecent {
			c.recent = nil
			c.floor = n // forgotten changes: everything older is stale
		}
		if c.recent == nil {
			c.recent = make(map[uint64]uint64)
		}
		c.recent[maphash.String(c.seed, subject)] = n
	}
	c.mu.Unlock()
}

// Defaults of the cache (configuration: cache.size, cache.ttl,
// cache.max_bytes). A typical entry (a 36-byte subject, four purposes
// with grant times) is accounted some 125 bytes, so DefaultCacheSize of
// them take about 12 MiB: the default byte budget leaves that room to
// spare, binding only when records are unusually large (long subjects or
// links, records kept whole), and keeps the cache's heap within 32 MiB
// whatever the store serves, so that an instance caching the default
// number of subjects stays within 128 MiB of memory.
const (
	DefaultCacheSize     = 100000
	DefaultCacheTTL      = 2 * time.Second
	DefaultCacheMaxBytes = 32 << 20
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Size is the most subjects cached. 0 (or less) disables the cache:
	// every lookup goes to the store, still batched. Configuration
	// default: DefaultCacheSize.
	Size int
	// TTL is how long an answer, "no record" included, is reused,
	// counted from when the lookup that read it began. 0 (or less)
	// disables the cache. Configuration default: DefaultCacheTTL.
	TTL time.Duration
	// MaxBytes bounds the bytes the cache accounts to its entries (the
	// entry, the subject, grant times and links: an approximation of the
	// heap they hold); past it, entries not used lately are evicted as
	// past Size. 0 (or less): no byte bound, only Size.
	// Configuration default: DefaultCacheMaxBytes.
	MaxBytes int
	// Purposes are the purposes records are held compactly for (the
	// policy's); a record granting another is held whole, and accounted
	// so. Empty: any purpose, up to 64 of them, of at most
	// maxPurposeName bytes each. The purpose tables are thus bounded by
	// the policy, not by what the store holds.
	Purposes []string
}

// NewCache wraps store. hs may be nil.
func NewCache(store Store, cfg CacheConfig, hs hooks.List) *Cache {
	base := time.Now()
	c := &Cache{store: store, hooks: hs, ttl: cfg.TTL, seed: maphash.MakeSeed(), now: time.Now, elapsed: func() time.Duration { return time.Since(base) }}
	c.intern.allow(cfg.Purposes)
	if cfg.Size <= 0 || cfg.TTL <= 0 {
		return c
	}
	size, maxBytes := min(cfg.Size, math.MaxInt32), max(cfg.MaxBytes, 0)
	c.shards = make([]shard, shardCount(size, maxBytes))
	n := len(c.shards)
	for i := range c.shards {
		s := &c.shards[i]
		s.usage = &c.usage
		s.maxLen = size / n
		if i < size%n {
			s.maxLen++
		}
		if maxBytes > 0 {
			s.maxBytes = maxBytes / n
			if i < maxBytes%n {
				s.maxBytes++
			}
		}
	}
	return c
}

// shard returns subject's shard and its hash within it.
func (c *Cache) shard(subject string) (*shard, uint32) {
	h := maphash.String(c.seed, subject)
	return &c.shards[h&uint64(len(c.shards)-1)], uint32(h >> 32)
}

// Lookup implements Store. The records it returns share their Granted
// maps with the cache and other callers: they are read only.
func (c *Cache) Lookup(ctx context.Context, subjects []string) (map[string]Record, error) {
	out := make(map[string]Record, len(subjects))
	var misses []string
	hits := 0
	useCache := c.shards != nil && !c.bypass.Load()
	seq := c.seq.Load()
	now := c.now()
	at := c.instant(now)
	for _, s := range subjects {
		if _, done := out[s]; done {
			continue
		}
		if useCache {
			if r, ok := c.get(s, now, at); ok {
				out[s] = r
				hits++
				continue
			}
		}
		out[s] = Record{}
		misses = append(misses, s)
	}
	hooks.Each(c.hooks, func(h LookupHook) { h.OnLookup(len(out), hits) })
	if len(misses) == 0 {
		c.reportUsage()
		return out, nil
	}
	got, err := c.store.Lookup(ctx, misses)
	if err != nil {
		return nil, err
	}
	for _, s := range misses {
		r := got[s]
		out[s] = r
		if useCache {
			c.put(s, r, seq, now, at)
		}
	}
	c.reportUsage()
	return out, nil
}

func (c *Cache) reportUsage() {
	if c.shards == nil {
		return
	}
	entries, bytes := c.used()
	hooks.Each(c.hooks, func(h CacheUsageHook) { h.OnCacheUsage(entries, bytes) })
}

// instant returns now as the cache's clocks read it.
func (c *Cache) instant(now time.Time) instant {
	return instant{wall: now.UnixNano(), mono: int64(c.elapsed())}
}

// get answers subject from the cache.
func (c *Cache) get(subject string, now time.Time, at instant) (Record, bool) {
	sh, h := c.shard(subject)
	sh.mu.Lock()
	e, tail, full, ok := sh.get(subject, h, now, at)
	// The set table is read under the shard's lock: Purge replaces it
	// only while holding every shard's lock, with the entries emptied.
	sets := c.intern.setTable()
	sh.mu.Unlock()
	switch {
	case !ok:
		return Record{}, false
	case full != nil:
		return *full, true
	}
	return e.record(tail, sets), true
}

// put caches r, read from the store by a lookup that began at now when
// the invalidation sequence was seq, unless an invalidation, a purge or a
// bypass came since: the answer may predate it. Checking again under the
// shard's lock closes the window between that check and the store, since
// Invalidate and Purge count the change before they take the lock.
func (c *Cache) put(subject string, r Record, seq uint64, now time.Time, at instant) {
	if r.ExpiredAt(now) || len(subject) > maxKeyLen {
		return // never served anyway; or too long to cache
	}
	if c.seq.Load() != seq || c.bypass.Load() {
		return
	}
	// Encoding may intern purposes: done outside the shard's lock. A
	// purge may empty the tables meanwhile, even one that counted its
	// change before this lookup began: the generation check sees it
	// (tables are reset only under every shard's lock).
	x := c.intern.encode(r)
	x.e.stale = staleAt(at.mono, c.ttl)
	sh, h := c.shard(subject)
	sh.mu.Lock()
	if c.seq.Load() == seq && !c.bypass.Load() && c.intern.gen.Load() == x.gen {
		sh.put(subject, h, x, at.mono)
	}
	sh.mu.Unlock()
}

// used returns how many entries the cache holds and the bytes accounted
// to them.
func (c *Cache) used() (entries, bytes int) {
	return int(c.usage.entries.Load()), int(c.usage.bytes.Load())
}

// Invalidate forgets one subject, so the next lookup asks the store.
func (c *Cache) Invalidate(subject string) {
	c.noteChange(subject)
	if c.shards == nil {
		return
	}
	sh, h := c.shard(subject)
	sh.mu.Lock()
	sh.removeKey(subject, h)
	sh.mu.Unlock()
}

// Purge forgets everything, and empties the interned purpose tables.
func (c *Cache) Purge() {
	c.noteChange("")
	if c.shards == nil {
		return
	}
	for i := range c.shards {
		c.shards[i].mu.Lock()
	}
	for i := range c.shards {
		c.shards[i].clear()
	}
	c.intern.reset() // no entry refers to the tables any more
	for i := range c.shards {
		c.shards[i].mu.Unlock()
	}
}

// SetBypass turns the cache off (and empties it) or back on. While off,
// every lookup goes to the store. Use it while invalidations cannot be
// received.
func (c *Cache) SetBypass(on bool) {
	if on {
		c.bypass.Store(true)
		c.Purge()
		return
	}
	c.bypass.Store(false)
}
