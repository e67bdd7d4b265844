package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/config"
)

// NewRedis returns the client for the consent store cfg describes: a plain
// client (mode single), a failover client that asks the sentinels for the
// master (mode sentinel) or a cluster client that discovers every node from
// the seed addresses (mode cluster). Commands time out after cfg.Timeout
// and are not retried by the client (callers retry with their own backoff);
// a cluster client still follows MOVED and ASK redirections.
// cfg.Password and cfg.SentinelPassword must have been resolved
// (config.Load does).
func NewRedis(cfg config.Redis) (redis.UniversalClient, error) {
	tc, err := TLSConfig("redis.tls", cfg.TLS)
	if err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		DB:           cfg.DB,
		Username:     cfg.Username,
		Password:     string(cfg.Password),
		DialTimeout:  cfg.Timeout,
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		MaxRetries:   -1,
		TLSConfig:    tc,
	}
	switch cfg.Mode {
	case config.RedisSingle, "":
		o.Addrs = []string{cfg.Addr}
	case config.RedisSentinel:
		o.Addrs = cfg.Addrs
		o.MasterName = cfg.MasterName
		o.SentinelUsername = cfg.SentinelUsername
		o.SentinelPassword = string(cfg.SentinelPassword)
	case config.RedisCluster:
		o.Addrs = cfg.Addrs
		o.IsClusterMode = true
		o.MaxRedirects = 3
	default:
		return nil, fmt.Errorf("redis.mode: %q is not supported", cfg.Mode)
	}
	return redis.NewUniversalClient(o), nil
}

// PingRedis checks that every node rdb uses answers (every master of a
// cluster; the master named by the sentinels), returning an error that says
// what is wrong with the TLS settings when it can.
func PingRedis(ctx context.Context, rdb redis.UniversalClient) error {
	ping := func(ctx context.Context, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return explainRedis(c.Options().Addr, c.Options().TLSConfig != nil, err)
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, ping); err != nil {
			return fmt.Errorf("redis cluster: %w", err)
		}
		return nil
	case *redis.Client:
		return ping(ctx, c)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func explainRedis(addr string, tlsOn bool, err error) error {
	if e := explainTLS("redis.tls", "redis "+addr, err); e != err {
		return e
	}
	if !tlsOn && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("redis %s closed the connection (a TLS port? see redis.tls): %w", addr, err)
	}
	return fmt.Errorf("redis %s: %w", addr, err)
}
