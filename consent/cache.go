package consent

import (
	"context"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/consentd/consentd/internal/metrics"
)

// Cache answers lookups from a bounded in-process LRU with a short TTL and
// sends only the misses to the underlying Store, in one call. "No record"
// answers are cached too. It is safe for concurrent use.
type Cache struct {
	store Store
	lru   *expirable.LRU[string, Record]
	m     *metrics.Metrics
}

// NewCache wraps store. size 0 disables caching (every lookup goes to the
// store, still batched). m may be nil.
func NewCache(store Store, size int, ttl time.Duration, m *metrics.Metrics) *Cache {
	c := &Cache{store: store, m: m}
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
	for _, s := range subjects {
		if _, done := out[s]; done {
			continue
		}
		if c.lru != nil {
			if r, ok := c.lru.Get(s); ok {
				out[s] = r
				hits++
				continue
			}
		}
		out[s] = Record{}
		misses = append(misses, s)
	}
	if c.m != nil {
		c.m.Lookups.Add(float64(len(out)))
		c.m.CacheHits.Add(float64(hits))
	}
	if len(misses) == 0 {
		return out, nil
	}
	got, err := c.store.Lookup(ctx, misses)
	if err != nil {
		return nil, err
	}
	for _, s := range misses {
		r := got[s]
		out[s] = r
		if c.lru != nil {
			c.lru.Add(s, r)
		}
	}
	return out, nil
}

// Invalidate forgets one subject, so the next lookup asks the store.
func (c *Cache) Invalidate(subject string) {
	if c.lru != nil {
		c.lru.Remove(subject)
	}
}

// Purge forgets everything.
func (c *Cache) Purge() {
	if c.lru != nil {
		c.lru.Purge()
	}
}
