package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		fields  map[string]string
		found   bool
		version int64
		granted []string
		invalid bool
	}{
		{"empty is no record", map[string]string{}, false, 0, nil, false},
		{"grants", map[string]string{"_v": "12", "a": "1", "b": "0", "c": "yes"}, true, 12, []string{"a"}, false},
		{"no version", map[string]string{"a": "1"}, false, 0, nil, true},
		{"bad version", map[string]string{"_v": "x", "a": "1"}, false, 0, nil, true},
		{"negative version", map[string]string{"_v": "-1", "a": "1"}, false, 0, nil, true},
		{"not yet expired", map[string]string{"_v": "3", "_exp": "2000", "a": "1"}, true, 3, []string{"a"}, false},
		{"expired", map[string]string{"_v": "3", "_exp": "1000", "a": "1"}, false, 0, nil, false},
		{"expiry at now", map[string]string{"_v": "3", "_exp": "1500", "a": "1"}, false, 0, nil, false},
		{"bad expiry", map[string]string{"_v": "3", "_exp": "soon", "a": "1"}, false, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := redisstore.Decode(tt.fields, time.UnixMilli(1500))
			if tt.invalid != errors.Is(err, consent.ErrInvalidRecord) {
				t.Fatalf("err = %v", err)
			}
			if r.Found != tt.found || r.Version != tt.version || len(r.Granted) != len(tt.granted) {
				t.Fatalf("record = %+v", r)
			}
			for _, g := range tt.granted {
				if !r.Allows(g) {
					t.Errorf("%s not granted", g)
				}
			}
		})
	}
}

// TestIntegrationRedisLookup runs the store against the real Redis: one
// pipelined round trip answers every subject, invalid records deny.
func TestIntegrationRedisLookup(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	ctx := context.Background()
	if err := redisstore.Put(ctx, rdb, prefix, "u1", 5, map[string]bool{"a": true, "b": false}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, redisstore.RecordKey(prefix, "broken"), "a", "1") // no _v
	s := redisstore.New(rdb, prefix, time.Second, nil)
	got, err := s.Lookup(ctx, []string{"u1", "nobody", "broken", "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got["u1"].Allows("a") || got["u1"].Allows("b") || got["u1"].Version != 5 {
		t.Fatalf("u1 = %+v (all %+v)", got["u1"], got)
	}
	if got["nobody"].Found || got["broken"].Found || got["broken"].Allows("a") {
		t.Fatalf("missing/broken records grant: %+v", got)
	}
	// redisstore.Put replaces the record as a whole.
	if err := redisstore.Put(ctx, rdb, prefix, "u1", 6, map[string]bool{"b": true}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Lookup(ctx, []string{"u1"})
	if got["u1"].Allows("a") || !got["u1"].Allows("b") || got["u1"].Version != 6 {
		t.Fatalf("after Put: %+v", got["u1"])
	}
	// An unreachable server is an error, never an answer.
	down := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), prefix, 200*time.Millisecond, nil)
	if got, err := down.Lookup(ctx, []string{"u1"}); err == nil || got != nil {
		t.Fatalf("unreachable Redis answered %v, %v", got, err)
	}
}
