package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/lib/retry"
)

// TestSweeperOutageLogsLittle: while Redis is gone the sweeper keeps
// trying with backoff and says so once, not once per sweep, then says
// when Redis is back.
func TestSweeperOutageLogsLittle(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	core, logs := observer.New(zap.InfoLevel)
	sw := redisstore.NewSweeper(rdb, "s:", func(context.Context, string, consent.Record) error { return nil }, zap.New(core))
	sw.Backoff = retry.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sw.Run(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	mr.Close()
	waitFor(t, logs, "Redis unavailable")
	time.Sleep(time.Second) // at a sweep every 5 ms, some 200 failed sweeps
	if n := logs.Len(); n != 1 || logs.All()[0].ContextMap()["loop"] != "expiry sweeper" {
		t.Fatalf("%d lines in a second of outage, want 1 naming the sweeper: %v", n, logs.All())
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, logs, "Redis back")
}

func waitFor(t *testing.T, logs *observer.ObservedLogs, msg string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); logs.FilterMessage(msg).Len() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q line: %v", msg, logs.All())
		}
	}
}
