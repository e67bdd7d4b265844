package e2ebench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/bench/revocation"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/policy"
)

// PropagationOptions configure RunPropagation and RunBarrierCost.
type PropagationOptions struct {
	Brokers     string
	Redis       string
	Subjects    int           // subjects whose events flow
	Revocations int           // how many of them are revoked, one by one
	Interval    time.Duration // between revocations
	// Instances is how many consentd run in the group. Default: 2.
	Instances int
}

// propRun is a running measurement: consentd instances in one group and
// events flowing for every subject.
type propRun struct {
	cfg     *config.Config
	pol     *policy.Policy
	rdb     *redis.Client
	prefix  string
	clean   []string
	subject func(int) string
	stop    func() error // stops producing, drains, stops the instances
	cleanup func()
}

// startPropagation creates fresh topics and records, starts o.Instances
// consentd in one group, produces events for every subject until stop,
// and returns once they write.
func startPropagation(ctx context.Context, o PropagationOptions) (r *propRun, err error) {
	if o.Revocations > o.Subjects {
		return nil, fmt.Errorf("revocations (%d) must not exceed subjects (%d)", o.Revocations, o.Subjects)
	}
	if o.Instances <= 0 {
		o.Instances = 2
	}
	id := fmt.Sprintf("prop-%d", time.Now().UnixNano())
	raw, dlq := id+".raw", id+".dlq"
	clean := []string{id + ".personalization", id + ".analytics", id + ".advertising"}
	if err := kafkatest.CreateTopics(o.Brokers, 4, raw, dlq); err != nil {
		return nil, err
	}
	if err := kafkatest.CreateTopicsWithConfig(o.Brokers, 2, map[string]string{"message.timestamp.type": "LogAppendTime"}, clean...); err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.Redis})
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	cleanups = append(cleanups, func() { rdb.Close() })
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	prefix := id + ":consent:"
	subject := func(i int) string { return fmt.Sprintf("s-%d", i) }
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	for i := 0; i < o.Subjects; i++ {
		if err := redisstore.Put(ctx, rdb, prefix, subject(i), 1, all); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "consentd-prop")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	policyPath, keyPath, err := writePolicyAndKeys(dir, clean)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{
		Kafka:            config.Kafka{Brokers: []string{o.Brokers}, RawTopics: []string{raw}, GroupID: id, DeadLetterTopic: dlq, SessionTimeout: 6 * time.Second},
		Redis:            config.Redis{Addr: o.Redis, KeyPrefix: prefix},
		Admin:            config.Admin{Listen: "127.0.0.1:0"},
		Pseudonymization: config.Pseudonymization{KeyFile: keyPath},
		Policy:           policyPath,
	}
	cfg.ApplyDefaults()
	p, err := app.LoadPolicy(cfg)
	if err != nil {
		return nil, err
	}
	runCtx, stopApps := context.WithCancel(ctx)
	cleanups = append(cleanups, stopApps)
	var apps []*app.App
	var wg sync.WaitGroup
	for range o.Instances {
		a, err := app.New(cfg, p, zap.NewNop())
		if err != nil {
			return nil, err
		}
		apps = append(apps, a)
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(runCtx) }()
	}

	// Events flow for every subject until the measurement ends.
	stopProducing := make(chan struct{})
	produced := make(chan error, 1)
	go func() { produced <- flowEvents(ctx, o.Brokers, raw, o.Subjects, subject, stopProducing) }()
	var once sync.Once
	stop := func() error {
		var perr error
		once.Do(func() {
			close(stopProducing)
			perr = <-produced
			time.Sleep(time.Second) // let the last batches drain
			stopApps()
			wg.Wait()
		})
		if perr != nil {
			return fmt.Errorf("producing: %w", perr)
		}
		return nil
	}
	cleanups = append(cleanups, func() { _ = stop() })
	if err := waitWriting(apps, 20*o.Subjects, produced); err != nil {
		return nil, err
	}
	return &propRun{cfg: cfg, pol: p, rdb: rdb, prefix: prefix, clean: clean, subject: subject, stop: stop, cleanup: cleanup}, nil
}

// flowEvents writes one event per subject every 20ms until stop closes.
func flowEvents(ctx context.Context, brokers, raw string, subjects int, subject func(int) string, stop <-chan struct{}) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: raw, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	for n := 0; ; n++ {
		msgs := make([]kafka.Message, subjects)
		for i := range msgs {
			s := subject(i)
			msgs[i] = kafka.Message{Key: []byte(s), Value: []byte(`{"type":"track","event":"Product Viewed","userId":"` + s + `","messageId":"` + s + "-" + strconv.Itoa(n) + `"}`)}
		}
		// A topic just created may be unknown to the broker's metadata
		// for a moment: retry before giving up.
		var err error
		for attempt := 0; attempt < 40; attempt++ {
			if err = w.WriteMessages(ctx, msgs...); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitWriting waits until the instances wrote n personalization events,
// or producing failed (the error is put back for the stop function).
func waitWriting(apps []*app.App, n int, produced chan error) error {
	written := func() int {
		total := 0
		for _, a := range apps {
			total += a.Stats.Snapshot().Written["personalization"]
		}
		return total
	}
	for deadline := time.Now().Add(60 * time.Second); written() < n; {
		if time.Now().After(deadline) {
			return fmt.Errorf("consentd did not start writing within 60s")
		}
		select {
		case err := <-produced:
			produced <- err // for stop
			return fmt.Errorf("producing: %v", err)
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// RunPropagation runs two consentd instances in one group while events for
// Subjects subjects flow, revokes Revocations of them one by one with a
// bare Redis write and PUBLISH (no barrier), and reports how long after
// each acknowledged revocation that subject's last clean write came
// (broker append time, read with kcat).
func RunPropagation(ctx context.Context, o PropagationOptions, out io.Writer) (revocation.Result, error) {
	o.Instances = 2
	r, err := startPropagation(ctx, o)
	if err != nil {
		return revocation.Result{}, err
	}
	defer r.cleanup()
	rdb, prefix, p, subject, clean := r.rdb, r.prefix, r.pol, r.subject, r.clean
	w := redisstore.NewUpdater(rdb, prefix)
	revokedAt := map[string]time.Time{}
	for i := 0; i < o.Revocations; i++ {
		if _, err := w.Patch(ctx, subject(i), map[string]bool{"personalization": false, "analytics": false, "advertising": false}); err != nil {
			return revocation.Result{}, err
		}
		key, err := p.PseudonymousKey(subject(i))
		if err != nil {
			return revocation.Result{}, err
		}
		revokedAt[string(key)] = time.Now()
		time.Sleep(o.Interval)
	}
	time.Sleep(2 * time.Second)
	if err := r.stop(); err != nil {
		return revocation.Result{}, err
	}

	kc, err := exec.Command("kcat", "-C", "-b", o.Brokers, "-t", clean[0], "-e", "-q", "-f", "%k %T\n").CombinedOutput()
	if err != nil {
		return revocation.Result{}, fmt.Errorf("kcat (install it with scripts/services.sh install): %v: %s", err, kc)
	}
	res, err := revocation.Analyze(kc, revokedAt, time.Second)
	if err != nil {
		return res, err
	}
	late := 0
	for _, n := range res.Late {
		late += n
	}
	fmt.Fprintf(out, "revocation propagation, two consentd instances in one group, %d revocations while %d subjects' events flowed:\n", len(res.Latencies), o.Subjects)
	fmt.Fprintf(out, "  from acknowledged revocation to the subject's last clean write: p50 %s  p99 %s  max %s\n", res.Percentile(0.5), res.Percentile(0.99), res.Percentile(1))
	fmt.Fprintf(out, "  writes later than 1s after a revocation: %d; revoked subjects without earlier writes: %d; other subjects' writes after the last revocation: %d\n", late, len(res.NoEventsBefore), res.OthersAfter)
	return res, nil
}

// BarrierCost is what RunBarrierCost measured.
type BarrierCost struct {
	Instances int
	// Calls are the durations from each call to its return, sorted.
	Calls []time.Duration
	// Exactness is what the clean topics show about the changes.
	Exactness revocation.Exactness
}

// Percentile returns the q-quantile (0..1) of the call durations.
func (b BarrierCost) Percentile(q float64) time.Duration {
	return revocation.Result{Latencies: b.Calls}.Percentile(q)
}

// RunBarrierCost runs o.Instances consentd in one group while events for
// o.Subjects subjects flow, and revokes (even) or erases (odd)
// o.Revocations of them one by one through the change service, as the
// CLI, the API and the consent topic do: each call returns after the
// revocation barrier and the retractions. It reports the time from call
// to return and checks with broker append times that nothing of a
// changed subject was appended after its call returned and that its
// retraction is its last record in every partition.
func RunBarrierCost(ctx context.Context, o PropagationOptions, out io.Writer) (BarrierCost, error) {
	r, err := startPropagation(ctx, o)
	if err != nil {
		return BarrierCost{}, err
	}
	defer r.cleanup()
	kc, err := connect.NewKafka(ctx, r.cfg.Kafka)
	if err != nil {
		return BarrierCost{}, err
	}
	producer := app.NewProducer(r.cfg, kc)
	defer producer.Close()
	dsr := app.NewDSR(r.cfg, r.pol, r.rdb, producer, nil)
	res := BarrierCost{Instances: o.Instances}
	returned := map[string]time.Time{}
	none := map[string]bool{"personalization": false, "analytics": false, "advertising": false}
	for i := 0; i < o.Revocations; i++ {
		subj := r.subject(i)
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, _, err = dsr.Changes.Patch(ctx, subj, none)
		} else {
			_, _, err = dsr.Changes.Erase(ctx, subj, time.Time{})
		}
		if err != nil {
			return res, err
		}
		end := time.Now()
		res.Calls = append(res.Calls, end.Sub(start))
		key, err := r.pol.PseudonymousKey(subj)
		if err != nil {
			return res, err
		}
		returned[string(key)] = end
		time.Sleep(o.Interval)
	}
	time.Sleep(time.Second)
	if err := r.stop(); err != nil {
		return res, err
	}
	slices.Sort(res.Calls)
	var kcOut []byte
	for _, topic := range r.clean {
		b, err := exec.Command("kcat", "-C", "-b", o.Brokers, "-t", topic, "-e", "-q", "-f", revocation.KcatBarrierFormat).CombinedOutput()
		if err != nil {
			return res, fmt.Errorf("kcat (install it with scripts/services.sh install): %v: %s", err, b)
		}
		kcOut = append(kcOut, b...)
	}
	if res.Exactness, err = revocation.Exact(kcOut, returned); err != nil {
		return res, err
	}
	after := 0
	for _, n := range res.Exactness.After {
		after += n
	}
	fmt.Fprintf(out, "revocation barrier, %d consentd instances in one group, %d revocations and erasures while %d subjects' events flowed:\n", o.Instances, len(res.Calls), o.Subjects)
	fmt.Fprintf(out, "  call to return (change, barrier, retractions): p50 %s  p99 %s  max %s\n", res.Percentile(0.5), res.Percentile(0.99), res.Percentile(1))
	fmt.Fprintf(out, "  clean records appended after their call returned: %d; retraction not the last record: %d; latest clean record relative to the return: %s\n",
		after, len(res.Exactness.NotLast), res.Exactness.Worst())
	return res, nil
}
