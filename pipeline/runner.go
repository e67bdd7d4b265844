package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/metrics"
)

// Writer is the part of *kafka.Writer the pipeline uses. WriteMessages
// returns only once every message is acknowledged or failed; on partial
// failure it returns kafka.WriteErrors (one entry per message).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// BatchProcessor turns a batch of raw messages into the messages to write.
// Process is called by one goroutine at a time (one processor per
// partition worker). It returns an error only when ctx ends before the
// batch could be decided; then nothing of the batch is written or
// committed. *Processor is the consentd implementation.
type BatchProcessor interface {
	Process(ctx context.Context, msgs []kafka.Message) (*Result, error)
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Brokers          []string
	Topics           []string
	GroupID          string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// StartOffset for partitions without a committed offset:
	// kafka.FirstOffset or kafka.LastOffset.
	StartOffset int64
	// MaxFetchBytes bounds one fetch response. Must exceed the largest
	// raw message.
	MaxFetchBytes int
	BatchSize     int
	BatchLinger   time.Duration
	// CommitInterval between periodic commits of acknowledged offsets.
	CommitInterval time.Duration
	// RetryBackoffMin/Max bound the wait between failed writes.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// ShutdownGrace bounds draining after ctx ends.
	ShutdownGrace time.Duration
	// NewProcessor returns a processor for one partition worker.
	NewProcessor func() BatchProcessor
	Writer       Writer
	Metrics      *metrics.Metrics
	Health       *Health
	Log          *zap.Logger
}

// Runner consumes raw topics as a consumer group member and writes clean
// events. See Run.
type Runner struct {
	cfg     RunnerConfig
	workers sync.WaitGroup
}

// NewRunner returns a Runner.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Runner{cfg: cfg}
}

// Run joins the group and processes assigned partitions until ctx ends.
// Then it stops fetching, finishes in-flight writes (bounded by
// ShutdownGrace), commits what was acknowledged, leaves the group and
// returns nil.
//
// Guarantees: per raw partition, messages are processed and written in
// order, and a committed offset never passes a message whose writes are
// not all acknowledged. After a crash or a lost generation, messages after
// the last commit are processed again (at-least-once: duplicates possible,
// no loss).
func (r *Runner) Run(ctx context.Context) error {
	cfg := r.cfg
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    cfg.GroupID,
		Brokers:               cfg.Brokers,
		Topics:                cfg.Topics,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		HeartbeatInterval:     cfg.SessionTimeout / 4,
		JoinGroupBackoff:      time.Second,
		StartOffset:           cfg.StartOffset,
		WatchPartitionChanges: true,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
			cfg.Log.Warn("kafka consumer group", zap.String("detail", fmt.Sprintf(f, a...)))
		}),
	})
	if err != nil {
		return fmt.Errorf("creating consumer group: %w", err)
	}

	// Writes outlive ctx by at most ShutdownGrace so that in-flight batches
	// can be acknowledged and committed.
	writeCtx, cancelWrites := context.WithCancel(context.Background())
	defer cancelWrites()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(cfg.ShutdownGrace, cancelWrites)
	})
	defer stopGrace()

	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			cfg.Health.Set(CondGroup, err)
			cfg.Log.Warn("joining consumer group failed; retrying", zap.String("group", cfg.GroupID), zap.Error(err))
			if sleep(ctx, time.Second) != nil {
				break
			}
			continue
		}
		cfg.Health.Set(CondGroup, nil)
		if cfg.Metrics != nil {
			cfg.Metrics.Rebalances.Inc()
		}
		r.startGeneration(ctx, writeCtx, gen)
	}
	done := make(chan struct{})
	go func() { r.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-writeCtx.Done():
		<-done // workers return promptly once writes are cancelled
	}
	cfg.Health.Set(CondGroup, errors.New("stopped"))
	if err := cg.Close(); err != nil {
		cfg.Log.Warn("closing consumer group", zap.Error(err))
	}
	return nil
}

// generation holds the commit state of one consumer group generation.
type generation struct {
	gen   *kafka.Generation
	mu    sync.Mutex // serializes commits
	parts []*partition
}

type partition struct {
	topic     string
	id        int
	acked     atomic.Int64 // next offset to commit: all before it acknowledged
	fetched   atomic.Int64 // next offset after the last fetched message
	committed int64        // guarded by generation.mu
}

func (r *Runner) startGeneration(stop, writeCtx context.Context, gen *kafka.Generation) {
	g := &generation{gen: gen}
	var assigned []string
	for topic, as := range gen.Assignments {
		for _, a := range as {
			p := &partition{topic: topic, id: a.ID, committed: -1}
			p.acked.Store(-1)
			p.fetched.Store(-1)
			g.parts = append(g.parts, p)
			assigned = append(assigned, topic+"/"+strconv.Itoa(a.ID))
			offset := a.Offset
			r.workers.Add(1)
			gen.Start(func(genCtx context.Context) {
				defer r.workers.Done()
				r.runPartition(genCtx, stop, writeCtx, g, p, offset)
			})
		}
	}
	r.cfg.Log.Info("joined consumer group generation", zap.Int32("generation", gen.ID), zap.Strings("partitions", assigned))
	r.workers.Add(1)
	gen.Start(func(genCtx context.Context) {
		defer r.workers.Done()
		t := time.NewTicker(r.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-genCtx.Done():
				return
			case <-stop.Done():
				return
			case <-t.C:
				r.commit(g)
			}
		}
	})
}

// commit commits every partition's acknowledged offset that moved.
func (r *Runner) commit(g *generation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	offsets := map[string]map[int]int64{}
	var moved []*partition
	for _, p := range g.parts {
		a := p.acked.Load()
		if a > p.committed {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			offsets[p.topic][p.id] = a
			moved = append(moved, p)
		}
	}
	if len(moved) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(offsets); err != nil {
		// A stale generation's commit is refused by the broker: the new
		// owner re-reads from the last good commit (duplicates, no loss).
		if r.cfg.Metrics != nil {
			r.cfg.Metrics.Commits.WithLabelValues("error").Inc()
		}
		r.cfg.Log.Warn("offset commit failed; will retry", zap.Int32("generation", g.gen.ID), zap.Error(err))
		return
	}
	for _, p := range moved {
		p.committed = offsets[p.topic][p.id]
		if r.cfg.Metrics != nil {
			lag := max(p.fetched.Load()-p.committed, 0)
			r.cfg.Metrics.CommitLag.WithLabelValues(p.topic, strconv.Itoa(p.id)).Set(float64(lag))
		}
	}
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.Commits.WithLabelValues("ok").Inc()
	}
}

type pending struct {
	msgs []kafka.Message
	res  *Result
	next int64 // offset after the batch's last message
}

// Revalidator is implemented by processors that can tell a decided batch
// is stale (consent changed since); the batch is then decided again just
// before it is written.
type Revalidator interface {
	Stale(res *Result) bool
}

// runPartition fetches, decides and writes one partition until the
// generation or the process ends, then drains and commits.
func (r *Runner) runPartition(genCtx, stop, writeCtx context.Context, g *generation, p *partition, offset int64) {
	cfg := r.cfg
	log := cfg.Log.With(zap.String("topic", p.topic), zap.Int("partition", p.id))
	ctx, cancel := context.WithCancel(stop)
	defer cancel()
	stopAfter := context.AfterFunc(genCtx, cancel)
	defer stopAfter()

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       cfg.Brokers,
		Topic:         p.topic,
		Partition:     p.id,
		MinBytes:      1,
		MaxBytes:      cfg.MaxFetchBytes,
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: cfg.BatchSize,
		ErrorLogger:   kafka.LoggerFunc(func(f string, a ...any) { log.Warn("kafka reader", zap.String("detail", fmt.Sprintf(f, a...))) }),
	})
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		log.Error("setting start offset", zap.Error(err))
		return
	}

	queue := make(chan pending, 4)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		r.writeLoop(ctx, writeCtx, queue, p, log)
	}()

	proc := cfg.NewProcessor()
	for ctx.Err() == nil {
		msgs, err := fetchBatch(ctx, reader, cfg.BatchSize, cfg.BatchLinger)
		if len(msgs) == 0 {
			if err != nil && ctx.Err() == nil {
				log.Warn("fetch failed", zap.Error(err))
				_ = sleep(ctx, cfg.RetryBackoffMin)
			}
			continue
		}
		next := msgs[len(msgs)-1].Offset + 1
		p.fetched.Store(next)
		res, err := proc.Process(ctx, msgs)
		if err != nil {
			break // ctx ended while the consent store failed: emit nothing
		}
		select {
		case queue <- pending{msgs: msgs, res: res, next: next}:
		case <-ctx.Done():
		}
	}
	close(queue)
	<-writerDone
	r.commit(g)
	log.Info("partition released", zap.Int64("committed", p.committed))
}

// fetchBatch blocks for one message, then takes what arrives within linger,
// up to max messages.
func fetchBatch(ctx context.Context, reader *kafka.Reader, max int, linger time.Duration) ([]kafka.Message, error) {
	m, err := reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]kafka.Message, 1, max)
	msgs[0] = m
	if max == 1 {
		return msgs, nil
	}
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for len(msgs) < max {
		m, err := reader.FetchMessage(lctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// writeLoop writes batches in order and advances the partition's
// acknowledged offset after each. While writes fail it retries with
// backoff; once ctx (fetching) has ended it stops retrying and leaves the
// rest uncommitted, to be redelivered.
func (r *Runner) writeLoop(ctx, writeCtx context.Context, queue <-chan pending, p *partition, log *zap.Logger) {
	cfg := r.cfg
	failed := false
	reproc := cfg.NewProcessor() // decides stale batches again
	rv, _ := reproc.(Revalidator)
	for b := range queue {
		if failed {
			continue // an earlier batch was not written: nothing after it may be committed
		}
		if rv != nil && rv.Stale(b.res) {
			res, err := reproc.Process(ctx, b.msgs)
			if err != nil {
				failed = true // ctx ended while the store failed: write nothing more
				continue
			}
			b.res = res
		}
		if err := r.write(ctx, writeCtx, b.res.Out, log); err != nil {
			failed = true
			continue
		}
		b.res.Accounting.Apply(cfg.Metrics)
		p.acked.Store(b.next)
	}
}

func (r *Runner) write(ctx, writeCtx context.Context, msgs []kafka.Message, log *zap.Logger) error {
	cfg := r.cfg
	backoff := cfg.RetryBackoffMin
	for attempt := 1; len(msgs) > 0; attempt++ {
		start := time.Now()
		err := cfg.Writer.WriteMessages(writeCtx, msgs...)
		if err == nil {
			if cfg.Metrics != nil {
				cfg.Metrics.ProduceSecs.Observe(time.Since(start).Seconds())
			}
			cfg.Health.Set(CondKafkaWrite, nil)
			return nil
		}
		if cfg.Metrics != nil {
			cfg.Metrics.ProduceErrors.Inc()
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			// Retry only what failed; per target partition the order is kept.
			var retry []kafka.Message
			for i, e := range werrs {
				if e != nil {
					retry = append(retry, msgs[i])
				}
			}
			msgs = retry
		}
		cfg.Health.Set(CondKafkaWrite, err)
		if writeCtx.Err() != nil || ctx.Err() != nil {
			log.Warn("abandoning unacknowledged writes; they will be redelivered", zap.Int("messages", len(msgs)), zap.Error(err))
			return err
		}
		log.Warn("produce failed; retrying", zap.Int("attempt", attempt), zap.Int("messages", len(msgs)), zap.Duration("retry_in", backoff), zap.Error(err))
		if sleep(writeCtx, backoff) != nil {
			return err
		}
		backoff = min(backoff*2, cfg.RetryBackoffMax)
	}
	return nil
}
