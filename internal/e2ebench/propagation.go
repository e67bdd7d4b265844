package e2ebench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/kafkautil"
	"github.com/consentd/consentd/internal/propagation"
)

// PropagationOptions configure RunPropagation.
type PropagationOptions struct {
	Brokers     string
	Redis       string
	Subjects    int           // subjects whose events flow
	Revocations int           // how many of them are revoked, one by one
	Interval    time.Duration // between revocations
}

// RunPropagation runs two consentd instances in one group while events for
// Subjects subjects flow, revokes Revocations of them one by one, and
// reports how long after each acknowledged revocation that subject's last
// clean write came (broker append time, read with kcat).
func RunPropagation(ctx context.Context, o PropagationOptions, out io.Writer) (propagation.Result, error) {
	if o.Revocations > o.Subjects {
		return propagation.Result{}, fmt.Errorf("revocations (%d) must not exceed subjects (%d)", o.Revocations, o.Subjects)
	}
	id := fmt.Sprintf("prop-%d", time.Now().UnixNano())
	raw, dlq := id+".raw", id+".dlq"
	clean := []string{id + ".personalization", id + ".analytics", id + ".advertising"}
	if err := kafkautil.CreateTopics(o.Brokers, 4, raw, dlq); err != nil {
		return propagation.Result{}, err
	}
	if err := kafkautil.CreateTopicsWithConfig(o.Brokers, 2, map[string]string{"message.timestamp.type": "LogAppendTime"}, clean...); err != nil {
		return propagation.Result{}, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.Redis})
	defer rdb.Close()
	prefix := id + ":consent:"
	subject := func(i int) string { return fmt.Sprintf("s-%d", i) }
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	for i := 0; i < o.Subjects; i++ {
		if err := redisstore.Put(ctx, rdb, prefix, subject(i), 1, all); err != nil {
			return propagation.Result{}, err
		}
	}
	dir, err := os.MkdirTemp("", "consentd-prop")
	if err != nil {
		return propagation.Result{}, err
	}
	defer os.RemoveAll(dir)
	policyPath, keyPath, err := writePolicyAndKeys(dir, clean)
	if err != nil {
		return propagation.Result{}, err
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
		return propagation.Result{}, err
	}
	runCtx, stopApps := context.WithCancel(ctx)
	defer stopApps()
	var apps []*app.App
	var wg sync.WaitGroup
	for range 2 {
		a, err := app.New(cfg, p, zap.NewNop())
		if err != nil {
			return propagation.Result{}, err
		}
		apps = append(apps, a)
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(runCtx) }()
	}

	// Events flow for every subject until the measurement ends.
	stopProducing := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		w := &kafka.Writer{Addr: kafka.TCP(o.Brokers), Topic: raw, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
		defer w.Close()
		for n := 0; ; n++ {
			msgs := make([]kafka.Message, o.Subjects)
			for i := range msgs {
				s := subject(i)
				msgs[i] = kafka.Message{Key: []byte(s), Value: []byte(`{"type":"track","event":"Product Viewed","userId":"` + s + `","messageId":"` + s + "-" + strconv.Itoa(n) + `"}`)}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				produced <- err
				return
			}
			select {
			case <-stopProducing:
				produced <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	written := func() float64 {
		total := 0.0
		for _, a := range apps {
			total += float64(a.Stats.Snapshot().Written["personalization"])
		}
		return total
	}
	for deadline := time.Now().Add(60 * time.Second); written() < float64(20*o.Subjects); {
		if time.Now().After(deadline) {
			close(stopProducing)
			return propagation.Result{}, fmt.Errorf("consentd did not start writing within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w := redisstore.NewUpdater(rdb, prefix)
	revokedAt := map[string]time.Time{}
	for i := 0; i < o.Revocations; i++ {
		if _, err := w.Patch(ctx, subject(i), map[string]bool{"personalization": false, "analytics": false, "advertising": false}); err != nil {
			close(stopProducing)
			return propagation.Result{}, err
		}
		key, err := p.PseudonymousKey(subject(i))
		if err != nil {
			close(stopProducing)
			return propagation.Result{}, err
		}
		revokedAt[string(key)] = time.Now()
		time.Sleep(o.Interval)
	}
	time.Sleep(2 * time.Second)
	close(stopProducing)
	if err := <-produced; err != nil {
		return propagation.Result{}, fmt.Errorf("producing: %w", err)
	}
	time.Sleep(time.Second) // let the last batches drain
	stopApps()
	wg.Wait()

	kc, err := exec.Command("kcat", "-C", "-b", o.Brokers, "-t", clean[0], "-e", "-q", "-f", "%k %T\n").CombinedOutput()
	if err != nil {
		return propagation.Result{}, fmt.Errorf("kcat (install it with scripts/services.sh install): %v: %s", err, kc)
	}
	res, err := propagation.Analyze(kc, revokedAt, time.Second)
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
