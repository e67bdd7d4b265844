package redisstore_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/testing/itest"
)

// stallProxy forwards TCP connections to target; while stalled it holds
// what the server sends (a Redis that pauses: a fork, a slow command,
// lost packets), keeping the connection open.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

// newStallProxy starts a proxy to target, stopped when t ends.
func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.run()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) run() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := s.Read(buf)
				for p.stalled.Load() {
					time.Sleep(5 * time.Millisecond)
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// watchedCache is a consent.Cache whose bypass and invalidations the test
// can read.
type watchedCache struct {
	*consent.Cache
	bypass atomic.Bool
	heard  atomic.Int64 // invalidations
}

func (c *watchedCache) Invalidate(subject string) {
	c.heard.Add(1)
	c.Cache.Invalidate(subject)
}

func (c *watchedCache) SetBypass(on bool) {
	c.bypass.Store(on)
	c.Cache.SetBypass(on)
}

// TestIntegrationInvalidationStall: Redis pauses longer than the
// watcher's timeout on a connection that stays open. The watcher goes
// deaf (the cache is bypassed, the outage reported); when Redis answers
// again on the same connection the outage ends with a recovery line and
// the cache is used again, and a consent change made while deaf is
// served, not the value cached before.
func TestIntegrationInvalidationStall(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	ctx := context.Background()
	w := redisstore.NewUpdater(rdb, prefix)
	if _, err := w.Patch(ctx, "u1", map[string]bool{"p": true}); err != nil {
		t.Fatal(err)
	}
	cache := &watchedCache{Cache: consent.NewCache(redisstore.New(rdb, prefix, time.Second, nil), consent.CacheConfig{Size: 100, TTL: time.Hour}, nil)}
	cache.bypass.Store(true)
	granted := func() bool {
		t.Helper()
		got, err := cache.Lookup(ctx, []string{"u1"})
		if err != nil {
			t.Fatal(err)
		}
		return got["u1"].Granted["p"]
	}

	proxy := newStallProxy(t, env.Redis)
	watcher := redis.NewClient(&redis.Options{Addr: proxy.addr()})
	t.Cleanup(func() { watcher.Close() })
	core, logs := observer.New(zapcore.InfoLevel)
	tr := outage.New("Redis", "redis.addr", zap.New(core), outage.Config{})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		redisstore.WatchInvalidations(wctx, watcher, prefix, cache, 200*time.Millisecond, tr)
	}()
	t.Cleanup(func() { cancel(); <-done })

	itest.Eventually(t, 5*time.Second, "subscription", func() bool { return !cache.bypass.Load() })
	if !granted() {
		t.Fatal("consent not granted before the stall")
	}

	proxy.stalled.Store(true)
	itest.Eventually(t, 5*time.Second, "outage reported while Redis is silent", func() bool { d, _ := tr.Down(); return d })
	if !cache.bypass.Load() {
		t.Fatal("cache used while deaf")
	}
	// Consent withdrawn while the watcher cannot hear: the announcement
	// waits in the stalled connection.
	if _, err := w.Patch(ctx, "u1", map[string]bool{"p": false}); err != nil {
		t.Fatal(err)
	}
	heard := cache.heard.Load()
	proxy.stalled.Store(false)

	itest.Eventually(t, 5*time.Second, "recovery on the same connection", func() bool {
		d, _ := tr.Down()
		return !d && !cache.bypass.Load()
	})
	if cache.heard.Load() == heard {
		t.Error("the change announced while deaf was never heard")
	}
	if granted() {
		t.Fatal("withdrawn consent served from the cache after the stall")
	}
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 2 || msgs[0] != "Redis unavailable" || msgs[1] != "Redis back" {
		t.Fatalf("logged %q, want a warning and a recovery line", msgs)
	}
	// The cache is trusted again: a change now is heard and served.
	if _, err := w.Patch(ctx, "u1", map[string]bool{"p": true}); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 2*time.Second, "change after recovery", granted)
}
