package app

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/bench/revocation"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/testing/itest"
)

// flow produces fullConsentEvents for subjects "<prefix>-0".."-49" until
// the returned stop is called.
func flow(t *testing.T, broker, topic, prefix string) (stop func()) {
	t.Helper()
	return flowEvents(t, broker, topic, func(i int) []kafka.Message { return fullConsentEvents(prefix, i, 100) })
}

// flowEvents produces events(i) for i = 0, 100, 200, ... every 20 ms until
// the returned stop is called.
func flowEvents(t *testing.T, broker, topic string, events func(i int) []kafka.Message) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 100 {
			itest.Produce(t, broker, topic, events(i)...)
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// exactness reads every clean topic of s with kcat (broker append times)
// and checks the changes that returned at the given times: nothing of a
// changed key appended after its call returned, and a retraction as its
// last record in every partition.
func (s *stack) exactness(t *testing.T, returned map[string]time.Time, what string) revocation.Exactness {
	t.Helper()
	var out []byte
	for _, topic := range []string{s.perso, s.ana, s.adv} {
		b, err := exec.Command("kcat", "-C", "-b", s.env.Kafka, "-t", topic, "-e", "-q", "-f", revocation.KcatBarrierFormat).CombinedOutput()
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, b)
		}
		out = append(out, b...)
	}
	e, err := revocation.Exact(out, returned)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.NoRecords) > 0 {
		t.Errorf("%s: keys with no clean record before the change (vacuous): %v", what, e.NoRecords)
	}
	for key, n := range e.After {
		t.Errorf("%s: %s: %d clean records appended after the call returned (last %s after)", what, key, n, e.Lateness[key])
	}
	sort.Strings(e.NotLast)
	for _, w := range e.NotLast {
		t.Errorf("%s: the retraction is not the last record of %s", what, w)
	}
	t.Logf("%s: %d keys; worst lateness of a clean record relative to the return: %s (negative: before)", what, len(returned), e.Worst())
	return e
}

// TestIntegrationRevocationBarrier revokes and erases subjects whose
// events flow at a high rate through three consentd instances in one
// group, through the change service (as the CLI, the API and the consent
// topic do). Once a call returns, no clean record of the subject may be
// appended (broker append time), and its retraction must be its last
// record in every partition.
func TestIntegrationRevocationBarrier(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "b")
	for range 3 {
		s.start(t, nil)
	}
	stop := flow(t, env.Kafka, s.raw, "b")
	defer stop()
	itest.Eventually(t, 60*time.Second, "instances writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 3000 })

	pol, err := LoadPolicy(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := connect.NewKafka(context.Background(), s.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	producer := NewProducer(s.cfg, kc)
	defer producer.Close()
	dsr := NewDSR(s.cfg, pol, itest.Redis(t, env.Redis), producer, nil)
	returned := map[string]time.Time{}
	var calls []time.Duration
	for i := 0; i < 10; i++ {
		subj := fmt.Sprintf("b-%d", i)
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, _, err = dsr.Changes.Patch(context.Background(), subj, map[string]bool{"personalization": false, "analytics": false, "advertising": false})
		} else {
			_, _, err = dsr.Changes.Erase(context.Background(), subj, time.Time{})
		}
		if err != nil {
			t.Fatal(err)
		}
		returned[pseud(subj)] = time.Now()
		calls = append(calls, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // events keep flowing after the last change
	stop()
	sort.Slice(calls, func(i, j int) bool { return calls[i] < calls[j] })
	t.Logf("call to return with three instances: p50 %s, max %s", calls[len(calls)/2], calls[len(calls)-1])
	s.exactness(t, returned, "revocation")
	if n := itest.Count(t, env.Kafka, s.perso); n < 3000 {
		t.Fatalf("only %d clean records", n)
	}
}

// TestIntegrationExpiryIsExact gives flowing subjects an "_exp" a few
// seconds ahead, written straight into Redis without an announcement (as
// a CMP would; the index entry is what Updater.Put writes). From the
// expiry on, no clean record of them may be appended, and the sweeper's
// retraction must be their last record in every partition.
func TestIntegrationExpiryIsExact(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "e")
	s.start(t, nil)
	s.start(t, nil)
	stop := flow(t, env.Kafka, s.raw, "e")
	defer stop()
	itest.Eventually(t, 60*time.Second, "instances writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 2000 })

	rdb := itest.Redis(t, env.Redis)
	exp := time.Now().Add(4 * time.Second).Truncate(time.Millisecond)
	expired := map[string]time.Time{}
	for i := 0; i < 10; i++ {
		subj := fmt.Sprintf("e-%d", i)
		if err := rdb.HSet(context.Background(), redisstore.RecordKey(s.prefix, subj), redisstore.ExpiresField, exp.UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(context.Background(), redisstore.ExpiryIndexKey(s.prefix), redis.Z{Score: float64(exp.UnixMilli()), Member: subj}).Err(); err != nil {
			t.Fatal(err)
		}
		expired[pseud(subj)] = exp
	}
	time.Sleep(time.Until(exp) + 3*time.Second)
	stop()
	s.exactness(t, expired, "expiry")
	if n, _ := rdb.Exists(context.Background(), redisstore.RecordKey(s.prefix, "e-0")).Result(); n != 0 {
		t.Error("the expired record was not deleted")
	}
}
