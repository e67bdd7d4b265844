package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/wire"
)

// These tests run the Runner against an in-process Kafka-protocol broker
// with a producer that injects faults, so that the runner's guarantees are
// tested without services.

const (
	rawTopic   = "raw"
	cleanTopic = "clean"
	dlqTopic   = "dlq"
	partitions = 2
)

func startBroker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, rawTopic, cleanTopic, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func produceRaw(t *testing.T, broker string, values ...string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Topic: rawTopic, Value: []byte(v)}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// copyProc copies each raw message to the clean topic; value "dead"
// becomes a dead letter. It counts its batches, and can report every
// batch stale once.
type copyProc struct {
	calls     *atomic.Int64
	staleOnce *atomic.Bool
}

func (c copyProc) Process(_ context.Context, msgs []kafka.Message) (*Result, error) {
	c.calls.Add(1)
	res := &Result{Accounting: NewAccounting()}
	for i := range msgs {
		m := &msgs[i]
		res.Accounting.Consumed[m.Topic]++
		if string(m.Value) == "dead" {
			res.Out = append(res.Out, wire.DeadLetter(dlqTopic, m, "test", "test", "v1"))
			res.Accounting.Dead["test"]++
		} else {
			res.Out = append(res.Out, wire.Clean{Topic: cleanTopic, Key: []byte("k"), Value: m.Value, PolicyVersion: []byte("v1"),
				ConsentVersion: wire.None, Actions: wire.None, Output: []byte("out"), Source: wire.Source(m)}.Message())
			res.Accounting.Written["out"]++
			res.Accounting.Decisions[Decision{"out", "write", ""}]++
		}
		res.Origin = append(res.Origin, i)
	}
	return res, nil
}

func (c copyProc) Stale(*Result) bool {
	return c.staleOnce != nil && c.staleOnce.CompareAndSwap(true, false)
}

// faultyProducer writes through a real writer, failing as told first.
type faultyProducer struct {
	w *kafka.Writer
	// fault, if set, returns the error for one message on one attempt
	// (nil: write it).
	fault func(m *kafka.Message, attempt int) error
	mu    sync.Mutex
	tries map[string]int // attempts per message value
	calls atomic.Int64
	block chan struct{} // if set, every call waits for it or ctx
	// whole, if set, may fail a whole call (as kafka-go's own checks do).
	whole func(msgs []kafka.Message) error
}

func (f *faultyProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.whole != nil {
		if err := f.whole(msgs); err != nil {
			return err
		}
	}
	if f.fault == nil {
		return f.w.WriteMessages(ctx, msgs...)
	}
	werrs := make(kafka.WriteErrors, len(msgs))
	var ok []kafka.Message
	var okIdx []int
	failed := false
	f.mu.Lock()
	for i := range msgs {
		key := string(msgs[i].Value) + "|" + msgs[i].Topic
		f.tries[key]++
		if err := f.fault(&msgs[i], f.tries[key]); err != nil {
			werrs[i], failed = err, true
			continue
		}
		ok = append(ok, msgs[i])
		okIdx = append(okIdx, i)
	}
	f.mu.Unlock()
	if len(ok) > 0 {
		if err := f.w.WriteMessages(ctx, ok...); err != nil {
			return err
		}
	}
	if failed {
		return werrs
	}
	return nil
}

func newFaulty(broker string, fault func(*kafka.Message, int) error) *faultyProducer {
	return &faultyProducer{w: &kafka.Writer{Addr: kafka.TCP(broker), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireOne},
		fault: fault, tries: map[string]int{}}
}

type testRun struct {
	broker string
	stats  *Stats
	calls  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

func runRunner(t *testing.T, broker string, p Producer, tweak func(*RunnerConfig)) *testRun {
	t.Helper()
	tr := &testRun{broker: broker, stats: &Stats{}, done: make(chan error, 1)}
	cfg := RunnerConfig{
		Brokers: []string{broker}, Topics: []string{rawTopic}, GroupID: "g-" + t.Name(),
		SessionTimeout: 6 * time.Second, BatchSize: 50, CommitInterval: 50 * time.Millisecond,
		Backoff:         retry.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond},
		ShutdownGrace:   2 * time.Second,
		DeadLetterTopic: dlqTopic, Producer: p, Hooks: hooks.List{tr.stats},
		NewProcessor: func() BatchProcessor { return copyProc{calls: &tr.calls} },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	go func() { tr.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-tr.done:
		case <-time.After(20 * time.Second):
			t.Error("runner did not stop")
		}
	})
	return tr
}

// waitCommitted waits until the group committed n messages in all.
func waitCommitted(t *testing.T, broker, group string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := kafkatest.Committed(broker, group, rawTopic, partitions)
		if err == nil && kafkatest.SumCommitted(c) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %v (err %v), want %d in all", c, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAll(t *testing.T, broker, topic string) []kafka.Message {
	return kafkatest.ReadAll(t, broker, topic)
}

func values(ms []kafka.Message) map[string]int { return kafkatest.Values(ms) }

func events(n int, prefix string) []string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return v
}

func TestRunnerWritesEverythingAndCommits(t *testing.T) {
	broker := startBroker(t)
	in := append(events(200, "ev"), "dead", "dead")
	produceRaw(t, broker, in...)
	tr := runRunner(t, broker, newFaulty(broker, nil), nil)
	waitCommitted(t, broker, "g-"+t.Name(), int64(len(in)))
	clean := values(readAll(t, broker, cleanTopic))
	for _, v := range in[:200] {
		if clean[v] < 1 {
			t.Fatalf("%s not written", v)
		}
	}
	if dl := readAll(t, broker, dlqTopic); len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	st := tr.stats.Snapshot()
	if Total(st.Consumed) != len(in) || st.Written["out"] != 200 || st.Dead["test"] != 2 {
		t.Fatalf("accounting %+v", st.Accounting)
	}
}

func TestRunnerRetriesOnlyFailedMessages(t *testing.T) {
	broker := startBroker(t)
	in := events(100, "ev")
	produceRaw(t, broker, in...)
	// Every third message fails twice with a retriable error.
	p := newFaulty(broker, func(m *kafka.Message, attempt int) error {
		if m.Value[len(m.Value)-1]%3 == 0 && attempt <= 2 {
			return kafka.NotLeaderForPartition
		}
		return nil
	})
	runRunner(t, broker, p, nil)
	waitCommitted(t, broker, "g-"+t.Name(), int64(len(in)))
	clean := values(readAll(t, broker, cleanTopic))
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range in {
		if clean[v] < 1 {
			t.Fatalf("%s never written", v)
		}
		// A message that never fails is sent once (one generation, no
		// redelivery): a partial failure never sends the written ones again.
		if tries := p.tries[v+"|"+cleanTopic]; v[len(v)-1]%3 != 0 && tries != 1 {
			t.Fatalf("%s sent %d times: retried although it was written", v, tries)
		}
	}
}

func TestRunnerDeadLettersRefusedWrites(t *testing.T) {
	broker := startBroker(t)
	in := events(60, "ev")
	produceRaw(t, broker, in...)
	// The broker refuses ev-007's clean message for good, and the dead
	// letter of ev-013 too (it must then be written truncated).
	p := newFaulty(broker, func(m *kafka.Message, attempt int) error {
		v := string(m.Value)
		switch {
		case v == "ev-007" && m.Topic == cleanTopic:
			return kafka.MessageSizeTooLarge
		case v == "ev-013" && m.Topic == cleanTopic:
			return kafka.InvalidRecord
		case v == "ev-013" && m.Topic == dlqTopic && wire.Header(m, wire.HeaderDLQTruncated) == nil:
			return kafka.MessageSizeTooLarge
		}
		return nil
	})
	tr := runRunner(t, broker, p, nil)
	waitCommitted(t, broker, "g-"+t.Name(), int64(len(in)))
	clean := values(readAll(t, broker, cleanTopic))
	if clean["ev-007"] != 0 || clean["ev-013"] != 0 || clean["ev-008"] < 1 {
		t.Fatalf("clean: ev-007 %d, ev-013 %d, ev-008 %d", clean["ev-007"], clean["ev-013"], clean["ev-008"])
	}
	dl := readAll(t, broker, dlqTopic)
	if got := values(dl); len(got) != 2 || got["ev-007"] < 1 || got["ev-013"] < 1 {
		t.Fatalf("dead letters %v, want ev-007 and ev-013", got)
	}
	for _, m := range dl {
		if string(wire.Header(&m, wire.HeaderDLQReason)) != ReasonWriteRefused {
			t.Errorf("dead letter reason %q", wire.Header(&m, wire.HeaderDLQReason))
		}
		if src := string(wire.Header(&m, wire.HeaderSourceTopic)); src != rawTopic {
			t.Errorf("dead letter source topic %q", src)
		}
		if string(m.Value) == "ev-013" && string(wire.Header(&m, wire.HeaderDLQTruncated)) != "true" {
			t.Errorf("the refused dead letter was not truncated: %v", m.Headers)
		}
	}
	st := tr.stats.Snapshot()
	if st.Written["out"] < 58 || st.Dead[ReasonWriteRefused] < 2 || st.Written["out"] > len(readAll(t, broker, cleanTopic)) ||
		st.Decisions[Decision{"out", "skip", ReasonWriteRefused}] != st.Dead[ReasonWriteRefused] {
		t.Fatalf("accounting %+v", st.Accounting)
	}
}

// kafka-go refuses a whole call when one message is larger than its batch
// limit: that message alone is dead-lettered, the others are written.
func TestRunnerWholeCallRefusedNamesItsMessage(t *testing.T) {
	broker := startBroker(t)
	in := events(30, "ev")
	produceRaw(t, broker, in...)
	p := newFaulty(broker, nil)
	p.whole = func(msgs []kafka.Message) error {
		for i, m := range msgs {
			if string(m.Value) == "ev-011" && m.Topic == cleanTopic {
				return kafka.MessageTooLargeError{Message: msgs[i], Remaining: append(append([]kafka.Message(nil), msgs[:i]...), msgs[i+1:]...)}
			}
		}
		return nil
	}
	runRunner(t, broker, p, nil)
	waitCommitted(t, broker, "g-"+t.Name(), int64(len(in)))
	clean := values(readAll(t, broker, cleanTopic))
	for _, v := range in {
		if (clean[v] == 0) != (v == "ev-011") {
			t.Fatalf("%s written %d times", v, clean[v])
		}
	}
	dl := values(readAll(t, broker, dlqTopic))
	if len(dl) != 1 || dl["ev-011"] < 1 {
		t.Fatalf("dead letters %v, want ev-011 only", dl)
	}
}

func TestRunnerOversizedOutputNeverReachesTheBroker(t *testing.T) {
	broker := startBroker(t)
	big := "big-" + strings.Repeat("x", 9000)
	produceRaw(t, broker, "a", big, "b")
	var sawBig atomic.Bool
	p := newFaulty(broker, func(m *kafka.Message, _ int) error {
		if bytes.HasPrefix(m.Value, []byte("big-")) && len(m.Value) > 5000 {
			sawBig.Store(true)
		}
		return nil
	})
	runRunner(t, broker, p, func(c *RunnerConfig) { c.MaxWriteBytes = 8192 })
	waitCommitted(t, broker, "g-"+t.Name(), 3)
	if sawBig.Load() {
		t.Fatal("a message larger than MaxWriteBytes was sent to the broker")
	}
	dl := readAll(t, broker, dlqTopic)
	if len(dl) < 1 {
		t.Fatal("the oversized event was not dead-lettered")
	}
	for _, m := range dl {
		if string(wire.Header(&m, wire.HeaderDLQReason)) != ReasonOutputTooLarge ||
			string(wire.Header(&m, wire.HeaderDLQTruncated)) != "true" || len(m.Value) > 8192 || !bytes.HasPrefix(m.Value, []byte("big-")) {
			t.Fatalf("dead letter %s %v (%d bytes)", wire.Header(&m, wire.HeaderDLQReason), wire.Header(&m, wire.HeaderDLQTruncated), len(m.Value))
		}
	}
}

func TestRunnerStopsWhenWritesAreForbidden(t *testing.T) {
	broker := startBroker(t)
	produceRaw(t, broker, events(10, "ev")...)
	p := newFaulty(broker, func(*kafka.Message, int) error { return kafka.TopicAuthorizationFailed })
	tr := runRunner(t, broker, p, nil)
	select {
	case err := <-tr.done:
		if !errors.Is(err, kafka.TopicAuthorizationFailed) {
			t.Fatalf("Run returned %v, want the authorization error", err)
		}
		tr.done <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("runner kept retrying a write the broker forbids")
	}
	if c, _ := kafkatest.Committed(broker, "g-"+t.Name(), rawTopic, partitions); kafkatest.SumCommitted(c) > 0 {
		t.Fatalf("committed %v although nothing was written", c)
	}
}

func TestRunnerRedecidesStaleBatches(t *testing.T) {
	broker := startBroker(t)
	produceRaw(t, broker, events(20, "ev")...)
	var stale atomic.Bool
	stale.Store(true)
	tr := &atomic.Int64{}
	runRunner(t, broker, newFaulty(broker, nil), func(c *RunnerConfig) {
		c.NewProcessor = func() BatchProcessor { return copyProc{calls: tr, staleOnce: &stale} }
	})
	waitCommitted(t, broker, "g-"+t.Name(), 20)
	if stale.Load() {
		t.Fatal("Stale was never asked")
	}
	// One batch per partition at least, plus one decided again.
	if tr.Load() < 2 {
		t.Fatalf("Process called %d times", tr.Load())
	}
}

func TestRunnerShutdownGraceBoundsDraining(t *testing.T) {
	broker := startBroker(t)
	produceRaw(t, broker, events(10, "ev")...)
	p := newFaulty(broker, nil)
	p.block = make(chan struct{}) // writes hang until the grace ends
	tr := runRunner(t, broker, p, func(c *RunnerConfig) { c.ShutdownGrace = 300 * time.Millisecond })
	for p.calls.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	tr.cancel()
	select {
	case err := <-tr.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		tr.done <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after the shutdown grace")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("returned after %v, before the grace", d)
	}
	if c, _ := kafkatest.Committed(broker, "g-"+t.Name(), rawTopic, partitions); kafkatest.SumCommitted(c) > 0 {
		t.Fatalf("committed %v although no write was acknowledged", c)
	}
}

func TestRunnerConfigValidate(t *testing.T) {
	ok := func() RunnerConfig {
		return RunnerConfig{Brokers: []string{"b"}, Topics: []string{"t"}, GroupID: "g", DeadLetterTopic: "d",
			NewProcessor: func() BatchProcessor { return nil }, Producer: &faultyProducer{}}
	}
	for _, tc := range []struct {
		name  string
		tweak func(*RunnerConfig)
		want  string
	}{
		{"defaults are valid", func(*RunnerConfig) {}, ""},
		{"no brokers", func(c *RunnerConfig) { c.Brokers = nil }, "brokers"},
		{"no dead-letter topic", func(c *RunnerConfig) { c.DeadLetterTopic = "" }, "dead-letter"},
		{"negative interval", func(c *RunnerConfig) { c.CommitInterval = -time.Second }, "commit interval"},
		{"backoff inverted", func(c *RunnerConfig) { c.Backoff = retry.Backoff{Min: time.Second, Max: time.Millisecond} }, "backoff maximum"},
		{"bad start offset", func(c *RunnerConfig) { c.StartOffset = 5 }, "start offset"},
		{"tiny write limit", func(c *RunnerConfig) { c.MaxWriteBytes = 100 }, "max write bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.tweak(&c)
			_, err := NewRunner(c)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
	c := ok()
	c.ApplyDefaults()
	if c.CommitInterval != DefaultCommitInterval || c.BatchSize != DefaultBatchSize || c.Backoff.Max != retry.DefaultMax || c.MaxWriteBytes != DefaultMaxWriteBytes {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// closingFence closes once, after the first produce call failed: the
// write's retry must stop, end and begin again (held, then checked)
// rather than produce while closed.
type closingFence struct {
	mu             sync.Mutex
	begins, closes int
	closed         bool
	failedOnce     *atomic.Bool
}

func (f *closingFence) Begin(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begins++
	f.closed = false // the member rejoined: open again
	return uint64(f.begins), nil
}
func (f *closingFence) Check(uint64) {}
func (f *closingFence) End(uint64)   {}
func (f *closingFence) Open() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failedOnce.Load() && f.closes == 0 {
		f.closes++
		f.closed = true
	}
	return !f.closed
}
func (f *closingFence) isClosed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }

func TestRunnerRechecksTheFenceBetweenRetries(t *testing.T) {
	broker := startBroker(t)
	in := events(30, "ev")
	produceRaw(t, broker, in...)
	var failed atomic.Bool
	fence := &closingFence{failedOnce: &failed}
	var whileClosed atomic.Int64
	p := newFaulty(broker, nil)
	p.whole = func([]kafka.Message) error {
		if fence.isClosed() {
			whileClosed.Add(1)
		}
		if failed.CompareAndSwap(false, true) {
			return kafka.NotLeaderForPartition // the first call fails: retried
		}
		return nil
	}
	var decided atomic.Int64
	runRunner(t, broker, p, func(c *RunnerConfig) {
		c.Fence = fence
		c.NewProcessor = func() BatchProcessor { return copyProc{calls: &decided} }
	})
	waitCommitted(t, broker, "g-"+t.Name(), int64(len(in)))
	if n := whileClosed.Load(); n != 0 {
		t.Fatalf("%d produce calls while the fence was closed", n)
	}
	fence.mu.Lock()
	closes, begins := fence.closes, fence.begins
	fence.mu.Unlock()
	if closes != 1 || begins < 2 {
		t.Fatalf("fence closed %d times, writes begun %d times: the retry was not stopped and begun again", closes, begins)
	}
	clean := values(readAll(t, broker, cleanTopic))
	for _, v := range in {
		if clean[v] < 1 {
			t.Fatalf("%s never written", v)
		}
	}
}

// stageRecorder records StageHook calls.
type stageRecorder struct {
	mu     sync.Mutex
	stages map[string][]time.Duration
}

func (s *stageRecorder) OnStage(stage string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stages == nil {
		s.stages = map[string][]time.Duration{}
	}
	s.stages[stage] = append(s.stages[stage], d)
}

// TestRunnerAdaptiveLinger: with a batch_linger far longer than the test,
// a batch never waits for it while its partition's writer is idle, and
// batches fill while the writer is busy, going as soon as it is done.
// Every stage of every batch is reported.
func TestRunnerAdaptiveLinger(t *testing.T) {
	broker := startBroker(t)
	fp := newFaulty(broker, nil)
	fp.block = make(chan struct{})
	st := &stageRecorder{}
	tr := runRunner(t, broker, fp, func(c *RunnerConfig) {
		c.BatchLinger = 10 * time.Minute
		c.BatchSize = 1000
		c.Hooks = append(c.Hooks, st)
	})
	// The writer is idle: one message per partition goes alone, now.
	produceRaw(t, broker, "first-0", "first-1")
	deadline := time.Now().Add(20 * time.Second)
	for fp.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes began; want one per partition without waiting for batch_linger", fp.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The writers are held: what arrives now waits, in one batch per
	// partition, until they are done.
	in := events(40, "later")
	produceRaw(t, broker, in...)
	time.Sleep(500 * time.Millisecond)
	if n := tr.calls.Load(); n != 2 {
		t.Fatalf("%d batches decided while the writers were busy; want the 2 first ones and the rest filling", n)
	}
	close(fp.block)
	waitCommitted(t, broker, "g-"+t.Name(), 42)
	if n := tr.calls.Load(); n > 6 {
		t.Fatalf("%d batches for 42 messages on 2 partitions; the busy writers should have let them fill", n)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range []string{StageFill, StageQueue, StageWrite, StageAge} {
		if len(st.stages[s]) < 4 {
			t.Errorf("stage %s reported %d times, want one per batch", s, len(st.stages[s]))
		}
		for _, d := range st.stages[s] {
			if d < 0 || d > time.Minute {
				t.Errorf("stage %s: %s", s, d)
			}
		}
	}
}
