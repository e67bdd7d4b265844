package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationCluster: on a Redis Cluster, subjects spread over every
// master, a lookup batch costs one round trip per node (not per subject),
// every script (put, patch, erase with its two keys, link) runs, and a
// watcher subscribed through the cluster client hears changes made on
// every node.
func TestIntegrationCluster(t *testing.T) {
	itest.Variants(t, []string{itest.Secure}, func(t *testing.T, env itest.Env) {
		rdb := itest.Redis(t, env.Redis)
		cc, ok := rdb.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("itest.Redis(%s) is a %T, want a cluster client", env.Redis, rdb)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		prefix := itest.Unique("cl") + ":consent:"
		inv := &recordingInvalidator{}
		watchInvalidations(t, rdb, prefix, inv)
		itest.Eventually(t, 5*time.Second, "subscription", func() bool { _, b, _ := inv.state(); return !b })

		w := redisstore.NewUpdater(rdb, prefix)
		const n = 60
		subjects := make([]string, n)
		nodes := map[string]bool{}
		for i := range subjects {
			subjects[i] = fmt.Sprintf("u%d", i)
			if _, err := w.Put(ctx, subjects[i], 1, map[string]bool{"analytics": i%2 == 0}, time.Time{}, time.Time{}, time.Time{}); err != nil {
				t.Fatal(err)
			}
			m, err := cc.MasterForKey(ctx, redisstore.RecordKey(prefix, subjects[i]))
			if err != nil {
				t.Fatal(err)
			}
			nodes[m.Options().Addr] = true
		}
		if len(nodes) < 2 {
			t.Fatalf("%d subjects landed on %d node(s); the test needs them spread", n, len(nodes))
		}
		if err := w.Link(ctx, map[string]string{"anon-1": "u1", "anon-2": "u2"}); err != nil {
			t.Fatal(err)
		}

		var cmds countHook
		_ = cc.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error { c.AddHook(&cmds); return nil })
		recs, err := redisstore.New(rdb, prefix, 2*time.Second, nil).Lookup(ctx, append(subjects, "anon-1", "anon-2"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cmds.pipelines(); got > len(nodes) {
			t.Errorf("a lookup of %d subjects took %d pipelined round trips, want at most one per node (%d)", n+2, got, len(nodes))
		}
		for i, s := range subjects {
			if r := recs[s]; !r.Found || r.Allows("analytics") != (i%2 == 0) {
				t.Errorf("%s: %+v", s, r)
			}
		}
		if recs["anon-1"].LinkedTo != "u1" || recs["anon-2"].LinkedTo != "u2" {
			t.Errorf("links: %+v %+v", recs["anon-1"], recs["anon-2"])
		}

		for _, s := range subjects[:10] {
			if _, err := w.Patch(ctx, s, map[string]bool{"analytics": false}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := w.Erase(ctx, "anon-1", time.Time{}, false); err != nil {
			t.Fatal(err)
		}
		if existed, _, err := w.Erase(ctx, subjects[10], time.Time{}, false); err != nil || !existed {
			t.Fatalf("erase: %v %v", existed, err)
		}
		// Erasing a user erases its linked anonymous id, whose keys live
		// in another slot.
		if existed, linked, err := w.Erase(ctx, "u2", time.Time{}, false); err != nil || !existed || len(linked) != 1 || linked[0] != "anon-2" {
			t.Fatalf("erase u2: existed %v linked %v err %v", existed, linked, err)
		}
		if st, err := w.Read(ctx, "anon-2"); err != nil || st.LinkedTo != "" {
			t.Fatalf("anon-2 after its user was erased: %+v %v", st, err)
		}
		itest.Eventually(t, 5*time.Second, "every change heard", func() bool {
			heard := map[string]bool{}
			got, _, _ := inv.state()
			for _, s := range got {
				heard[s] = true
			}
			for _, s := range append(subjects[:11:11], "anon-1") {
				if !heard[s] {
					return false
				}
			}
			return true
		})
	})
}

// countHook counts the pipelines sent to nodes, not counting the
// handshake of new connections.
type countHook struct {
	mu sync.Mutex
	n  int
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "client" && cmds[0].Name() != "hello" { // not a new connection's handshake
			h.mu.Lock()
			h.n++
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

func (h *countHook) pipelines() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
