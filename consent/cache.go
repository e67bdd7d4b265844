package consent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// LookupHook is told, once per Cache.Lookup, the number of distinct
// subjects resolved and how many of them the cache answered (see
// internal/lib/hooks). Calls come from any goroutine and must return
// quickly.
type LookupHook interface {
	OnLookup(subjects, cacheHits int)
}

// Cache answers lookups from a bounded in-process LRU with a short TTL and
// sends only the misses to the underlying Store, in one call. "No record"
// answers are cached too. A record is never served past its Expires. It
// is safe for concurrent use.
type Cache struct {
	store Store
	lru   *expirable.LRU[string, Record]
	hooks hooks.List
	// bypass is set while changes cannot be heard (the invalidation
	// channel is down): every lookup then goes to the store.
	bypass atomic.Bool
	// seq counts invalidations, so that an answer read from the store
	// before an invalidation is not cached after it.
	seq atomic.Uint64

	// now is the clock expiries are checked against.
	now func() time.Time

	mu     sync.Mutex
	recent map[string]uint64 // subject -> seq of its last invalidation
	floor  uint64            // decisions older than this are all stale
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
		if c.recent[s] > seq {
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
			c.recent = make(map[string]uint64)
		}
		c.recent[subject] = n
	}
	c.mu.Unlock()
}

// Defaults of the cache (configuration: cache.size, cache.ttl).
const (
	DefaultCacheSize = 100000
	DefaultCacheTTL  = 2 * time.Second
)

// NewCache wraps store. size 0 disables caching (every lookup goes to the
// store, still batched). hs may be nil.
func NewCache(store Store, size int, ttl time.Duration, hs hooks.List) *Cache {
	c := &Cache{store: store, hooks: hs, now: time.Now}
	if size > 0 && ttl > 0 {
		c.lru = expirable.NewLRU[string, Record](size, nil, ttl)
	}
	return c
}

// Lookup implements Store.
func (c *Cache) Lookup(ctx context.Context, subjects []string) (map[string]Record, error) {
	out := make(map[string]Record, len(subjects))
	var misses []string
	hits := 0
	useCache := c.lru != nil && !c.bypass.Load()
	seq := c.seq.Load()
	for _, s := range subjects {
		if _, done := out[s]; done {
			continue
		}
		if useCache {
			if r, ok := c.lru.Get(s); ok {
				if !r.ExpiredAt(c.now()) {
					out[s] = r
					hits++
					continue
				}
				c.lru.Remove(s) // past its expiry: never served
			}
		}
		out[s] = Record{}
		misses = append(misses, s)
	}
	hooks.Each(c.hooks, func(h LookupHook) { h.OnLookup(len(out), hits) })
	if len(misses) == 0 {
		return out, nil
	}
	got, err := c.store.Lookup(ctx, misses)
	if err != nil {
		return nil, err
	}
	cacheable := useCache && !c.bypass.Load() && c.seq.Load() == seq
	for _, s := range misses {
		r := got[s]
		out[s] = r
		if cacheable {
			c.lru.Add(s, r)
		}
	}
	return out, nil
}

// Invalidate forgets one subject, so the next lookup asks the store.
func (c *Cache) Invalidate(subject string) {
	c.noteChange(subject)
	if c.lru != nil {
		c.lru.Remove(subject)
	}
}

// Purge forgets everything.
func (c *Cache) Purge() {
	c.noteChange("")
	if c.lru != nil {
		c.lru.Purge()
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
