package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

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
	rdb := redis.NewUniversalClient(o)
	if cfg.Mode == config.RedisSentinel {
		sentinels.Store(rdb, sentinelSet{cfg: cfg, tls: tc})
	}
	return rdb, nil
}

// sentinels remembers the settings of the Sentinel clients NewRedis made,
// so that PingRedis can ask the sentinels why they named no master (the
// go-redis client does not expose them). A handful of clients per process.
var sentinels sync.Map // redis.UniversalClient -> sentinelSet

type sentinelSet struct {
	cfg config.Redis
	tls *tls.Config
}

// PingRedis checks that every node rdb uses answers (every master of a
// cluster; the master named by the sentinels), returning an error that
// names the setting at fault and the likely cause when it can (see
// explainRedis).
func PingRedis(ctx context.Context, rdb redis.UniversalClient) error {
	addrKey := "redis.addr"
	if _, ok := rdb.(*redis.ClusterClient); ok {
		addrKey = "redis.addrs"
	}
	ping := func(ctx context.Context, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return explainRedis(addrKey, c.Options(), err)
		}
		return nil
	}
	if s, ok := sentinels.Load(rdb); ok {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return s.(sentinelSet).explain(ctx, err)
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, ping); err != nil {
			return explainCluster(err)
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

// explainRedis wraps err from a command sent to the node at o.Addr with the
// setting at fault (addrKey names the address setting) and its likely
// cause: nothing listening, refused credentials, a TLS port dialled in
// plaintext or a plaintext port dialled with TLS.
func explainRedis(addrKey string, o *redis.Options, err error) error {
	addr, tlsOn := o.Addr, o.TLSConfig != nil
	if e := explainDial(addrKey, "Redis", addr, err); e != nil {
		return e
	}
	if e := explainTLS("redis.tls", "redis "+addr, err); e != err {
		if isRecordHeader(err) && plaintextRedis(addr) {
			return plaintextErr(addr, err)
		}
		return e
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"):
		user := o.Username
		if user == "" {
			user = "default"
		}
		return fmt.Errorf("redis.username, redis.password_file: %s refused user %q and its password (a wrong password, or a user that does not exist or is disabled): %w", addr, user, err)
	case strings.HasPrefix(msg, "NOAUTH"):
		return fmt.Errorf("redis.password_file: %s requires a password and none is set (redis.password_file or redis.password_env): %w", addr, err)
	case strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("redis.username: user %q may not run this command on %s (its ACL): %w", o.Username, addr, err)
	case !tlsOn && closedByPeer(err):
		return fmt.Errorf("redis.tls: %s closed the connection (a TLS port? see redis.tls): %w", addr, err)
	case tlsOn && (closedByPeer(err) || isTimeout(err)) && plaintextRedis(addr):
		return plaintextErr(addr, err)
	case tlsOn && isTimeout(err):
		return fmt.Errorf("redis.tls: %s did not complete a TLS handshake in time (a plaintext port, or a slow network? see redis.tls and redis.timeout): %w", addr, err)
	}
	return fmt.Errorf("redis %s: %w", addr, err)
}

// explainCluster wraps an error from finding a cluster's masters.
func explainCluster(err error) error {
	if strings.Contains(err.Error(), "cluster support disabled") {
		return fmt.Errorf("redis.mode: cluster, but redis.addrs name a Redis that is not a cluster node (use mode single with redis.addr, or the cluster's nodes): %w", err)
	}
	if e := explainDial("redis.addrs", "a Redis Cluster node", "", err); e != nil {
		return e
	}
	return fmt.Errorf("redis cluster: %w", err)
}

func plaintextErr(addr string, err error) error {
	return fmt.Errorf("redis.tls: %s did not speak TLS: it answers plaintext Redis (turn redis.tls off, or use the TLS port): %w", addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// plaintextRedis reports whether addr answers a plaintext PING like Redis
// (+PONG, or an error such as -NOAUTH).
func plaintextRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return false
	}
	return b[0] == '+' || b[0] == '-'
}

// explain says why the sentinels gave no master: when they answered but
// know no master of that name (go-redis reports "all sentinels ...
// unreachable: redis: nil"), it lists the names they do know.
func (s sentinelSet) explain(ctx context.Context, err error) error {
	addrs := strings.Join(s.cfg.Addrs, ", ")
	if !errors.Is(err, redis.Nil) {
		if e := explainDial("redis.addrs", "Redis Sentinel", "", err); e != nil {
			return e
		}
		// go-redis may report only its deadline: dial the sentinels.
		if derr := dialAll(s.cfg.Addrs); derr != nil {
			return fmt.Errorf("redis.addrs: cannot reach any sentinel at %s (%v): is Redis Sentinel running there?: %w", addrs, derr, err)
		}
		return fmt.Errorf("redis sentinel %s, master %q: %w", addrs, s.cfg.MasterName, err)
	}
	known := "none"
	if names := s.masters(ctx); len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	return fmt.Errorf("redis.master_name %q: the sentinels at %s know no such master (they know: %s): %w", s.cfg.MasterName, addrs, known, err)
}

// dialAll returns the last dial error if no address of addrs accepts a
// TCP connection, nil if one does.
func dialAll(addrs []string) error {
	var last error
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, probeTimeout)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
	}
	return last
}

// masters asks the sentinels for the names of the masters they monitor.
func (s sentinelSet) masters(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for _, addr := range s.cfg.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: s.cfg.SentinelUsername, Password: string(s.cfg.SentinelPassword),
			TLSConfig: s.tls, DialTimeout: s.cfg.Timeout, ReadTimeout: s.cfg.Timeout, MaxRetries: -1})
		ms, err := sc.Masters(ctx).Result()
		sc.Close()
		if err != nil {
			continue
		}
		var names []string
		for _, m := range ms {
			if n := masterName(m); n != "" {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		return names
	}
	return nil
}

// masterName finds the name field of one SENTINEL MASTERS entry (a map in
// RESP3, a flat list of field and value in RESP2).
func masterName(m any) string {
	switch v := m.(type) {
	case map[any]any:
		s, _ := v["name"].(string)
		return s
	case map[string]any:
		s, _ := v["name"].(string)
		return s
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			if k, _ := v[i].(string); k == "name" {
				s, _ := v[i+1].(string)
				return s
			}
		}
	}
	return ""
}
