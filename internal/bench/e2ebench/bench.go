// Package e2ebench measures consentd end to end on a real Kafka broker and
// Redis against a plain kafka-go consume→produce→commit pass-through, on
// the same preloaded data in the same run. Benchmark tooling: production
// code never imports it.
package e2ebench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/configs"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/pipeline"
)

// Options configure a run.
type Options struct {
	Brokers    string
	Redis      string
	Events     int
	Users      int
	Partitions int
	Rounds     int
	BatchSize  int
}

// Result of one measured pass.
type Result struct {
	Name     string
	Events   int
	Outputs  int64         // messages written (clean + dead-letter, or pass-through copies)
	Wall     time.Duration // from start, group join included
	Steady   time.Duration // from the first message fetched to the last commit
	PerSec   float64       // Events / Steady
	WallRate float64       // Events / Wall
}

// Run preloads the raw topic, then alternates pass-through and consentd
// passes, and prints a report to out.
func Run(ctx context.Context, o Options, out io.Writer) ([]Result, error) {
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	raw := id + ".raw"
	clean := []string{id + ".personalization", id + ".analytics", id + ".advertising"}
	dlq, pass := id+".dlq", id+".passthrough"
	if err := kafkatest.CreateTopics(o.Brokers, o.Partitions, append([]string{raw, dlq, pass}, clean...)...); err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.Redis})
	defer rdb.Close()
	prefix := id + ":consent:"
	gen := synth.New(7, o.Users)
	pipe := rdb.Pipeline()
	for i := 0; i < o.Users; i++ {
		if p, ok := gen.Consent(i); ok {
			for _, s := range []string{synth.UserID(i), synth.AnonID(i)} {
				fields := []any{"_v", 1}
				for k, v := range p {
					fields = append(fields, k, map[bool]string{true: "1", false: "0"}[v])
				}
				pipe.HSet(ctx, redisstore.RecordKey(prefix, s), fields...)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("seeding consent: %w", err)
	}
	_ = redisstore.VersionField

	fmt.Fprintf(out, "preloading %d events (~%d bytes each) into %s (%d partitions)\n", o.Events, avgSize(gen), raw, o.Partitions)
	if err := preload(ctx, o, raw, gen); err != nil {
		return nil, err
	}
	var results []Result
	for round := 1; round <= o.Rounds; round++ {
		r, err := passThrough(ctx, o, raw, pass, fmt.Sprintf("%s.pt%d", id, round))
		if err != nil {
			return nil, fmt.Errorf("pass-through: %w", err)
		}
		results = append(results, r)
		report(out, round, r)
		r, err = parallelPassThrough(ctx, o, raw, pass, fmt.Sprintf("%s.ppt%d", id, round))
		if err != nil {
			return nil, fmt.Errorf("parallel pass-through: %w", err)
		}
		results = append(results, r)
		report(out, round, r)
		r, err = consentd(ctx, o, raw, dlq, clean, prefix, fmt.Sprintf("%s.cd%d", id, round))
		if err != nil {
			return nil, fmt.Errorf("consentd: %w", err)
		}
		results = append(results, r)
		report(out, round, r)
	}
	best := map[string]Result{}
	for _, r := range results {
		if r.PerSec > best[r.Name].PerSec {
			best[r.Name] = r
		}
	}
	pt, ppt, cd := best[namePassThrough], best[nameParallel], best["consentd"]
	fmt.Fprintf(out, "\nbest of %d rounds (steady events/s):\n  %-34s %8.0f\n  %-34s %8.0f\n  %-34s %8.0f = %.0f%% of the plain pass-through, %.0f%% of the partition-parallel one\n",
		o.Rounds, namePassThrough, pt.PerSec, nameParallel, ppt.PerSec, "consentd", cd.PerSec, 100*cd.PerSec/pt.PerSec, 100*cd.PerSec/ppt.PerSec)
	return results, nil
}

func report(out io.Writer, round int, r Result) {
	fmt.Fprintf(out, "round %d %-22s %8d events  %8d writes  steady %7.3fs = %8.0f events/s   (wall %6.3fs incl. group join = %8.0f/s)\n",
		round, r.Name, r.Events, r.Outputs, r.Steady.Seconds(), r.PerSec, r.Wall.Seconds(), r.WallRate)
}

func avgSize(g *synth.Generator) int {
	total := 0
	for range 100 {
		v, _ := g.Event()
		total += len(v)
	}
	return total / 100
}

func preload(ctx context.Context, o Options, topic string, gen *synth.Generator) error {
	w := &kafka.Writer{Addr: kafka.TCP(o.Brokers), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 5 * time.Millisecond, BatchSize: 2000, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	batch := make([]kafka.Message, 0, 2000)
	for sent := 0; sent < o.Events; {
		batch = batch[:0]
		for len(batch) < cap(batch) && sent+len(batch) < o.Events {
			v, u := gen.Event()
			batch = append(batch, kafka.Message{Key: []byte(synth.AnonID(u)), Value: v})
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return err
		}
		sent += len(batch)
	}
	return nil
}

// passThrough is the plain kafka-go idiom: a group Reader, fetch a batch,
// write it, commit it. Same batch size, linger, acks and producer linger
// as consentd.
func passThrough(ctx context.Context, o Options, raw, outTopic, group string) (Result, error) {
	start := time.Now()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{o.Brokers}, GroupID: group, Topic: raw, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: o.BatchSize, StartOffset: kafka.FirstOffset})
	defer r.Close()
	w := &kafka.Writer{Addr: kafka.TCP(o.Brokers), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 2 * o.BatchSize}
	defer w.Close()
	var first time.Time
	done := 0
	var writes int64
	out := make([]kafka.Message, 0, o.BatchSize)
	for done < o.Events {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return Result{}, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		batch := []kafka.Message{m}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		for len(batch) < o.BatchSize {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		out = out[:0]
		for _, m := range batch {
			out = append(out, kafka.Message{Topic: outTopic, Key: m.Key, Value: m.Value})
		}
		if err := w.WriteMessages(ctx, out...); err != nil {
			return Result{}, err
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			return Result{}, err
		}
		done += len(batch)
		writes += int64(len(out))
	}
	end := time.Now()
	return result(namePassThrough, o.Events, writes, start, first, end), nil
}

const (
	namePassThrough = "kafka-go pass-through"
	nameParallel    = "kafka-go parallel pass-through"
)

// copyProcessor writes every raw message unchanged to one topic.
type copyProcessor struct{ topic string }

func (c copyProcessor) Process(_ context.Context, msgs []kafka.Message) (*pipeline.Result, error) {
	res := &pipeline.Result{Accounting: pipeline.NewAccounting(), Out: make([]kafka.Message, len(msgs)), Origin: make([]int, len(msgs))}
	for i, m := range msgs {
		res.Out[i] = kafka.Message{Topic: c.topic, Key: m.Key, Value: m.Value}
		res.Origin[i] = i
		res.Accounting.Consumed[m.Topic]++
	}
	return res, nil
}

// Stale implements pipeline.BatchProcessor: a copy never goes stale.
func (copyProcessor) Stale(*pipeline.Result) bool { return false }

// parallelPassThrough runs consentd's own Kafka plumbing (kafka-go
// ConsumerGroup, one reader per partition, ordered acknowledged writes,
// commits) with a processor that copies messages: the ceiling consentd's
// policy work is measured against.
func parallelPassThrough(ctx context.Context, o Options, raw, outTopic, group string) (Result, error) {
	cfg := &config.Config{Kafka: config.Kafka{Brokers: []string{o.Brokers}, RawTopics: []string{raw}, GroupID: group, DeadLetterTopic: "unused"},
		Pipeline: config.Pipeline{BatchSize: o.BatchSize}}
	cfg.ApplyDefaults()
	stats := &pipeline.Stats{}
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return Result{}, err
	}
	w := app.NewProducer(cfg, kc)
	defer w.Close()
	start := time.Now()
	runner, err := pipeline.NewRunner(app.RunnerConfig(cfg, func() pipeline.BatchProcessor { return copyProcessor{topic: outTopic} }, w, hooks.List{stats}, zap.NewNop()))
	if err != nil {
		return Result{}, err
	}
	return measure(ctx, o, nameParallel, group, raw, start, stats, runner.Run)
}

func result(name string, events int, writes int64, start, first, end time.Time) Result {
	r := Result{Name: name, Events: events, Outputs: writes, Wall: end.Sub(start), Steady: end.Sub(first)}
	r.PerSec = float64(events) / r.Steady.Seconds()
	r.WallRate = float64(events) / r.Wall.Seconds()
	return r
}

func consentd(ctx context.Context, o Options, raw, dlq string, clean []string, prefix, group string) (Result, error) {
	dir, err := os.MkdirTemp("", "consentd-bench")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	policyPath, keyPath, err := writePolicyAndKeys(dir, clean)
	if err != nil {
		return Result{}, err
	}
	cfg := &config.Config{
		Kafka:            config.Kafka{Brokers: []string{o.Brokers}, RawTopics: []string{raw}, GroupID: group, DeadLetterTopic: dlq},
		Redis:            config.Redis{Addr: o.Redis, KeyPrefix: prefix},
		Admin:            config.Admin{Listen: "127.0.0.1:0"},
		Pipeline:         config.Pipeline{BatchSize: o.BatchSize},
		Pseudonymization: config.Pseudonymization{KeyFile: keyPath},
		Policy:           policyPath,
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	pol, err := app.LoadPolicy(cfg)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	a, err := app.New(cfg, pol, zap.NewNop())
	if err != nil {
		return Result{}, err
	}
	return measure(ctx, o, "consentd", group, raw, start, a.Stats, a.Run)
}

// measure runs run until every event is consumed and committed.
func measure(ctx context.Context, o Options, name, group, raw string, start time.Time, stats *pipeline.Stats, run func(context.Context) error) (Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()

	var first time.Time
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		consumed := pipeline.Total(stats.Snapshot().Consumed)
		if first.IsZero() && consumed > 0 {
			first = time.Now()
		}
		if consumed >= o.Events {
			c, err := kafkatest.Committed(o.Brokers, group, raw, o.Partitions)
			if err != nil {
				return Result{}, err
			}
			if kafkatest.SumCommitted(c) >= int64(o.Events) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	end := time.Now()
	final := stats.Snapshot()
	writes := int64(pipeline.Total(final.Written) + pipeline.Total(final.Dead))
	if name == nameParallel {
		writes = int64(o.Events)
	}
	cancel()
	if err := <-done; err != nil {
		return Result{}, err
	}
	// The first consumption is seen by polling (every 2ms): negligible.
	return result(name, o.Events, writes, start, first, end), nil
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// writePolicyAndKeys writes the shipped policy, with its clean topics
// renamed to clean (personalization, analytics, advertising), and a fresh
// k1 key file into dir; it returns their paths.
func writePolicyAndKeys(dir string, clean []string) (policyPath, keyPath string, err error) {
	pol := string(configs.Policy)
	for i, name := range []string{"clean.personalization", "clean.analytics", "clean.advertising"} {
		pol = replaceOnce(pol, "topic: "+name, "topic: "+clean[i])
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	policyPath, keyPath = filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "keys")
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, []byte("k1:"+base64.StdEncoding.EncodeToString(secret)), 0o600); err != nil {
		return "", "", err
	}
	return policyPath, keyPath, nil
}
