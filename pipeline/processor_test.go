package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/policy"
)

// mapStore is an in-memory consent.Store that counts calls and can fail.
type mapStore struct {
	recs  map[string]consent.Record
	calls atomic.Int64
	fail  atomic.Int64 // fail this many calls
}

func (s *mapStore) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	s.calls.Add(1)
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		return nil, errors.New("store down")
	}
	out := make(map[string]consent.Record, len(subjects))
	for _, sub := range subjects {
		out[sub] = s.recs[sub]
	}
	return out, nil
}

func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load("../configs/policy.yaml", keys)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func synthBatch(n int) ([]kafka.Message, *mapStore) {
	g := synth.New(3, 500)
	st := &mapStore{recs: map[string]consent.Record{}}
	for i := 0; i < 500; i++ {
		if p, ok := g.Consent(i); ok {
			r := consent.Record{Found: true, Version: int64(i), Granted: p}
			st.recs[synth.UserID(i)] = r
			st.recs[synth.AnonID(i)] = r
		}
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v, _ := g.Event()
		msgs[i] = kafka.Message{Topic: "raw", Partition: 0, Offset: int64(i), Value: v}
	}
	return msgs, st
}

func newTestProcessor(t testing.TB, st consent.Store) *Processor {
	t.Helper()
	p, err := NewProcessor(ProcessorConfig{Policy: testPolicy(t), Store: st, DeadLetterTopic: "dlq", MaxMessageBytes: 4096,
		Backoff: retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProcessAccountsForEveryMessage(t *testing.T) {
	msgs, st := synthBatch(500)
	for _, b := range synth.BadEvents {
		msgs = append(msgs, kafka.Message{Topic: "raw", Value: b.Value})
	}
	p := newTestProcessor(t, st)
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounting
	if a.Consumed["raw"] != len(msgs) {
		t.Fatalf("consumed %d of %d", a.Consumed["raw"], len(msgs))
	}
	// Every message is in exactly one state: written somewhere, dropped, or dead.
	written := 0
	for _, m := range res.Out {
		if m.Topic != "dlq" {
			written++
		}
	}
	dropped, dead := 0, 0
	for _, n := range a.Dropped {
		dropped += n
	}
	for _, n := range a.Dead {
		dead += n
	}
	if dead != len(res.Out)-written {
		t.Fatalf("dead-letter count %d, messages to dlq %d", dead, len(res.Out)-written)
	}
	withOutput := len(msgs) - dropped - dead
	if withOutput <= 0 || withOutput > written {
		t.Fatalf("%d messages with an output, %d clean writes", withOutput, written)
	}
	for _, b := range synth.BadEvents {
		if b.Reason == policy.ReasonNoSubject {
			if a.Dropped[b.Reason] == 0 {
				t.Errorf("no drop counted for %s", b.Reason)
			}
		} else if a.Dead[b.Reason] == 0 && b.Reason != policy.ReasonInvalidIP && b.Reason != policy.ReasonDuplicateKey {
			// invalid_ip and duplicate_key depend on the subject's consent.
			t.Errorf("no dead letter counted for %s", b.Reason)
		}
	}
	if st.calls.Load() != 1 {
		t.Fatalf("%d store round trips for one batch, want 1", st.calls.Load())
	}
}

func TestProcessFailsClosedWhileStoreIsDown(t *testing.T) {
	msgs, st := synthBatch(50)
	st.fail.Store(3)
	h := &hooks.Readiness{}
	p := newTestProcessor(t, st)
	p.cfg.Hooks = hooks.List{h}
	core, logs := observer.New(zapcore.InfoLevel)
	p.storeLoop = outage.New("Redis", "redis.addr", zap.New(core), outage.Config{}).Loop("consent lookups", "")
	res, err := p.Process(context.Background(), msgs)
	if err != nil || len(res.Out) == 0 {
		t.Fatalf("after the store recovered: %v", err)
	}
	if st.calls.Load() != 4 {
		t.Fatalf("store called %d times, want 4 (3 failures, 1 success)", st.calls.Load())
	}
	// Three failures are one warning, and the recovery one line.
	if e := logs.All(); len(e) != 2 || e[0].Message != "Redis unavailable" || e[1].Message != "Redis back" {
		t.Fatalf("logged %v, want one warning and one recovery line", e)
	}
	if ok, _ := h.Ready(); !ok {
		t.Fatal("not ready after recovery")
	}

	st.fail.Store(1 << 30)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err = p.Process(ctx, msgs)
	if err == nil || res != nil {
		t.Fatalf("store down: Process returned %v, %v; want nothing and an error", res, err)
	}
	if ok, why := h.Ready(); ok || len(why) == 0 {
		t.Fatal("ready while the store is down")
	}
}

func BenchmarkProcessBatch(b *testing.B) {
	msgs, st := synthBatch(1000)
	benchProcess(b, newTestProcessor(b, st), msgs)
}

// BenchmarkProcessBatchShadow is BenchmarkProcessBatch with the shipped
// policy also decided as a shadow policy on every event: what a
// shadow_policy costs (shadow.every divides it).
func BenchmarkProcessBatchShadow(b *testing.B) {
	msgs, st := synthBatch(1000)
	p := newTestProcessor(b, st)
	p.shadow = &policy.Decider{Policy: testPolicy(b)}
	benchProcess(b, p, msgs)
}

func benchProcess(b *testing.B, p *Processor, msgs []kafka.Message) {
	size := 0
	for _, m := range msgs {
		size += len(m.Value)
	}
	b.SetBytes(int64(size)) // per batch
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Process(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
}

// linkRecorder records links and answers refused_cap for the ids in cap.
type linkRecorder struct {
	links []map[string]string
	cap   map[string]bool
}

func (l *linkRecorder) LinkEvents(_ context.Context, links map[string]string) (map[string]string, error) {
	l.links = append(l.links, links)
	out := map[string]string{}
	for a := range links {
		out[a] = "linked"
		if l.cap[a] {
			out[a] = "refused_cap"
		}
	}
	return out, nil
}

// TestProcessDeadLettersLinksOverTheCap: an identify event whose link the
// store refuses for the user's cap is dead-lettered (too_many_linked_ids);
// the other events of the batch are decided.
func TestProcessDeadLettersLinksOverTheCap(t *testing.T) {
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	st := &mapStore{recs: map[string]consent.Record{"user-9": {Found: true, Version: 1, Granted: all}}}
	p := newTestProcessor(t, consent.Linked{Store: st})
	p.cfg.Linker = &linkRecorder{cap: map[string]bool{"anon-x": true}}
	msgs := []kafka.Message{
		{Topic: "raw", Value: []byte(`{"type":"identify","userId":"user-9","anonymousId":"anon-x"}`)},
		{Topic: "raw", Value: []byte(`{"type":"identify","userId":"user-9","anonymousId":"anon-y"}`)},
	}
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accounting.Dead[ReasonTooManyLinkedIDs] != 1 {
		t.Fatalf("dead letters %v, want one %s", res.Accounting.Dead, ReasonTooManyLinkedIDs)
	}
	for k, m := range res.Out {
		if m.Topic == "dlq" && res.Origin[k] != 0 {
			t.Fatalf("dead-lettered message %d, want the one over the cap", res.Origin[k])
		}
	}
}

func TestProcessIdentityLinks(t *testing.T) {
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	st := &mapStore{recs: map[string]consent.Record{
		"anon-1": {Found: true, Version: 1, Granted: all, LinkedTo: "user-1"},
		"user-1": {Found: true, Version: 2, Granted: map[string]bool{"personalization": true}},
		"anon-2": {Found: true, Version: 1, Granted: all},
	}}
	lr := &linkRecorder{}
	p := newTestProcessor(t, consent.Linked{Store: st})
	p.cfg.Linker = lr
	msgs := []kafka.Message{
		{Topic: "raw", Value: []byte(`{"type":"identify","userId":"user-2","anonymousId":"anon-2"}`)},
		{Topic: "raw", Value: []byte(`{"type":"alias","userId":"user-3","previousId":"anon-3"}`)},
		{Topic: "raw", Value: []byte(`{"type":"track","event":"Order Completed","anonymousId":"anon-1"}`)},
	}
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.links) != 1 || lr.links[0]["anon-2"] != "user-2" || lr.links[0]["anon-3"] != "user-3" || len(lr.links[0]) != 2 {
		t.Fatalf("links written: %v", lr.links)
	}
	// anon-1 is linked to user-1, who granted only personalization.
	written := map[string]int{}
	for _, m := range res.Out {
		written[m.Topic]++
	}
	if written["clean.personalization"] != 1 || written["clean.analytics"] != 0 || written["clean.advertising"] != 0 {
		t.Fatalf("anonymous event linked to a stricter user went to %v", written)
	}
	// The identify and alias events have no consent record (denied), the
	// linked anonymous event is denied analytics by its user's record.
	if res.Accounting.Decisions[Decision{"analytics", "skip", "consent_denied:analytics"}] != 3 ||
		res.Accounting.Decisions[Decision{"personalization", "write", ""}] != 1 {
		t.Fatalf("decisions: %v", res.Accounting.Decisions)
	}
}

type fakeChanges struct {
	seq     uint64
	changed map[string]uint64
}

func (f *fakeChanges) Seq() uint64 { return f.seq }
func (f *fakeChanges) ChangedSince(seq uint64, subjects []string) bool {
	for _, s := range subjects {
		if f.changed[s] > seq {
			return true
		}
	}
	return false
}

func TestProcessStaleAfterConsentChange(t *testing.T) {
	st := &mapStore{recs: map[string]consent.Record{
		"anon-1": {Found: true, Version: 1, Granted: map[string]bool{"personalization": true}, LinkedTo: "user-1"},
		"user-1": {Found: true, Version: 1, Granted: map[string]bool{"personalization": true}},
		"u2":     {Found: true, Version: 1, Granted: map[string]bool{"personalization": true}},
	}}
	ch := &fakeChanges{seq: 5, changed: map[string]uint64{}}
	p := newTestProcessor(t, st)
	p.cfg.Changes = ch
	res, err := p.Process(context.Background(), []kafka.Message{
		{Topic: "raw", Value: []byte(`{"type":"track","anonymousId":"anon-1"}`)},
		{Topic: "raw", Value: []byte(`{"type":"track","userId":"u2"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stale(res) {
		t.Fatal("stale without a change")
	}
	ch.changed["somebody-else"] = 6
	if p.Stale(res) {
		t.Fatal("a change to another subject made the batch stale")
	}
	ch.changed["user-1"] = 6 // the linked user of anon-1 changed
	if !p.Stale(res) {
		t.Fatal("a change to a linked user did not make the batch stale")
	}
	ch.changed = map[string]uint64{"u2": 5} // changed before the decision
	if p.Stale(res) {
		t.Fatal("a change before the decision made the batch stale")
	}
}

// announcingLinker links every id and announces each link to cache later,
// as Redis pub/sub does: after LinkEvents has returned.
type announcingLinker struct {
	cache *consent.Cache
	delay time.Duration
}

func (l announcingLinker) LinkEvents(_ context.Context, links map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for anon := range links {
		out[anon] = "linked"
		time.AfterFunc(l.delay, func() { l.cache.Invalidate(anon) })
	}
	return out, nil
}

// TestProcessHearsItsOwnLinks: a batch that links anonymous ids is not
// made stale by the announcements of its own links (it would be decided
// twice); a change heard after it was decided still makes it stale.
func TestProcessHearsItsOwnLinks(t *testing.T) {
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	st := &mapStore{recs: map[string]consent.Record{"user-9": {Found: true, Version: 1, Granted: all}, "anon-x": {Found: true, Version: 1, Granted: all}}}
	cache := consent.NewCache(st, consent.CacheConfig{Size: 100, TTL: time.Minute}, nil)
	p := newTestProcessor(t, consent.Linked{Store: cache})
	p.cfg.Changes = cache
	p.cfg.Linker = announcingLinker{cache: cache, delay: 20 * time.Millisecond}
	msgs := []kafka.Message{
		{Topic: "raw", Value: []byte(`{"type":"identify","userId":"user-9","anonymousId":"anon-x"}`)},
		{Topic: "raw", Value: []byte(`{"type":"track","event":"Order Completed","anonymousId":"anon-x"}`)},
	}
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // every announcement is in
	if p.Stale(res) {
		t.Fatal("the batch is stale by its own links' announcements")
	}
	cache.Invalidate("anon-x") // a change of its own, after the decision
	if !p.Stale(res) {
		t.Fatal("a change heard after the decision does not make the batch stale")
	}
}

// hookStore fails while fail is positive, running during each failed
// lookup what another partition's worker does meanwhile.
type hookStore struct {
	*mapStore
	meanwhile func()
}

func (s *hookStore) Lookup(ctx context.Context, subjects []string) (map[string]consent.Record, error) {
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		s.meanwhile()
		return nil, errors.New("store down")
	}
	return s.mapStore.Lookup(ctx, subjects)
}

// TestPartitionFailingWhileOthersSucceed: the processors of one factory
// report as members of one loop, so that one partition's failing lookups
// are one outage while another partition's succeed: the system stays down
// until the failing partition's lookups succeed, with one warning and one
// recovery line.
func TestPartitionFailingWhileOthersSucceed(t *testing.T) {
	msgs, ms := synthBatch(50)
	core, logs := observer.New(zapcore.InfoLevel)
	tr := outage.New("Redis", "redis.addr", zap.New(core), outage.Config{})
	st := &hookStore{mapStore: ms}
	newProc, err := NewProcessorFactory(ProcessorConfig{Policy: testPolicy(t), Store: st, DeadLetterTopic: "dlq", MaxMessageBytes: 4096,
		StoreOutage: tr, Backoff: retry.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	failing, healthy := newProc(), newProc()
	lookups := 0
	st.meanwhile = func() {
		lookups++
		if lookups == 1 {
			return // the failing partition has not reported yet
		}
		fail := st.fail.Swap(0) // the other partition's lookups succeed
		if _, err := healthy.Process(context.Background(), msgs); err != nil {
			t.Errorf("healthy partition: %v", err)
		}
		st.fail.Store(fail)
		if down, _ := tr.Down(); !down {
			t.Errorf("after lookup %d: up while a partition's lookups fail", lookups)
		}
	}
	st.fail.Store(10)
	if _, err := failing.Process(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if down, _ := tr.Down(); down {
		t.Fatal("down after every partition's lookups succeeded")
	}
	if e := logs.All(); len(e) != 2 || e[0].Message != "Redis unavailable" || e[1].Message != "Redis back" {
		t.Fatalf("logged %d lines (%v), want one warning and one recovery line", len(e), e)
	}
}
