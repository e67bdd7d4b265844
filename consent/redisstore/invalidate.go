package redisstore

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
)

// Invalidator is what WatchInvalidations drives: normally *consent.Cache.
type Invalidator interface {
	Invalidate(subject string)
	SetBypass(on bool)
}

// WatchInvalidations subscribes to InvalidationChannel(prefix) and drops
// every announced subject from c until ctx ends. While the subscription is
// not confirmed (at start, after a lost connection, or when Redis stops
// answering pings within timeout), c is bypassed, so that a change missed
// while deaf is never served from the cache.
//
// Deaf ends when the subscription is confirmed again (a new connection),
// or when anything arrives on the connection whose subscription was
// confirmed (Redis paused, then answered the late ping). The latter is
// safe because a connection that stayed open lost nothing: Redis sends a
// subscriber every message in order or drops the connection, so the
// messages published while Redis seemed silent arrive, and are applied,
// before the late answer. And bypassing emptied c and kept it empty
// (consent.Cache.SetBypass), so it holds nothing read while deaf.
//
// rdb may be a single node, a Sentinel failover client or a Cluster
// client: changes are announced with PUBLISH, which a Redis Cluster
// delivers to subscribers on every node, so subscribing on any one node
// hears every change.
//
// Each failure and each confirmed subscription is reported to tr (nil:
// a Tracker of its own that logs nowhere), and the waits between attempts
// grow from timeout/4 to timeout, with jitter.
func WatchInvalidations(ctx context.Context, rdb redis.UniversalClient, prefix string, c Invalidator, timeout time.Duration, tr *outage.Tracker) {
	loop := outage.OrNew(tr, "Redis", "", nil).Loop("invalidation channel", "the local consent cache is bypassed")
	defer loop.Close()
	backoff := retry.Backoff{Min: timeout / 4, Max: timeout}
	c.SetBypass(true)
	ps := rdb.Subscribe(ctx, InvalidationChannel(prefix))
	defer ps.Close()
	// subscribed: the cache may be used. live: the connection the
	// subscription was confirmed on is still open (a read timeout keeps
	// it; any other error replaces it, and the new one is confirmed with
	// a new subscribe message).
	subscribed, live, pinged, failures := false, false, false, 0
	deaf := func(err error) {
		loop.Failed(err)
		subscribed = false
		c.SetBypass(true)
	}
	heard := func() {
		pinged = false
		if !subscribed && live {
			subscribed, failures = true, 0
			c.SetBypass(false)
			loop.OK()
		}
	}
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged {
					deaf(err) // no pong within timeout: Redis is not answering
				}
				if perr := ps.Ping(ctx); perr != nil {
					live = false
					deaf(perr)
				}
				pinged = true
				continue
			}
			if ctx.Err() != nil {
				return
			}
			live = false
			deaf(err)
			pinged = false
			failures++
			_ = retry.Sleep(ctx, backoff.Delay(failures))
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed, live, pinged, failures = true, true, false, 0
				c.SetBypass(false)
				loop.OK()
			}
		case *redis.Pong:
			heard()
		case *redis.Message:
			c.Invalidate(m.Payload)
			heard()
		}
	}
}
