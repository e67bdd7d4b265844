package e2ebench

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/pipeline"
)

// The contenders, as run inside a child process (see child.go).

// passThrough is the plain kafka-go idiom: a group Reader, fetch a batch,
// write it, commit it. Same batch size, linger, acks and producer linger
// as consentd.
func passThrough(ctx context.Context, s ChildSpec) (ChildReport, error) {
	start := time.Now()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{s.Brokers}, GroupID: s.Group, Topic: s.Raw, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: s.BatchSize, StartOffset: kafka.FirstOffset})
	defer r.Close()
	w := &kafka.Writer{Addr: kafka.TCP(s.Brokers), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 2 * s.BatchSize}
	defer w.Close()
	var first time.Time
	done := 0
	var writes int64
	out := make([]kafka.Message, 0, s.BatchSize)
	for done < s.Events {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return ChildReport{}, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		batch := []kafka.Message{m}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		for len(batch) < s.BatchSize {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		out = out[:0]
		for _, m := range batch {
			out = append(out, kafka.Message{Topic: s.Out, Key: m.Key, Value: m.Value})
		}
		if err := w.WriteMessages(ctx, out...); err != nil {
			return ChildReport{}, err
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			return ChildReport{}, err
		}
		done += len(batch)
		writes += int64(len(out))
	}
	end := time.Now()
	return ChildReport{Consumed: done, Outputs: writes, Wall: end.Sub(start), Steady: end.Sub(first)}, nil
}

// copyProcessor writes every raw message unchanged to one topic.
type copyProcessor struct{ topic string }

func (c copyProcessor) Process(_ context.Context, msgs []kafka.Message) (*pipeline.Result, error) {
	res := &pipeline.Result{Accounting: pipeline.NewAccounting(), Out: make([]kafka.Message, len(msgs)), Origin: make([]int, len(msgs))}
	for i, m := range msgs {
		res.Out[i] = kafka.Message{Topic: c.topic, Key: m.Key, Value: m.Value}
		res.Origin[i] = i
		res.Accounting.Consumed[m.Topic]++
	}
	res.Accounting.Written[c.topic] = len(msgs)
	return res, nil
}

// Stale implements pipeline.BatchProcessor: a copy never goes stale.
func (copyProcessor) Stale(*pipeline.Result) bool { return false }

// parallelPassThrough runs consentd's own Kafka plumbing (kafka-go
// ConsumerGroup, one reader per partition, ordered acknowledged writes,
// commits) with a processor that copies messages: the ceiling consentd's
// policy work is measured against.
func parallelPassThrough(ctx context.Context, s ChildSpec) (ChildReport, error) {
	start := time.Now()
	cfg := &config.Config{Kafka: config.Kafka{Brokers: []string{s.Brokers}, RawTopics: []string{s.Raw}, GroupID: s.Group, DeadLetterTopic: "unused"},
		Pipeline: config.Pipeline{BatchSize: s.BatchSize}}
	cfg.ApplyDefaults()
	stats := &pipeline.Stats{}
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return ChildReport{}, err
	}
	w := app.NewProducer(cfg, kc)
	defer w.Close()
	runner, err := pipeline.NewRunner(app.RunnerConfig(cfg, func() pipeline.BatchProcessor { return copyProcessor{topic: s.Out} }, w, hooks.List{stats}, zap.NewNop()))
	if err != nil {
		return ChildReport{}, err
	}
	return measure(ctx, s, start, stats, runner.Run)
}

// consentd runs consentd, wired as cmd/consentd wires it, with the
// policy and keys of s.
func consentd(ctx context.Context, s ChildSpec) (ChildReport, error) {
	start := time.Now()
	cfg := &config.Config{
		Kafka:            config.Kafka{Brokers: []string{s.Brokers}, RawTopics: []string{s.Raw}, GroupID: s.Group, DeadLetterTopic: s.DeadLetter},
		Redis:            config.Redis{Addr: s.Redis, KeyPrefix: s.KeyPrefix},
		Admin:            config.Admin{Listen: "127.0.0.1:0"},
		Pipeline:         config.Pipeline{BatchSize: s.BatchSize},
		Pseudonymization: config.Pseudonymization{KeyFile: s.Keys},
		Policy:           s.Policy,
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return ChildReport{}, err
	}
	pol, err := app.LoadPolicy(cfg)
	if err != nil {
		return ChildReport{}, err
	}
	a, err := app.New(cfg, pol, zap.NewNop())
	if err != nil {
		return ChildReport{}, err
	}
	return measure(ctx, s, start, a.Stats, a.Run)
}

// measure runs run until s.Events are consumed and committed, then stops
// it.
func measure(ctx context.Context, s ChildSpec, start time.Time, stats *pipeline.Stats, run func(context.Context) error) (ChildReport, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()

	var first time.Time
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = errors.New("stopped before every event was committed")
			}
			return ChildReport{}, err
		case <-time.After(2 * time.Millisecond):
		}
		consumed := pipeline.Total(stats.Snapshot().Consumed)
		if first.IsZero() && consumed > 0 {
			first = time.Now()
		}
		if consumed >= s.Events {
			c, err := kafkatest.Committed(s.Brokers, s.Group, s.Raw, s.Partitions)
			if err != nil {
				return ChildReport{}, err
			}
			if kafkatest.SumCommitted(c) >= int64(s.Events) {
				break
			}
		}
	}
	end := time.Now()
	final := stats.Snapshot()
	cancel()
	if err := <-done; err != nil {
		return ChildReport{}, err
	}
	// The first consumption is seen by polling (every 2ms): negligible.
	return ChildReport{
		Consumed: pipeline.Total(final.Consumed),
		Outputs:  int64(pipeline.Total(final.Written) + pipeline.Total(final.Dead)),
		Wall:     end.Sub(start),
		Steady:   end.Sub(first),
	}, nil
}
