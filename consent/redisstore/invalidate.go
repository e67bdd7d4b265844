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
	subscribed, pinged, failures := false, false, 0
	deaf := func(err error) {
		loop.Failed(err)
		subscribed = false
		c.SetBypass(true)
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
					deaf(perr)
				}
				pinged = true
				continue
			}
			if ctx.Err() != nil {
				return
			}
			deaf(err)
			pinged = false
			failures++
			_ = retry.Sleep(ctx, backoff.Delay(failures))
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed, pinged, failures = true, false, 0
				c.SetBypass(false)
				loop.OK()
			}
		case *redis.Pong:
			pinged = false
			if subscribed {
				c.SetBypass(false)
			}
		case *redis.Message:
			c.Invalidate(m.Payload)
		}
	}
}
