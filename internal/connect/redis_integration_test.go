package connect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/config"
)

func newRedis(t *testing.T, cfg config.Redis) redis.UniversalClient {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	rdb, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestIntegrationRedisTLS talks to Redis's TLS port as the ACL user, with
// and without a client certificate, and shows that a wrong password, an
// untrusted certificate and a plaintext client are refused with an error
// that says so.
func TestIntegrationRedisTLS(t *testing.T) {
	v := need(t, "CONSENTD_TEST_REDIS_TLS", "CONSENTD_TEST_TLS_CA", "CONSENTD_TEST_TLS_CLIENT_CERT", "CONSENTD_TEST_TLS_CLIENT_KEY", "CONSENTD_TEST_REDIS_USER", "CONSENTD_TEST_REDIS_PASSWORD")
	base := config.Redis{
		Mode: config.RedisSingle, Addr: v["CONSENTD_TEST_REDIS_TLS"],
		Username: v["CONSENTD_TEST_REDIS_USER"], Password: config.Secret(v["CONSENTD_TEST_REDIS_PASSWORD"]),
		TLS: config.TLS{Enabled: true, CAFile: v["CONSENTD_TEST_TLS_CA"]},
	}
	mutual := base
	mutual.TLS.CertFile, mutual.TLS.KeyFile = v["CONSENTD_TEST_TLS_CLIENT_CERT"], v["CONSENTD_TEST_TLS_CLIENT_KEY"]
	for name, cfg := range map[string]config.Redis{"server TLS": base, "mutual TLS": mutual} {
		t.Run(name, func(t *testing.T) {
			rdb := newRedis(t, cfg)
			if err := PingRedis(ctx(t), rdb); err != nil {
				t.Fatal(err)
			}
			key := unique("connect-tls")
			if err := rdb.HSet(ctx(t), key, "p", "1").Err(); err != nil {
				t.Fatal(err)
			}
			defer rdb.Del(context.Background(), key)
			if got := rdb.HGetAll(ctx(t), key).Val(); got["p"] != "1" {
				t.Fatalf("read back %v", got)
			}
			if who := rdb.Do(ctx(t), "ACL", "WHOAMI").String(); !strings.Contains(who, v["CONSENTD_TEST_REDIS_USER"]) {
				t.Fatalf("connected as %s, want the ACL user", who)
			}
		})
	}

	wrongPassword := base
	wrongPassword.Password = "not-the-password"
	untrusted := base
	untrusted.TLS.CAFile = otherCA(t)
	plaintext := base
	plaintext.TLS = config.TLS{}
	cases := []struct {
		name  string
		cfg   config.Redis
		is    func(error) bool
		words string
	}{
		{"wrong password", wrongPassword, func(err error) bool { return strings.Contains(err.Error(), "WRONGPASS") },
			`redis.username, redis.password_file: ` + base.Addr + ` refused user "` + base.Username + `" and its password`},
		{"certificate from another CA", untrusted, isUnknownAuthority, "is not signed by a trusted authority"},
		{"plaintext client on the TLS port", plaintext, func(err error) bool { return err != nil }, "closed the connection (a TLS port? see redis.tls)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rdb := newRedis(t, tc.cfg)
			err := PingRedis(ctx(t), rdb)
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("ping: %v\nwant an error saying %q", err, tc.words)
			}
			t.Logf("refused: %v", err)
			if strings.Contains(err.Error(), "not-the-password") {
				t.Fatalf("the error prints the password: %v", err)
			}
			if err := rdb.Set(ctx(t), unique("connect-refused"), "x", time.Minute).Err(); err == nil {
				t.Fatal("a write went through")
			}
		})
	}
}

// TestIntegrationRedisCluster connects to the 3-master cluster through one
// seed node and checks what the consent store relies on: one pipelined
// call of HGETALLs over keys in several slots (one round trip per node),
// Lua scripts over the keys of one subject (hash-tagged into one slot), and
// Pub/Sub across nodes (the invalidation channel).
func TestIntegrationRedisCluster(t *testing.T) {
	v := need(t, "CONSENTD_TEST_REDIS_CLUSTER")
	addrs := strings.Split(v["CONSENTD_TEST_REDIS_CLUSTER"], ",")
	if len(addrs) < 3 {
		t.Fatalf("CONSENTD_TEST_REDIS_CLUSTER = %q, want three masters", addrs)
	}
	rdb := newRedis(t, config.Redis{Mode: config.RedisCluster, Addrs: addrs[:1]})
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("mode cluster gave a %T", rdb)
	}
	if err := PingRedis(ctx(t), rdb); err != nil {
		t.Fatal(err)
	}
	var masters atomic.Int32
	_ = cc.ForEachMaster(ctx(t), func(context.Context, *redis.Client) error { masters.Add(1); return nil })
	if masters.Load() != 3 {
		t.Fatalf("discovered %d masters from one seed, want 3", masters.Load())
	}

	t.Run("pipelined HGETALL across slots", func(t *testing.T) {
		prefix := unique("consent")
		keys := make([]string, 60)
		nodes := map[string]bool{}
		for i := range keys {
			keys[i] = fmt.Sprintf("%s:user-%d", prefix, i)
			if err := rdb.HSet(ctx(t), keys[i], "analytics", i%2, "v", i).Err(); err != nil {
				t.Fatal(err)
			}
			m, err := cc.MasterForKey(ctx(t), keys[i])
			if err != nil {
				t.Fatal(err)
			}
			nodes[m.Options().Addr] = true
		}
		t.Cleanup(func() {
			for _, k := range keys {
				rdb.Del(context.Background(), k)
			}
		})
		if len(nodes) < 3 {
			t.Fatalf("the keys landed on %d nodes; the test needs all 3", len(nodes))
		}
		// count the round trips: one pipeline per node, not per key
		var trips, sent atomic.Int32
		counted := newRedis(t, config.Redis{Mode: config.RedisCluster, Addrs: addrs[:1]}).(*redis.ClusterClient)
		counted.OnNewNode(func(n *redis.Client) { n.AddHook(pipelineCounter{&trips, &sent}) })
		if err := PingRedis(ctx(t), counted); err != nil { // loads the slot map
			t.Fatal(err)
		}
		pipe := counted.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HGetAll(ctx(t), k)
		}
		missing := pipe.HGetAll(ctx(t), prefix+":nobody")
		if _, err := pipe.Exec(ctx(t)); err != nil {
			t.Fatal(err)
		}
		for i, c := range cmds {
			if got := c.Val(); got["v"] != fmt.Sprint(i) || got["analytics"] != fmt.Sprint(i%2) {
				t.Fatalf("%s = %v", keys[i], got)
			}
		}
		if len(missing.Val()) != 0 {
			t.Fatalf("absent key read as %v", missing.Val())
		}
		if trips.Load() != 3 || sent.Load() != int32(len(keys)+1) {
			t.Fatalf("%d commands went in %d round trips, want %d in 3 (one per master)", sent.Load(), trips.Load(), len(keys)+1)
		}
	})

	t.Run("Lua on one subject's hash-tagged keys", func(t *testing.T) {
		subject := unique("user")
		record := "consent:{" + subject + "}"
		links := "links:{" + subject + "}"
		script := redis.NewScript(`
redis.call('HSET', KEYS[1], 'analytics', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return {redis.call('HGET', KEYS[1], 'analytics'), redis.call('SCARD', KEYS[2])}`)
		res, err := script.Run(ctx(t), rdb, []string{record, links}, "1", "anon-1").Slice()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), record); rdb.Del(context.Background(), links) })
		if res[0] != "1" || res[1] != int64(1) {
			t.Fatalf("script returned %v", res)
		}
		// without the tags the two keys hash to different slots (for this
		// pair) and the cluster refuses the script: the tags are needed.
		a, b := "consent:"+subject, "links:"+subject
		if cc.ClusterKeySlot(ctx(t), a).Val() == cc.ClusterKeySlot(ctx(t), b).Val() {
			t.Skip("untagged keys happen to share a slot")
		}
		_, err = script.Run(ctx(t), rdb, []string{a, b}, "1", "anon-1").Result()
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Fatalf("untagged keys: %v, want CROSSSLOT", err)
		}
	})

	t.Run("Pub/Sub reaches subscribers through any node", func(t *testing.T) {
		channel := unique("consentd-invalidate")
		sub := rdb.Subscribe(ctx(t), channel)
		defer sub.Close()
		if _, err := sub.Receive(ctx(t)); err != nil { // the subscription confirmation
			t.Fatal(err)
		}
		// publish through a direct connection to each master in turn
		for _, addr := range addrs {
			node := redis.NewClient(&redis.Options{Addr: addr})
			err := node.Publish(ctx(t), channel, "from "+addr).Err()
			node.Close()
			if err != nil {
				t.Fatal(err)
			}
			msg, err := sub.ReceiveMessage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if msg.Payload != "from "+addr {
				t.Fatalf("received %q, want the message published on %s", msg.Payload, addr)
			}
		}
	})
}

// TestIntegrationRedisSentinel finds the master through the sentinel,
// writes and reads, and sees the write reach the replica.
func TestIntegrationRedisSentinel(t *testing.T) {
	v := need(t, "CONSENTD_TEST_REDIS_SENTINEL", "CONSENTD_TEST_REDIS_SENTINEL_MASTER")
	rdb := newRedis(t, config.Redis{Mode: config.RedisSentinel, Addrs: []string{v["CONSENTD_TEST_REDIS_SENTINEL"]}, MasterName: v["CONSENTD_TEST_REDIS_SENTINEL_MASTER"]})
	if err := PingRedis(ctx(t), rdb); err != nil {
		t.Fatal(err)
	}
	role, err := rdb.Do(ctx(t), "ROLE").Slice()
	if err != nil || role[0] != "master" {
		t.Fatalf("ROLE = %v, %v; want the master", role, err)
	}
	key := unique("connect-sentinel")
	if err := rdb.HSet(ctx(t), key, "personalization", "1").Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(context.Background(), key)
	if got := rdb.HGet(ctx(t), key, "personalization").Val(); got != "1" {
		t.Fatalf("read back %q", got)
	}
	if n, err := rdb.Do(ctx(t), "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v: the replica did not acknowledge", n, err)
	}

	// a wrong master name is an error that names it, not a silent fallback
	bad := newRedis(t, config.Redis{Mode: config.RedisSentinel, Addrs: []string{v["CONSENTD_TEST_REDIS_SENTINEL"]}, MasterName: "no-such-master"})
	want := fmt.Sprintf(`redis.master_name "no-such-master": the sentinels at %s know no such master (they know: %s): `,
		v["CONSENTD_TEST_REDIS_SENTINEL"], v["CONSENTD_TEST_REDIS_SENTINEL_MASTER"])
	if err := PingRedis(ctx(t), bad); err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, redis.Nil) {
		t.Fatalf("unknown master: %v\nwant %s...", err, want)
	}
}

// pipelineCounter counts pipelined round trips of HGETALLs and their
// commands (not the handshakes of new connections).
type pipelineCounter struct{ trips, sent *atomic.Int32 }

func (pipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "hgetall" {
			return next(ctx, cmds)
		}
		h.trips.Add(1)
		h.sent.Add(int32(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestIntegrationRedisClusterModeOnASingleNode: mode cluster against a
// Redis that is not a cluster node names redis.mode.
func TestIntegrationRedisClusterModeOnASingleNode(t *testing.T) {
	v := need(t, "CONSENTD_TEST_REDIS")
	rdb := newRedis(t, config.Redis{Mode: config.RedisCluster, Addrs: []string{v["CONSENTD_TEST_REDIS"]}})
	err := PingRedis(ctx(t), rdb)
	want := "redis.mode: cluster, but redis.addrs name a Redis that is not a cluster node (use mode single with redis.addr, or the cluster's nodes): "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("ping: %v\nwant %s...", err, want)
	}
}
