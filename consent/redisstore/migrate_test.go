package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func TestMigrateKeys(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	const prefix = "consent:"
	// The first schema: records at prefix+subject, links at prefix+_link:anon.
	rdb.HSet(ctx, prefix+"user-1", "_v", "5", "a", "1")
	rdb.HSet(ctx, prefix+"anon-1", "_v", "2", "a", "1")
	rdb.Set(ctx, prefix+"_link:anon-1", "user-1", 0)
	rdb.HSet(ctx, prefix+"_link:x", "_v", "1", "a", "1") // a subject named "_link:x": a record
	rdb.Set(ctx, "other:key", "v", 0)
	rdb.LPush(ctx, prefix+"weird", "v")

	dry, err := MigrateKeys(ctx, rdb, prefix, true, nil)
	if err != nil || dry.Records != 3 || dry.Links != 1 || mr.Exists(RecordKey(prefix, "user-1")) {
		t.Fatalf("dry run: %+v err %v", dry, err)
	}
	rep, err := MigrateKeys(ctx, rdb, prefix, false, nil)
	if err != nil || rep.Records != 3 || rep.Links != 1 || rep.Skipped != 1 {
		t.Fatalf("migration: %+v err %v", rep, err)
	}
	got, err := New(rdb, prefix, time.Second, nil).Lookup(ctx, []string{"user-1", "anon-1", "_link:x"})
	if err != nil {
		t.Fatal(err)
	}
	if !got["user-1"].Allows("a") || got["user-1"].Version != 5 || got["anon-1"].LinkedTo != "user-1" || !got["_link:x"].Allows("a") {
		t.Fatalf("after migration: %+v", got)
	}
	if !mr.Exists("other:key") || !mr.Exists(prefix+"weird") {
		t.Fatal("keys that are not consent data were touched")
	}
	again, err := MigrateKeys(ctx, rdb, prefix, false, nil)
	if err != nil || again.Records != 0 || again.Links != 0 || again.Current != 4 {
		t.Fatalf("second run is not a no-op: %+v err %v", again, err)
	}
}

// TestMigrateKeysLeavesCurrentKeysOfEveryKind: consentd's own current
// keys (an erasure marker is a hash like an old record) count as current
// and are never moved; only a key that is neither is reported.
func TestMigrateKeysLeavesCurrentKeysOfEveryKind(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	const prefix = "c:"
	rdb.HSet(ctx, RecordKey(prefix, "u1"), "_v", "1")
	rdb.Set(ctx, LinkKey(prefix, "a1"), "u1", 0)
	rdb.SAdd(ctx, LinkedIDsKey(prefix, "u1"), "a1")
	rdb.HSet(ctx, ErasedKey(prefix, "u2"), "v", "3", "t", "1")
	rdb.ZAdd(ctx, ExpiryIndexKey(prefix), redis.Z{Score: 1, Member: "u1"})
	rdb.ZAdd(ctx, MembersKey(prefix), redis.Z{Score: 1, Member: "i1"})
	rdb.SAdd(ctx, FencedKey(prefix), "i1")
	rdb.RPush(ctx, AckKey(prefix, "b1"), "i1")
	rdb.LPush(ctx, prefix+"weird", "v")
	keys := mr.Keys()
	if n, err := CountKeys(ctx, rdb, prefix); err != nil || n != int64(len(keys)) {
		t.Fatalf("CountKeys %d %v, want %d", n, err, len(keys))
	}
	rep, err := MigrateKeys(ctx, rdb, prefix, false, nil)
	if err != nil || rep.Current != 8 || rep.Records != 0 || rep.Links != 0 || rep.Skipped != 1 || len(rep.Problems) != 1 {
		t.Fatalf("report %+v err %v", rep, err)
	}
	if got := mr.Keys(); len(got) != len(keys) || !mr.Exists(ErasedKey(prefix, "u2")) {
		t.Fatalf("keys changed: %v, were %v", got, keys)
	}
}
