package consent

import (
	"testing"
	"time"
)

// TTLs are counted on the monotonic clock: when the wall clock is stepped
// back (NTP, a resumed VM, a manual fix), a cached answer still lasts no
// longer than cache.ttl, which bounds how long a lost invalidation can
// serve a withdrawn grant.
func TestCacheTTLIgnoresWallClockSteps(t *testing.T) {
	st := &countingStore{recs: map[string]Record{"s": {Found: true, Version: 1, Granted: map[string]bool{"ads": true}}}}
	c := NewCache(st, CacheConfig{Size: 10, TTL: 2 * time.Second}, nil)
	wall := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var mono time.Duration
	c.now = func() time.Time { return wall }
	c.elapsed = func() time.Duration { return mono }
	lookupOne(t, c, "s")
	// The user withdraws consent; the invalidation is lost (the TTL is the
	// only bound). 10 minutes of real time pass, during which the wall
	// clock was stepped back by an hour.
	st.mu.Lock()
	st.recs["s"] = Record{Found: true, Version: 2, Granted: map[string]bool{}}
	st.mu.Unlock()
	wall = wall.Add(10*time.Minute - time.Hour)
	mono += 10 * time.Minute
	got := lookupOne(t, c, "s")
	if got.Allows("ads") {
		t.Errorf("served the withdrawn grant 10 minutes after caching it with a 2s TTL (wall clock stepped back 1h): %+v", got)
	}
}
