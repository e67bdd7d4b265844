package redisstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/barrier"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

type seqCache struct{ n atomic.Uint64 }

func (c *seqCache) Invalidate(string) { c.n.Add(1) }
func (c *seqCache) Purge()            { c.n.Add(1) }
func (c *seqCache) Seq() uint64       { return c.n.Load() }

// TestBarrierOnRedisPrimitives runs the barrier protocol (package
// barrier) over the Redis registry on an in-process Redis: a barrier
// returns once every live member confirmed; a member that cannot confirm
// is fenced, the revoker waits for its lease to end, and its next
// heartbeat says it was fenced.
func TestBarrierOnRedisPrimitives(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const prefix = "b:"
	ttl := 1500 * time.Millisecond

	// Two running members.
	var members []*barrier.Member
	for i := 0; i < 2; i++ {
		lease := redisstore.NewBarrierMember(rdb, prefix, barrier.NewID(), ttl, nil)
		m := barrier.NewMember(lease, &seqCache{}, nil, nil)
		members = append(members, m)
		go m.Run(ctx)
	}
	joinCtx, joined := context.WithTimeout(ctx, 10*time.Second)
	defer joined()
	for _, m := range members {
		w, err := m.Begin(joinCtx) // returns once the member joined
		if err != nil {
			t.Fatal(err)
		}
		m.End(w)
	}
	// Both listen for barriers (a barrier published before a member
	// subscribed would fence it: safe, but not what this part tests).
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := rdb.PubSubNumSub(ctx, redisstore.BarrierChannel(prefix)).Result()
		if err == nil && n[redisstore.BarrierChannel(prefix)] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members not subscribed: %v %v", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	reg := redisstore.NewBarrierRegistry(rdb, prefix)
	if live, err := reg.Live(ctx); err != nil || len(live) != 2 {
		t.Fatalf("live members %v (%v), want 2", live, err)
	}
	rv := &barrier.Revoker{Registry: reg, Timeout: 2 * time.Second}
	start := time.Now()
	if err := rv.Await(ctx, []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el >= rv.Timeout {
		t.Fatalf("Await took %v with every member answering: someone was fenced", el)
	}

	// A member that holds a lease but never answers (its process hangs).
	silent := redisstore.NewBarrierMember(rdb, prefix, "silent", ttl, nil)
	if err := silent.Rejoin(ctx); err != nil {
		t.Fatal(err)
	}
	rv.Timeout = 200 * time.Millisecond
	start = time.Now()
	if err := rv.Await(ctx, []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < rv.Timeout+barrier.LeaseMargin {
		t.Fatalf("Await returned after %v, before the silent member's lease and margin ended", el)
	}
	err := silent.Heartbeat(ctx)
	if !barrier.IsFenced(err) {
		t.Fatalf("heartbeat of a fenced member: %v, want fenced", err)
	}
	if live, _ := reg.Live(ctx); len(live) != 2 {
		t.Fatalf("live members %v after the fence, want the two running ones", live)
	}
}

// TestIntegrationHeartbeatAfterTheLeaseEnded: a renewal that arrives after
// the lease ended (a frozen process) renews nothing and says the lease
// lapsed; the member is not live until it rejoins.
func TestIntegrationHeartbeatAfterTheLeaseEnded(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	ctx := context.Background()
	m := redisstore.NewBarrierMember(rdb, prefix, "frozen", 200*time.Millisecond, nil)
	if err := m.Rejoin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Heartbeat(ctx); err != nil {
		t.Fatalf("a renewal within the lease: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := m.Heartbeat(ctx); !barrier.IsLapsed(err) || barrier.IsFenced(err) {
		t.Fatalf("a renewal after the lease ended: %v, want lapsed", err)
	}
	reg := redisstore.NewBarrierRegistry(rdb, prefix)
	if live, _ := reg.Live(ctx); len(live) != 0 {
		t.Fatalf("live after a lapsed renewal: %v", live)
	}
	if err := m.Rejoin(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := reg.Live(ctx); len(live) != 1 {
		t.Fatalf("live after rejoining: %v", live)
	}
}

// TestBarrierChannelOutageLogsLittle: while Redis is gone the member
// keeps trying with backoff and says so once (not once per attempt),
// then says when the channel is back.
func TestBarrierChannelOutageLogsLittle(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	core, logs := observer.New(zap.InfoLevel)
	m := redisstore.NewBarrierMember(rdb, "o:", barrier.NewID(), time.Second, zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Watch(ctx, func(string, []string) {})
	subscribed := func() bool {
		n, err := rdb.PubSubNumSub(ctx, redisstore.BarrierChannel("o:")).Result()
		return err == nil && n[redisstore.BarrierChannel("o:")] == 1
	}
	for deadline := time.Now().Add(5 * time.Second); !subscribed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never subscribed")
		}
	}
	mr.Close()
	time.Sleep(3 * time.Second) // at a fixed 100 ms, some 30 attempts
	if n := logs.Len(); n != 1 || logs.All()[0].Message != "Redis unavailable" || logs.All()[0].ContextMap()["loop"] != "barrier channel" {
		t.Fatalf("%d lines in 3 s of outage, want 1 saying the barrier channel lost Redis: %v", n, logs.All())
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, logs, "Redis back")
}
