package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/consent/storetest"
	"github.com/consentd/consentd/internal/testing/itest"
)

// backend is redisstore on rdb, alone and behind the cache.
func backend(t *testing.T, rdb redis.UniversalClient, cached bool) storetest.Backend {
	prefix := itest.Unique("st") + ":"
	up := redisstore.NewUpdater(rdb, prefix)
	var store consent.Store = redisstore.New(rdb, prefix, 2*time.Second, nil)
	if cached {
		store = consent.NewCache(store, consent.CacheConfig{Size: 1000, TTL: time.Minute}, nil)
	}
	return storetest.Backend{
		Store: store,
		Put: func(t *testing.T, subject string, version int64, granted []string, expires time.Time) {
			purposes := map[string]bool{}
			for _, p := range granted {
				purposes[p] = true
			}
			if _, err := up.Put(context.Background(), subject, version, purposes, expires, time.Time{}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		},
		Link: func(t *testing.T, anon, user string) {
			if err := up.Link(context.Background(), map[string]string{anon: user}); err != nil {
				t.Fatal(err)
			}
		},
		Corrupt: func(t *testing.T, subject string) {
			// A string where a hash belongs (WRONGTYPE on HGETALL).
			if err := rdb.Set(context.Background(), redisstore.RecordKey(prefix, subject), "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestStoreConformanceMiniredis(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "store", true: "cache over store"}[cached], func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Backend {
				mr := miniredis.RunT(t)
				rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
				t.Cleanup(func() { rdb.Close() })
				return backend(t, rdb, cached)
			})
		})
	}
}

// TestIntegrationStoreConformance runs the suite on a single Redis, on a
// Redis Cluster (every script and pipeline spans slots and nodes) and
// behind Sentinel.
func TestIntegrationStoreConformance(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure, itest.Sentinel}, func(t *testing.T, env itest.Env) {
		rdb := itest.Redis(t, env.Redis)
		for _, cached := range []bool{false, true} {
			t.Run(map[bool]string{false: "store", true: "cache over store"}[cached], func(t *testing.T) {
				storetest.Run(t, func(t *testing.T) storetest.Backend { return backend(t, rdb, cached) })
			})
		}
	})
}
