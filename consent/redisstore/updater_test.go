package redisstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/testing/itest"
)

func lookup1(t *testing.T, s *redisstore.Store, subject string) consent.Record {
	t.Helper()
	got, err := s.Lookup(context.Background(), []string{subject})
	if err != nil {
		t.Fatal(err)
	}
	return got[subject]
}

// TestIntegrationWriterIsMonotonic: older and replayed updates never roll
// consent back; expiry counts as no consent; patch and erase work.
func TestIntegrationWriterIsMonotonic(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	w := redisstore.NewUpdater(rdb, prefix)
	s := redisstore.New(rdb, prefix, time.Second, nil)
	ctx := context.Background()

	steps := []struct {
		name    string
		version int64
		grant   bool
		applied bool
		wantV   int64
		want    bool
	}{
		{"first", 10, true, true, 10, true},
		{"older is ignored", 9, false, false, 10, true},
		{"replay is ignored", 10, false, false, 10, true},
		{"newer applies", 11, false, true, 11, false},
		{"newer again", 20, true, true, 20, true},
	}
	for _, st := range steps {
		applied, err := w.Put(ctx, "u", st.version, map[string]bool{"p": st.grant}, time.Time{}, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		r := lookup1(t, s, "u")
		if applied != st.applied || r.Version != st.wantV || r.Allows("p") != st.want {
			t.Fatalf("%s: applied=%v record=%+v", st.name, applied, r)
		}
	}
	// A redisstore.Put replaces the record: purposes not listed are denied.
	if _, err := w.Put(ctx, "u", 21, map[string]bool{"q": true}, time.Time{}, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := lookup1(t, s, "u"); r.Allows("p") || !r.Allows("q") {
		t.Fatalf("after full replace: %+v", r)
	}
	qAt := lookup1(t, s, "u").GrantedAt["q"]
	if qAt == 0 {
		t.Fatal("no grant time recorded for q")
	}
	// Patch keeps other purposes and bumps the version past the stored one.
	before := time.Now().UnixMilli()
	v, err := w.Patch(ctx, "u", map[string]bool{"p": true})
	if err != nil || v <= 21 {
		t.Fatalf("patch: %d, %v", v, err)
	}
	if r := lookup1(t, s, "u"); r.GrantedAt["p"] < before || r.GrantedAt["q"] != qAt {
		t.Fatalf("grant times after patch: %v (q was %d)", r.GrantedAt, qAt)
	}
	if r := lookup1(t, s, "u"); !r.Allows("p") || !r.Allows("q") || r.Version != v {
		t.Fatalf("after patch: %+v", r)
	}
	// A newer redisstore.Put that keeps q granted keeps its grant time; an explicit
	// grant time is used for newly granted purposes.
	if _, err := w.Put(ctx, "u", v+1, map[string]bool{"q": true, "r": true}, time.Time{}, time.UnixMilli(1234), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := lookup1(t, s, "u"); r.GrantedAt["q"] != qAt || r.GrantedAt["r"] != 1234 || r.GrantedAt["p"] != 0 {
		t.Fatalf("grant times after put: %v", r.GrantedAt)
	}
	v++
	// redisstore.Expiry.
	if _, err := w.Put(ctx, "e", 1, map[string]bool{"p": true}, time.Now().Add(300*time.Millisecond), time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := lookup1(t, s, "e"); !r.Allows("p") {
		t.Fatalf("before expiry: %+v", r)
	}
	time.Sleep(400 * time.Millisecond)
	if r := lookup1(t, s, "e"); r.Found || r.Allows("p") {
		t.Fatalf("after expiry: %+v", r)
	}
	// Erase.
	if existed, _, err := w.Erase(ctx, "u", time.Time{}, false); err != nil || !existed {
		t.Fatalf("erase: %v %v", existed, err)
	}
	if r := lookup1(t, s, "u"); r.Found {
		t.Fatalf("after erase: %+v", r)
	}
	if _, err := w.Put(ctx, "u", 1, map[string]bool{"_v": true}, time.Time{}, time.Time{}, time.Time{}); err == nil {
		t.Fatal("a purpose named _v was accepted")
	}
}

type recordingInvalidator struct {
	mu          sync.Mutex
	invalidated []string
	bypass      []bool
}

func (r *recordingInvalidator) Invalidate(s string) {
	r.mu.Lock()
	r.invalidated = append(r.invalidated, s)
	r.mu.Unlock()
}

func (r *recordingInvalidator) SetBypass(on bool) {
	r.mu.Lock()
	r.bypass = append(r.bypass, on)
	r.mu.Unlock()
}

func (r *recordingInvalidator) state() (inv []string, bypass bool, flips int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := true
	if len(r.bypass) > 0 {
		b = r.bypass[len(r.bypass)-1]
	}
	return append([]string(nil), r.invalidated...), b, len(r.bypass)
}

// TestIntegrationInvalidation: a change written by one client reaches the
// watcher of another at once; a lost subscription bypasses the cache until
// it is back.
func TestIntegrationInvalidation(t *testing.T) {
	env := itest.Require(t)
	rdb := itest.Redis(t, env.Redis)
	prefix := itest.Unique("t") + ":consent:"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := &recordingInvalidator{}
	name := itest.Unique("watcher")
	watcher := redis.NewClient(&redis.Options{Addr: env.Redis, ClientName: name})
	t.Cleanup(func() { watcher.Close() })
	watchInvalidations(t, watcher, prefix, inv)
	itest.Eventually(t, 5*time.Second, "subscription", func() bool { _, b, _ := inv.state(); return !b })

	w := redisstore.NewUpdater(rdb, prefix)
	start := time.Now()
	if _, err := w.Patch(ctx, "u1", map[string]bool{"p": false}); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 2*time.Second, "invalidation", func() bool { i, _, _ := inv.state(); return len(i) == 1 && i[0] == "u1" })
	t.Logf("invalidation heard %s after the write returned", time.Since(start))

	// Drop the watcher's connection: the cache must be bypassed, then
	// re-enabled once the subscription is restored.
	_, _, flipsBefore := inv.state()
	killClient(t, rdb, name)
	itest.Eventually(t, 5*time.Second, "bypass after the connection was killed", func() bool {
		_, _, flips := inv.state()
		return flips > flipsBefore
	})
	itest.Eventually(t, 5*time.Second, "cache back after resubscribing", func() bool { _, b, _ := inv.state(); return !b })
	if _, _, err := w.Erase(ctx, "u2", time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 2*time.Second, "invalidation after reconnect", func() bool { i, _, _ := inv.state(); return len(i) == 2 && i[1] == "u2" })
}

// watchInvalidations runs WatchInvalidations until the test ends and
// waits for it to return before the clients closed by earlier cleanups
// are closed (so that nothing logs after the test).
func watchInvalidations(t *testing.T, rdb redis.UniversalClient, prefix string, inv redisstore.Invalidator) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		redisstore.WatchInvalidations(ctx, rdb, prefix, inv, 500*time.Millisecond, outage.New("Redis", "", zaptest.NewLogger(t), outage.Config{}))
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// killClient closes the server side of the connections named name.
func killClient(t *testing.T, rdb redis.UniversalClient, name string) {
	t.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := rdb.ClientKillByFilter(context.Background(), "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named %s", name)
	}
}
