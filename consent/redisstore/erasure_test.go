package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationErasureIsDurable: on real Redis, after an erasure no
// change as old as the erased record (by version) or recorded before the
// erasure (by consent-topic record time) re-grants, for the subject and
// for the anonymous ids erased with it; a later change does, and a patch
// gets a version above the erased one. The marker expires with the
// retention.
func TestIntegrationErasureIsDurable(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	w := redisstore.NewUpdater(rdb, prefix)
	w.ErasureRetention = time.Hour
	s := redisstore.New(rdb, prefix, time.Second, nil)
	ctx := context.Background()
	grant := map[string]bool{"p": true}
	erasedAt := time.UnixMilli(1_800_000_000_000)
	before, after := erasedAt.Add(-time.Second), erasedAt.Add(time.Second)

	for _, subj := range []string{"u", "anon"} {
		if ok, err := w.Put(ctx, subj, 100, grant, time.Time{}, time.Time{}, before); err != nil || !ok {
			t.Fatalf("first put of %s: %v %v", subj, ok, err)
		}
	}
	if err := w.Link(ctx, map[string]string{"anon": "u"}); err != nil {
		t.Fatal(err)
	}
	if existed, linked, err := w.Erase(ctx, "u", erasedAt, false); err != nil || !existed || len(linked) != 1 {
		t.Fatalf("erase: %v %v %v", existed, linked, err)
	}
	for _, subj := range []string{"u", "anon"} {
		for _, tc := range []struct {
			name     string
			version  int64
			recorded time.Time
			applied  bool
		}{
			{"the erased record replayed", 100, before, false},
			{"the erased record replayed, time unknown", 100, time.Time{}, false},
			{"an older version", 50, after, false},
			{"newer version recorded before the erasure (reordered)", 200, before, false},
			{"newer version recorded at the erasure", 200, erasedAt, false},
		} {
			if ok, err := w.Put(ctx, subj, tc.version, grant, time.Time{}, time.Time{}, tc.recorded); err != nil || ok != tc.applied {
				t.Errorf("%s: %s: applied %v err %v, want %v", subj, tc.name, ok, err, tc.applied)
			}
			if lookup1(t, s, subj).Found {
				t.Fatalf("%s: %s re-created the record", subj, tc.name)
			}
		}
		ttl, err := rdb.PTTL(ctx, redisstore.ErasedKey(prefix, subj)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: erasure marker ttl %v %v, want at most the retention", subj, ttl, err)
		}
	}
	// A newer change recorded after the erasure is a new consent.
	if ok, err := w.Put(ctx, "u", 101, grant, time.Time{}, time.Time{}, after); err != nil || !ok || !lookup1(t, s, "u").Allows("p") {
		t.Fatalf("a grant after the erasure: %v %v", ok, err)
	}
	// A patch never reuses an erased version, whatever the clock says.
	if err := rdb.HSet(ctx, redisstore.ErasedKey(prefix, "anon"), "v", 9_000_000_000_000).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := w.Patch(ctx, "anon", grant); err != nil || v <= 9_000_000_000_000 {
		t.Fatalf("patch after erasure: version %d err %v", v, err)
	}
}
