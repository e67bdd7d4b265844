package redisstore

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
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
func WatchInvalidations(ctx context.Context, rdb redis.UniversalClient, prefix string, c Invalidator, timeout time.Duration, log *zap.Logger) {
	c.SetBypass(true)
	ps := rdb.Subscribe(ctx, InvalidationChannel(prefix))
	defer ps.Close()
	subscribed, pinged := false, false
	deaf := func(err error) {
		if subscribed {
			log.Warn("consent invalidation channel lost; local cache bypassed until it is back", zap.Error(err))
		}
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
			select {
			case <-ctx.Done():
			case <-time.After(timeout / 4):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed, pinged = true, false
				c.SetBypass(false)
				log.Debug("consent invalidation channel subscribed")
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
