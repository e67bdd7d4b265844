package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/consentd/consentd/internal/audit"
	"github.com/consentd/consentd/internal/connect"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/wire"
)

// testSecret is the k1 pseudonymization key used by integration tests.
var testSecret = []byte("integration-test-secret-0123456789abcdef")

// pseud computes the expected pseudonym independently of package policy.
func pseud(v string) string {
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(v))
	return "k1:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// stack is one consentd under test with its own topics, group and Redis
// key prefix, using the shipped policy.
type stack struct {
	env                     itest.Env
	raw, dlq, group, prefix string
	perso, ana, adv         string
	cfgPath                 string
	cfg                     *config.Config
	// logs records every entry at info level and above, from every
	// instance started on this stack.
	logs *observer.ObservedLogs
	core zapcore.Core
}

func newStack(t *testing.T, env itest.Env, rawPartitions int) *stack {
	t.Helper()
	id := itest.Unique("t")
	s := &stack{env: env, raw: id + ".raw", dlq: id + ".dlq", group: id + ".group", prefix: id + ":consent:",
		perso: id + ".perso", ana: id + ".ana", adv: id + ".adv"}
	itest.CreateTopics(t, env.Kafka, rawPartitions, s.raw)
	// Clean topics stamp messages with the broker's append time, so tests
	// can tell when a message was written.
	if err := kafkatest.CreateTopicsWithConfig(env.Kafka, 2, map[string]string{"message.timestamp.type": "LogAppendTime"}, s.dlq, s.perso, s.ana, s.adv); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	policy, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := string(policy)
	for from, to := range map[string]string{"topic: clean.personalization": "topic: " + s.perso, "topic: clean.analytics": "topic: " + s.ana, "topic: clean.advertising": "topic: " + s.adv} {
		if !strings.Contains(p, from) {
			t.Fatalf("shipped policy has no %q", from)
		}
		p = strings.Replace(p, from, to, 1)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.yaml", p)
	write("keys", "k1:"+base64Std(testSecret)+"\n")
	write("consentd.yaml", `
kafka:
  brokers: ["`+env.Kafka+`"]`+kafkaSecurityYAML(env)+`
  raw_topics: [`+s.raw+`]
  group_id: `+s.group+`
  dead_letter_topic: `+s.dlq+`
  max_message_bytes: 4096
  session_timeout: 6s
redis:`+redisYAML(env)+`
  key_prefix: "`+s.prefix+`"
  timeout: 1s
admin:
  listen: 127.0.0.1:0
  api_listen: 127.0.0.1:0
pipeline:
  batch_size: 200
  commit_interval: 100ms
  retry_backoff_min: 50ms
  retry_backoff_max: 300ms
  shutdown_grace: 10s
pseudonymization:
  key_file: keys
policy: policy.yaml
`)
	s.core, s.logs = observer.New(zap.InfoLevel)
	s.cfgPath = filepath.Join(dir, "consentd.yaml")
	s.cfg, err = config.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kafkaSecurityYAML is the kafka.tls and kafka.sasl settings of env
// (indented under kafka:), the password read from the environment
// variable that services.env exports.
func kafkaSecurityYAML(env itest.Env) string {
	if env.KafkaSASL.Mechanism == "" {
		return ""
	}
	return fmt.Sprintf(`
  tls:
    enabled: true
    ca_file: %q
  sasl:
    mechanism: %s
    username: %q
    password_env: %s`, env.KafkaTLS.CAFile, env.KafkaSASL.Mechanism, env.KafkaSASL.Username, env.KafkaSASL.PasswordEnv)
}

// redisYAML is the redis settings that reach env's Redis.
func redisYAML(env itest.Env) string {
	switch env.RedisMode {
	case config.RedisCluster:
		return fmt.Sprintf("\n  mode: cluster\n  addrs: [%s]", strings.Join(env.RedisAddrs(), ", "))
	case config.RedisSentinel:
		return fmt.Sprintf("\n  mode: sentinel\n  addrs: [%s]\n  master_name: %s", strings.Join(env.RedisAddrs(), ", "), env.RedisMaster)
	}
	return "\n  addr: " + env.Redis
}

// running is an in-process consentd.
type running struct {
	app  *App
	stop func() error
}

func (s *stack) start(t *testing.T, mutate func(*config.Config), opts ...Option) *running {
	t.Helper()
	cfg := *s.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	pol, err := LoadPolicy(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel), zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, s.core)
	})))
	a, err := New(&cfg, pol, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	early := make(chan struct{})
	go func() {
		err := a.Run(ctx)
		select {
		case <-early:
		default:
			if ctx.Err() == nil {
				t.Errorf("consentd stopped by itself: %v", err)
			}
		}
		done <- err
	}()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			close(early)
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Error("consentd did not stop within 30s")
			}
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{app: a, stop: stop}
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.app.AdminAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one exposition line "name{labels} value",
// or 0 when the series does not exist.
func (r *running) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := r.get(t, "/metrics")
	return metricValue(body, series)
}

// assertNoPersonalData fails if any log entry at info level or above
// mentions one of the values.
func (s *stack) assertNoPersonalData(t *testing.T, values ...string) {
	t.Helper()
	if s.logs.Len() == 0 {
		t.Error("no log entries observed at info level; the check would be vacuous")
	}
	for _, e := range s.logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + fmt.Sprint(v)
		}
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("log entry at %s contains personal data %q: %s", e.Level, v, text)
			}
		}
	}
}

// delivered reads the clean topics: the messageIds each output received,
// and the retractions per topic as "key reason purposes".
func (s *stack) delivered(t *testing.T) (byOutput, retractions map[string][]string) {
	t.Helper()
	byOutput, retractions = map[string][]string{}, map[string][]string{}
	for _, topic := range []string{s.perso, s.ana, s.adv} {
		for _, m := range itest.ReadAll(t, s.env.Kafka, topic) {
			if reason, ok := itest.Header(m, wire.HeaderRetraction); ok {
				if m.Value != nil {
					t.Errorf("retraction with a value: %s", m.Value)
				}
				ps, _ := itest.Header(m, wire.HeaderRetractionPurposes)
				r := string(m.Key) + " " + reason + " " + ps
				if !slices.Contains(retractions[topic], r) { // written before the change and after the barrier
					retractions[topic] = append(retractions[topic], r)
				}
				continue
			}
			o, _ := itest.Header(m, wire.HeaderOutput)
			byOutput[o] = append(byOutput[o], messageID(t, m.Value))
		}
	}
	return byOutput, retractions
}

// expectSets fails for every key whose values differ from want's, ignoring
// order.
func expectSets(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for k, w := range want {
		if !sameSet(got[k], w) {
			t.Errorf("%s %s: got %v, want %v", what, k, got[k], w)
		}
	}
}

// audit runs consentd audit's checker over the stack's clean topics, with
// ids as the raw subject ids to look for, and fails on any finding: what
// consentd wrote must pass a check that shares no code with it.
func (s *stack) audit(t *testing.T, ids ...string) *audit.Report {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(filepath.Dir(s.cfgPath), "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := audit.ReadPolicy(text, fmt.Sprintf("sha256:%x", sha256.Sum256(text)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc, err := connect.NewKafka(ctx, s.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	c := &audit.Checker{Policy: pol, KeyIDs: []string{"k1"}, IDs: ids}
	rep, err := audit.Run(ctx, c, audit.Options{Dialer: kc.Dialer(), Brokers: kc.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages == 0 {
		t.Fatal("audit: no clean message to check")
	}
	for _, m := range rep.Findings {
		t.Errorf("audit: %s (%s): %+v", m.At, m.Output, m.Findings)
	}
	return rep
}
