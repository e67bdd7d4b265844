// Package enginetest is the engine's contract, as one suite that any
// BatchProcessor run by the engine must pass (in the manner of
// watermill's pubsub/tests and consent/storetest). It runs
// pipeline.Runner against an in-process Kafka-protocol broker with a
// producer that injects faults, and checks:
//
//   - at-least-once: every raw event ends written or dead-lettered, also
//     across a restart of the instance (duplicates allowed, no loss);
//   - order per partition: the clean messages of one raw partition reach
//     each clean partition in raw order;
//   - a committed offset never passes a raw event whose writes are not
//     all acknowledged;
//   - revalidation: a batch that went stale is decided again before it is
//     written, and nothing decided before is written;
//   - refusals: a clean message Kafka refuses for good is replaced by the
//     dead letter of its raw event, and counted so.
//
// Tests only: it imports package testing.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/wire"
)

// Topics of the suite's broker.
const (
	Raw        = "raw"
	DeadLetter = "dlq"
	partitions = 2
)

// Setup is what the suite needs from a processor under test.
type Setup struct {
	// CleanTopics are the topics the processor writes clean messages to;
	// the suite creates them.
	CleanTopics []string
	// NewProcessor returns the factory of the processors under test,
	// writing dead letters to DeadLetter.
	NewProcessor func(t *testing.T) func() pipeline.BatchProcessor
	// Event returns the raw value of the i-th event, one the processor
	// writes at least one clean message for (with the wire contract's
	// source header).
	Event func(i int) []byte
	// Poison returns the raw value of an event the processor dead-letters.
	Poison func(i int) []byte
}

// Run runs the contract as parallel subtests of t, each on a broker of
// its own.
func Run(t *testing.T, s Setup) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Setup)
	}{
		{"AtLeastOnceInOrderUnderFaults", atLeastOnceInOrder},
		{"RestartLosesNothing", restartLosesNothing},
		{"StaleBatchesDecidedAgainBeforeWrite", staleDecidedAgain},
		{"RefusalsDeadLettered", refusalsDeadLettered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s)
		})
	}
}

// env is one subtest's broker, raw events and bookkeeping.
type env struct {
	t      *testing.T
	s      Setup
	broker string
	group  string
	// raw holds the produced raw events: partition -> offset -> poison?
	raw map[int]map[int64]bool
	// acks counts, per raw event, its acknowledged writes, and pending its
	// writes that failed and were not acknowledged since.
	mu      sync.Mutex
	acked   map[key]int
	pending map[key]map[string]bool
	// violations found while the engine ran (commits past unacked writes).
	violations []string
}

type key struct {
	partition int
	offset    int64
}

func newEnv(t *testing.T, s Setup, events, poison int) *env {
	t.Helper()
	topics := append([]string{Raw, DeadLetter}, s.CleanTopics...)
	e := &env{t: t, s: s, broker: kafkatest.Fake(t, partitions, topics...), group: "g-" + t.Name(),
		raw: map[int]map[int64]bool{}, acked: map[key]int{}, pending: map[key]map[string]bool{}}
	w := &kafka.Writer{Addr: kafka.TCP(e.broker), Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for i := range events + poison {
		v := s.Event(i)
		if i >= events {
			v = s.Poison(i - events)
		}
		msgs = append(msgs, kafka.Message{Topic: Raw, Key: []byte(strconv.Itoa(i)), Value: v})
	}
	rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	for p, o := range offsets(t, e.broker, Raw) {
		e.raw[p] = map[int64]bool{}
		for off := o[0]; off < o[1]; off++ {
			e.raw[p][off] = false
		}
	}
	return e
}

func offsets(t *testing.T, broker, topic string) map[int][2]int64 {
	t.Helper()
	o, err := kafkatest.Offsets(broker, topic)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *env) total() int {
	n := 0
	for _, p := range e.raw {
		n += len(p)
	}
	return n
}

// sourceOf returns the raw coordinates a clean message or dead letter
// names.
func sourceOf(m *kafka.Message) (key, bool) {
	if v := wire.Header(m, wire.HeaderSource); v != nil {
		_, p, off, err := wire.ParseSource(string(v))
		return key{p, off}, err == nil
	}
	p, err1 := strconv.Atoi(string(wire.Header(m, wire.HeaderSourcePart)))
	off, err2 := strconv.ParseInt(string(wire.Header(m, wire.HeaderSourceOffset)), 10, 64)
	return key{p, off}, err1 == nil && err2 == nil && wire.IsDeadLetter(m)
}

func identity(m *kafka.Message) string {
	return m.Topic + "|" + string(wire.Header(m, wire.HeaderOutput)) + "|" + string(wire.Header(m, wire.HeaderSource))
}

// producer writes through a real writer, injecting faults: fault returns
// the error for one message on its n-th attempt (nil: write it). It
// records what was acknowledged.
type producer struct {
	e     *env
	w     *kafka.Writer
	fault func(m *kafka.Message, attempt int) error
	// partFault, if set, fails every message of one call bound for a
	// partition, as a broker fails a partition's batch as a whole.
	partFault func(call, partition int) error
	calls     int
	check     func(m *kafka.Message) // called for each message about to be written
	mu        sync.Mutex
	tries     map[string]int
}

func (e *env) producer(fault func(*kafka.Message, int) error) *producer {
	return &producer{e: e, fault: fault, tries: map[string]int{},
		w: &kafka.Writer{Addr: kafka.TCP(e.broker), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireOne}}
}

// partitionOf is the partition the writer's balancer (kafka.Hash) picks.
func partitionOf(m *kafka.Message) int {
	return (&kafka.Hash{}).Balance(*m, 0, 1)
}

func (p *producer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	werrs := make(kafka.WriteErrors, len(msgs))
	var ok []kafka.Message
	var okIdx []int
	p.mu.Lock()
	p.calls++
	for i := range msgs {
		if p.check != nil {
			p.check(&msgs[i])
		}
		id := identity(&msgs[i])
		p.tries[id]++
		if p.partFault != nil {
			if err := p.partFault(p.calls, partitionOf(&msgs[i])); err != nil {
				werrs[i] = err
				continue
			}
		}
		if p.fault != nil {
			if err := p.fault(&msgs[i], p.tries[id]); err != nil {
				werrs[i] = err
				continue
			}
		}
		ok = append(ok, msgs[i])
		okIdx = append(okIdx, i)
	}
	p.mu.Unlock()
	if len(ok) > 0 {
		if err := p.w.WriteMessages(ctx, ok...); err != nil {
			var we kafka.WriteErrors
			if !errors.As(err, &we) {
				for _, i := range okIdx {
					werrs[i] = err
				}
			} else {
				for k, i := range okIdx {
					werrs[i] = we[k]
				}
			}
		}
	}
	failed := false
	p.e.mu.Lock()
	for i := range msgs {
		src, ok := sourceOf(&msgs[i])
		if !ok {
			continue
		}
		id := identity(&msgs[i])
		if werrs[i] != nil {
			failed = true
			if p.e.pending[src] == nil {
				p.e.pending[src] = map[string]bool{}
			}
			p.e.pending[src][id] = true
			continue
		}
		p.e.acked[src]++
		delete(p.e.pending[src], id)
		if wire.IsDeadLetter(&msgs[i]) {
			delete(p.e.pending, src) // the dead letter stands for every output
		}
	}
	p.e.mu.Unlock()
	if failed {
		return werrs
	}
	return nil
}

// OnCommit implements pipeline.CommitHook: a committed offset must not
// pass a raw event whose writes are not all acknowledged.
func (e *env) OnCommit(err error, commits []pipeline.PartitionLag) {
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range commits {
		for off := range e.raw[c.Partition] {
			k := key{c.Partition, off}
			if off < c.Offset && (e.acked[k] == 0 || len(e.pending[k]) > 0) {
				e.violations = append(e.violations, fmt.Sprintf("offset %d of partition %d committed before %d/%d was acknowledged", c.Offset, c.Partition, c.Partition, off))
			}
		}
	}
}

type run struct {
	stats  *pipeline.Stats
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(p pipeline.Producer, newProc func() pipeline.BatchProcessor) *run {
	e.t.Helper()
	r := &run{stats: &pipeline.Stats{}, done: make(chan error, 1)}
	runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Brokers: []string{e.broker}, Topics: []string{Raw}, GroupID: e.group,
		SessionTimeout: 6 * time.Second, BatchSize: 20, CommitInterval: 20 * time.Millisecond,
		Backoff:         retry.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond},
		ShutdownGrace:   2 * time.Second,
		DeadLetterTopic: DeadLetter, Producer: p, Hooks: hooks.List{r.stats, e},
		NewProcessor: newProc,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- runner.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *run) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		r.done <- nil // a second stop returns at once
	case <-time.After(20 * time.Second):
		t.Error("the runner did not stop")
	}
}

// runToEnd runs the engine until every raw event is committed, stops it,
// reads its outputs back and checks that nothing was lost.
func (e *env) runToEnd(p pipeline.Producer, newProc func() pipeline.BatchProcessor) (r *run, clean, dead map[key][]kafka.Message) {
	e.t.Helper()
	r = e.start(p, newProc)
	e.waitCommitted()
	r.stop(e.t)
	clean, dead = e.outputs()
	e.checkNoLoss(clean, dead)
	return r, clean, dead
}

// waitCommitted waits until every raw event is committed.
func (e *env) waitCommitted() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := kafkatest.Committed(e.broker, e.group, Raw, partitions)
		if err == nil && kafkatest.SumCommitted(c) >= int64(e.total()) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("committed %v (err %v), want %d in all", c, err, e.total())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outputs reads every clean message and dead letter back, by raw event.
func (e *env) outputs() (clean map[key][]kafka.Message, dead map[key][]kafka.Message) {
	clean, dead = map[key][]kafka.Message{}, map[key][]kafka.Message{}
	for _, topic := range append([]string{DeadLetter}, e.s.CleanTopics...) {
		for _, m := range kafkatest.ReadAll(e.t, e.broker, topic) {
			src, ok := sourceOf(&m)
			if !ok {
				e.t.Fatalf("a message on %s names no raw event", topic)
			}
			if topic == DeadLetter {
				dead[src] = append(dead[src], m)
			} else {
				clean[src] = append(clean[src], m)
			}
		}
	}
	return clean, dead
}

// checkNoLoss: every raw event is written or dead-lettered, and nothing
// names an event that was not produced.
func (e *env) checkNoLoss(clean, dead map[key][]kafka.Message) {
	e.t.Helper()
	for p, offs := range e.raw {
		for off := range offs {
			k := key{p, off}
			if len(clean[k]) == 0 && len(dead[k]) == 0 {
				e.t.Errorf("raw event %d/%d was neither written nor dead-lettered", p, off)
			}
		}
	}
	for k := range clean {
		if _, ok := e.raw[k.partition][k.offset]; !ok {
			e.t.Errorf("a clean message names %d/%d, which was never produced", k.partition, k.offset)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.violations {
		e.t.Error(v)
	}
}

func atLeastOnceInOrder(t *testing.T, s Setup) {
	e := newEnv(t, s, 300, 10)
	// Every third produce call fails one partition's messages with a
	// retriable error, as a leader moving does.
	p := e.producer(nil)
	p.partFault = func(call, partition int) error {
		if call%3 == 0 && partition == (call/3)%partitions {
			return kafka.NotLeaderForPartition
		}
		return nil
	}
	r, _, dead := e.runToEnd(p, s.NewProcessor(t))
	poisoned := 0
	for _, d := range dead {
		poisoned += len(d)
	}
	if poisoned < 10 {
		t.Errorf("%d dead letters, want the 10 poison events", poisoned)
	}
	// Order: per clean topic partition, the first copies of the messages
	// of one raw partition come in raw order (a copy written again by a
	// retry is a duplicate, which at-least-once allows).
	for _, topic := range s.CleanTopics {
		for cp := range offsets(t, e.broker, topic) {
			last := map[int]int64{}
			seen := map[key]bool{}
			for _, m := range readPartition(t, e.broker, topic, cp) {
				src, _ := sourceOf(&m)
				if seen[src] {
					continue
				}
				seen[src] = true
				if prev, ok := last[src.partition]; ok && src.offset <= prev {
					t.Fatalf("%s/%d: raw %d/%d after %d/%d: out of order", topic, cp, src.partition, src.offset, src.partition, prev)
				}
				last[src.partition] = src.offset
			}
		}
	}
	st := r.stats.Snapshot()
	if pipeline.Total(st.Consumed) != e.total() {
		t.Errorf("accounted %d consumed, produced %d", pipeline.Total(st.Consumed), e.total())
	}
}

func readPartition(t *testing.T, broker, topic string, partition int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for _, m := range kafkatest.ReadAll(t, broker, topic) {
		if m.Partition == partition {
			out = append(out, m)
		}
	}
	return out
}

func restartLosesNothing(t *testing.T, s Setup) {
	e := newEnv(t, s, 400, 0)
	newProc := s.NewProcessor(t)
	// The first instance stops after some writes, with slow writes in
	// flight; the second takes over from the last commit.
	var writes atomic.Int64
	slow := e.producer(func(*kafka.Message, int) error {
		if writes.Add(1)%7 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	first := e.start(slow, newProc)
	deadline := time.Now().Add(20 * time.Second)
	for writes.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	first.stop(t)
	second := e.start(e.producer(nil), newProc)
	e.waitCommitted()
	second.stop(t)
	clean, dead := e.outputs()
	e.checkNoLoss(clean, dead)
}

// staleProc marks every result it returns with a decision number (a
// header) and reports the first decision of every batch stale: the engine
// must decide the batch again, and never write a message of a decision
// reported stale. The engine decides and re-checks in two processors, so
// the bookkeeping is shared.
type staleProc struct {
	inner  pipeline.BatchProcessor
	shared *staleBook
}

type staleBook struct {
	next    atomic.Int64
	mu      sync.Mutex
	stale   map[string]bool // decision -> reported stale
	batches map[string]bool // batch (first raw message) -> reported once
	batch   map[*pipeline.Result]string
	id      map[*pipeline.Result]string
}

const headerDecision = "enginetest-decision"

func (s staleProc) Process(ctx context.Context, msgs []kafka.Message) (*pipeline.Result, error) {
	res, err := s.inner.Process(ctx, msgs)
	if err != nil {
		return nil, err
	}
	b := s.shared
	id := strconv.FormatInt(b.next.Add(1), 10)
	out := *res
	out.Out = make([]kafka.Message, len(res.Out))
	for i, m := range res.Out {
		m.Headers = append(append([]kafka.Header(nil), m.Headers...), kafka.Header{Key: headerDecision, Value: []byte(id)})
		out.Out[i] = m
	}
	b.mu.Lock()
	b.id[&out] = id
	b.batch[&out] = fmt.Sprintf("%d/%d", msgs[0].Partition, msgs[0].Offset)
	b.mu.Unlock()
	return &out, nil
}

func (s staleProc) Stale(res *pipeline.Result) bool {
	b := s.shared
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := b.batch[res]
	if b.batches[batch] {
		return false
	}
	b.batches[batch] = true
	b.stale[b.id[res]] = true
	return true
}

func staleDecidedAgain(t *testing.T, s Setup) {
	e := newEnv(t, s, 100, 0)
	inner := s.NewProcessor(t)
	book := &staleBook{stale: map[string]bool{}, batches: map[string]bool{}, batch: map[*pipeline.Result]string{}, id: map[*pipeline.Result]string{}}
	var badWrites, writes atomic.Int64
	p := e.producer(nil)
	p.check = func(m *kafka.Message) {
		writes.Add(1)
		id := string(wire.Header(m, headerDecision))
		book.mu.Lock()
		defer book.mu.Unlock()
		if book.stale[id] {
			badWrites.Add(1)
		}
	}
	r := e.start(p, func() pipeline.BatchProcessor { return staleProc{inner: inner(), shared: book} })
	e.waitCommitted()
	r.stop(t)
	if n := badWrites.Load(); n > 0 {
		t.Fatalf("%d of %d messages written came from decisions reported stale", n, writes.Load())
	}
	book.mu.Lock()
	asked := len(book.batches)
	book.mu.Unlock()
	if asked == 0 {
		t.Fatal("no batch was checked for staleness: revalidation never ran")
	}
	clean, dead := e.outputs()
	e.checkNoLoss(clean, dead)
}

func refusalsDeadLettered(t *testing.T, s Setup) {
	e := newEnv(t, s, 60, 0)
	var refused sync.Map // raw event -> true
	p := e.producer(func(m *kafka.Message, _ int) error {
		src, ok := sourceOf(m)
		if ok && !wire.IsDeadLetter(m) && src.offset == 3 {
			refused.Store(src, true)
			return kafka.MessageSizeTooLarge
		}
		return nil
	})
	r, clean, dead := e.runToEnd(p, s.NewProcessor(t))
	n := 0
	refused.Range(func(k, _ any) bool {
		n++
		src := k.(key)
		if len(clean[src]) != 0 {
			t.Errorf("raw %d/%d: a clean message was written although Kafka refused it", src.partition, src.offset)
		}
		if len(dead[src]) != 1 || string(wire.Header(&dead[src][0], wire.HeaderDLQReason)) != pipeline.ReasonWriteRefused {
			t.Errorf("raw %d/%d: dead letters %d, want one with reason %s", src.partition, src.offset, len(dead[src]), pipeline.ReasonWriteRefused)
		}
		return true
	})
	if n == 0 {
		t.Fatal("nothing was refused: the fault never fired")
	}
	if got := r.stats.Snapshot().Dead[pipeline.ReasonWriteRefused]; got != n {
		t.Errorf("accounting: %d dead-lettered as %s, want %d", got, pipeline.ReasonWriteRefused, n)
	}
}
