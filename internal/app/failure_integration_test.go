package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
)

// redisProc is a redis-server owned by one test, so that it can be paused,
// killed and restarted without disturbing other tests.
type redisProc struct {
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, dir string, port int) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (make test installs it): %v", err)
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &redisProc{dir: dir, port: port, cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	itest.Eventually(t, 10*time.Second, "redis-server to answer", func() bool {
		return redisAnswers(addr)
	})
	return p
}

func (p *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

func (p *redisProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *redisProc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// redisAnswers reports whether a Redis server answers PING on addr.
func redisAnswers(addr string) bool {
	rdb := itest.RedisNoCheck(addr)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return rdb.Ping(ctx).Err() == nil
}

func fullConsentEvents(prefix string, from, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		subj := fmt.Sprintf("%s-%d", prefix, (from+i)%50)
		msgs[i] = kafka.Message{Key: []byte(subj), Value: []byte(fmt.Sprintf(`{"type":"track","event":"Product Viewed","userId":%q,"messageId":"%s-m%d","context":{"ip":"10.0.0.%d"}}`, subj, prefix, from+i, i%250))}
	}
	return msgs
}

func seedFull(t *testing.T, addr, keyPrefix, subjPrefix string) {
	t.Helper()
	rdb := itest.Redis(t, addr)
	for i := 0; i < 50; i++ {
		err := redisstore.Put(context.Background(), rdb, keyPrefix, fmt.Sprintf("%s-%d", subjPrefix, i), 1, map[string]bool{"personalization": true, "analytics": true, "advertising": true})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func cleanIDs(t *testing.T, broker, topic string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, m := range itest.ReadAll(t, broker, topic) {
		ids[messageID(t, m.Value)]++
	}
	return ids
}

// TestIntegrationRedisOutage pauses Redis (lookups time out), then kills
// it (connections refused): consentd must emit nothing for events it cannot
// look up, report not ready, and deliver every event once Redis is back.
func TestIntegrationRedisOutage(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure}, testIntegrationRedisOutage)
}

func testIntegrationRedisOutage(t *testing.T, env itest.Env) {
	rp := startRedis(t, t.TempDir(), itest.FreePort(t))
	env = env.WithRedis(rp.addr()) // a Redis of its own, to pause and kill
	s := newStack(t, env, 2)
	for _, p := range []string{"a", "b", "c"} {
		seedFull(t, env.Redis, s.prefix, p)
	}
	r := s.start(t, func(c *config.Config) { c.Redis.Addr = rp.addr() })

	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("a", 0, 100)...)
	itest.Eventually(t, 30*time.Second, "batch a written", func() bool { return itest.Count(t, env.Kafka, s.perso) == 100 })

	// Phase 1: Redis hangs. Subjects b-* were never looked up, so nothing is cached.
	rp.signal(t, syscall.SIGSTOP)
	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("b", 0, 100)...)
	itest.Eventually(t, 10*time.Second, "readiness to drop", func() bool {
		code, body := r.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "consent_store")
	})
	time.Sleep(1500 * time.Millisecond)
	if n := itest.Count(t, env.Kafka, s.perso); n != 100 {
		t.Fatalf("while Redis hangs, personalization holds %d messages, want still 100", n)
	}
	if n := itest.Count(t, env.Kafka, s.dlq); n != 0 {
		t.Fatalf("while Redis hangs, %d events were dead-lettered", n)
	}
	if r.metric(t, "consentd_consent_redis_errors_total") == 0 {
		t.Error("no Redis errors counted")
	}
	rp.signal(t, syscall.SIGCONT)
	itest.Eventually(t, 30*time.Second, "batch b written after Redis resumed", func() bool { return itest.Count(t, env.Kafka, s.perso) == 200 })

	// Phase 2: Redis dies (after saving), events arrive, Redis restarts.
	rdb := itest.Redis(t, env.Redis)
	if err := rdb.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	rp.kill(t)
	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("c", 0, 100)...)
	itest.Eventually(t, 10*time.Second, "readiness to drop", func() bool { code, _ := r.get(t, "/readyz"); return code == 503 })
	time.Sleep(1500 * time.Millisecond)
	if n := itest.Count(t, env.Kafka, s.perso); n != 200 {
		t.Fatalf("while Redis is down, personalization holds %d messages, want still 200", n)
	}
	if _, err := os.Stat(filepath.Join(rp.dir, "dump.rdb")); err != nil {
		t.Fatal(err)
	}
	startRedis(t, rp.dir, rp.port)
	itest.Eventually(t, 30*time.Second, "batch c written after Redis restarted", func() bool { return itest.Count(t, env.Kafka, s.perso) == 300 })
	itest.Eventually(t, 10*time.Second, "ready again", func() bool { code, _ := r.get(t, "/readyz"); return code == 200 })

	ids := cleanIDs(t, env.Kafka, s.perso)
	for _, p := range []string{"a", "b", "c"} {
		for i := 0; i < 100; i++ {
			if ids[fmt.Sprintf("%s-m%d", p, i)] != 1 {
				t.Errorf("event %s-m%d written %d times", p, i, ids[fmt.Sprintf("%s-m%d", p, i)])
			}
		}
	}
	itest.Eventually(t, 10*time.Second, "all offsets committed", func() bool {
		c := itest.Committed(t, env.Kafka, s.group, s.raw, 2)
		return c[0]+c[1] == 300
	})
}

// TestIntegrationCrashRestart kills consentd with SIGKILL while events flow
// and restarts it: every event must reach its clean topic (duplicates are
// allowed, losses are not).
func TestIntegrationCrashRestart(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure}, testIntegrationCrashRestart)
}

func testIntegrationCrashRestart(t *testing.T, env itest.Env) {
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "k")
	bin := buildConsentd(t)

	const total = 20000
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", s.cfgPath)
		logf, err := os.Create(filepath.Join(t.TempDir(), "consentd.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
		return cmd
	}
	first := start()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < total; i += 1000 {
			itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("k", i, 1000)...)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	itest.Eventually(t, 60*time.Second, "some events written", func() bool { return itest.Count(t, env.Kafka, s.perso) > total/5 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := itest.Count(t, env.Kafka, s.perso)
	<-produced

	second := start()
	itest.Eventually(t, 120*time.Second, "every offset committed after restart", func() bool {
		c := itest.Committed(t, env.Kafka, s.group, s.raw, 4)
		return c[0]+c[1]+c[2]+c[3] == total
	})
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("consentd exited with %v after SIGTERM, want 0", err)
	}

	ids := cleanIDs(t, env.Kafka, s.perso)
	missing, dups := deliveries(ids, "k", total)
	t.Logf("killed after %d clean writes; after restart: %d events, %d duplicates, %d missing", atKill, total, dups, missing)
	if missing > 0 {
		t.Fatalf("%d events lost across the crash", missing)
	}
	if len(ids) != total {
		t.Fatalf("clean topic holds %d distinct events, want %d", len(ids), total)
	}
}

func buildConsentd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "consentd")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/consentd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// deliveries counts, for events prefix-m0 .. prefix-m(total-1), how many
// never reached the clean topic and how many extra copies did.
func deliveries(ids map[string]int, prefix string, total int) (missing, dups int) {
	for i := 0; i < total; i++ {
		switch n := ids[fmt.Sprintf("%s-m%d", prefix, i)]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	return missing, dups
}
