package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
)

// Runner consumes raw topics as a consumer group member and writes clean
// events. See Run.
type Runner struct {
	cfg     RunnerConfig
	sink    *sink
	workers sync.WaitGroup
	fatal   atomic.Pointer[error]
	stop    context.CancelFunc
	// The Kafka loops. Each partition worker fetches and produces as a
	// Member of fetchLoop and of the sink's loop, closed when the worker
	// ends: the loop fails while any partition fails, and a partition
	// released during an outage leaves no failure behind.
	joinLoop, fetchLoop, commitLoop *outage.Loop
}

// NewRunner applies cfg's defaults, validates it and returns a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg,
		joinLoop:   cfg.Outage.Loop("consumer group join", "no partition is consumed"),
		fetchLoop:  cfg.Outage.Loop("fetch", "raw events wait in Kafka"),
		commitLoop: cfg.Outage.Loop("offset commit", "written events are redelivered after a restart"),
	}
	r.sink = &sink{producer: cfg.Producer, deadLetterTopic: cfg.DeadLetterTopic, maxWriteBytes: cfg.MaxWriteBytes,
		backoff: cfg.Backoff, hooks: cfg.Hooks, fail: r.fail,
		loop: cfg.Outage.Loop("produce", "decided events are held, uncommitted")}
	return r, nil
}

// SetMaxWriteBytes changes RunnerConfig.MaxWriteBytes, once the limits of
// the written topics are known. Call it before Run.
func (r *Runner) SetMaxWriteBytes(n int) {
	if n > 0 {
		r.cfg.MaxWriteBytes = n
		r.sink.maxWriteBytes = n
	}
}

// Run joins the group and processes assigned partitions until ctx ends.
// Then it stops fetching, finishes in-flight writes (bounded by
// ShutdownGrace), commits what was acknowledged, leaves the group and
// returns nil. It returns an error only when nothing can be written at
// all (the broker refuses this instance's writes: authorization), after
// draining the same way.
//
// Guarantees: per raw partition, messages are processed and written in
// order, and a committed offset never passes a message whose writes are
// not all acknowledged. After a crash or a lost generation, messages after
// the last commit are processed again (at-least-once: duplicates possible,
// no loss).
func (r *Runner) Run(ctx context.Context) error {
	cfg := &r.cfg
	cg, err := r.newConsumerGroup()
	if err != nil {
		return err
	}
	ctx, r.stop = context.WithCancel(ctx)
	defer r.stop()
	for _, l := range []*outage.Loop{r.joinLoop, r.fetchLoop, r.commitLoop, r.sink.loop} {
		defer l.Close()
	}

	// Writes outlive ctx by at most ShutdownGrace so that in-flight batches
	// can be acknowledged and committed.
	writeCtx, cancelWrites := context.WithCancel(context.Background())
	defer cancelWrites()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(cfg.ShutdownGrace, cancelWrites)
	})
	defer stopGrace()

	for ctx.Err() == nil {
		gen, err := r.nextGeneration(ctx, cg)
		if err != nil {
			break // ctx ended
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
	cfg.Hooks.Condition(CondGroup, errors.New("stopped"))
	if err := cg.Close(); err != nil {
		cfg.Log.Warn("closing consumer group", zap.Error(err))
	}
	if fe := r.fatal.Load(); fe != nil {
		return *fe
	}
	return nil
}

// nextGeneration joins the next group generation, retrying until it
// succeeds or ctx ends.
func (r *Runner) nextGeneration(ctx context.Context, cg *kafka.ConsumerGroup) (*kafka.Generation, error) {
	cfg := &r.cfg
	var gen *kafka.Generation
	err := retry.Do(ctx, retry.Policy{
		Backoff: retry.Backoff{Min: JoinGroupBackoff, Max: max(JoinGroupBackoff, cfg.Backoff.Max)},
		OnRetry: func(_ int, err error, _ time.Duration) {
			cfg.Hooks.Condition(CondGroup, err)
			r.joinLoop.Failed(err)
		},
	}, func() error {
		var err error
		gen, err = cg.Next(ctx)
		if ctx.Err() != nil {
			return nil // stopping: not a failure
		}
		return err
	})
	if err != nil || ctx.Err() != nil {
		return nil, errors.Join(err, ctx.Err())
	}
	cfg.Hooks.Condition(CondGroup, nil)
	r.joinLoop.OK()
	// The group coordinator answered the join, the sync and the offset
	// fetch: commits, which go to it too, are not failing any more (a
	// commit failed in an outage would otherwise wait for new events).
	r.commitLoop.OK()
	hooks.Each(cfg.Hooks, func(h GenerationHook) { h.OnGeneration(gen.ID) })
	return gen, nil
}

// fail stops the runner for good: nothing can be written.
func (r *Runner) fail(err error) {
	if r.fatal.CompareAndSwap(nil, &err) {
		r.cfg.Log.Error("stopping: Kafka refuses this instance's writes", zap.Error(err))
		r.cfg.Hooks.Condition(CondKafkaWrite, err)
		r.stop()
	}
}

func (r *Runner) startGeneration(stop, writeCtx context.Context, gen *kafka.Generation) {
	g := &generation{gen: gen}
	var assigned []string
	var offsets []int64
	// Every partition is in g.parts before any worker starts: a worker's
	// commit reads g.parts.
	for topic, as := range gen.Assignments {
		for _, a := range as {
			g.parts = append(g.parts, newPartition(topic, a.ID))
			offsets = append(offsets, a.Offset)
			assigned = append(assigned, topic+"/"+strconv.Itoa(a.ID))
		}
	}
	for i, p := range g.parts {
		offset := offsets[i]
		r.workers.Add(1)
		gen.Start(func(genCtx context.Context) {
			defer r.workers.Done()
			r.runPartition(genCtx, stop, writeCtx, g, p, offset)
		})
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

type pending struct {
	msgs []kafka.Message
	res  *Result
	next int64 // offset after the batch's last message
	// decided is when the batch was handed to the writer; oldest is its
	// oldest raw record time (zero when none is usable: StageAge).
	decided, oldest time.Time
}

// runPartition fetches, decides and writes one partition until the
// generation or the process ends, then drains and commits.
func (r *Runner) runPartition(genCtx, stop, writeCtx context.Context, g *generation, p *partition, offset int64) {
	cfg := &r.cfg
	log := cfg.Log.With(zap.String("topic", p.topic), zap.Int("partition", p.id))
	ctx, cancel := context.WithCancel(stop)
	defer cancel()
	stopAfter := context.AfterFunc(genCtx, cancel)
	defer stopAfter()

	reader := r.newPartitionReader(p.topic, p.id, log)
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		log.Error("setting start offset", zap.Error(err))
		return
	}

	queue := make(chan pending, WriteQueueDepth)
	writerDone := make(chan struct{})
	fl := &fill{}
	go func() {
		defer close(writerDone)
		r.writeLoop(ctx, writeCtx, queue, p, fl, log)
	}()

	proc := cfg.NewProcessor()
	fetchLoop := r.fetchLoop.Member()
	defer fetchLoop.Close()
	// A failed fetch is tried again soon: a reader recovers by itself,
	// and a longer wait only delays events. The wait still grows up to
	// FetchBackoffMax, so that an outage does not spin.
	fetch := retry.Policy{Backoff: retry.Backoff{Min: cfg.Backoff.Min, Max: max(cfg.Backoff.Min, min(cfg.Backoff.Max, FetchBackoffMax))}, OnRetry: func(attempt int, err error, wait time.Duration) {
		fetchLoop.Failed(err)
		log.Debug("fetch failed; retrying", zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
	}}
	for ctx.Err() == nil {
		var msgs []kafka.Message
		var first time.Time
		err := retry.Do(ctx, fetch, func() (err error) {
			msgs, first, err = fetchBatch(ctx, reader, cfg.BatchSize, cfg.BatchLinger, fl)
			return err
		})
		if err != nil || len(msgs) == 0 {
			continue // ctx ended
		}
		fetchLoop.OK()
		filled := time.Now()
		r.stage(StageFill, filled.Sub(first))
		next := msgs[len(msgs)-1].Offset + 1
		p.fetched.Store(next)
		res, err := proc.Process(ctx, msgs)
		if err != nil {
			break // ctx ended while the consent store failed: emit nothing
		}
		fl.queued()
		select {
		case queue <- pending{msgs: msgs, res: res, next: next, decided: time.Now(), oldest: oldestRecord(msgs, filled)}:
		case <-ctx.Done():
			fl.written()
		}
	}
	close(queue)
	<-writerDone
	r.commit(g)
	log.Info("partition released", zap.Int64("committed", p.committed))
}

// writeLoop writes batches in order and advances the partition's
// acknowledged offset after each. While writes fail it retries with
// backoff; once ctx (fetching) has ended it stops retrying and leaves the
// rest uncommitted, to be redelivered.
func (r *Runner) writeLoop(ctx, writeCtx context.Context, queue <-chan pending, p *partition, fl *fill, log *zap.Logger) {
	cfg := &r.cfg
	failed := false
	cond := PartitionCond(CondKafkaWrite, p.topic, p.id)
	defer cfg.Hooks.Condition(cond, nil) // a released partition is not this instance's to report
	reproc := cfg.NewProcessor()         // decides stale batches again
	produce := r.sink.loop.Member()
	defer produce.Close()
	for b := range queue {
		if failed {
			fl.written()
			continue // an earlier batch was not written: nothing after it may be committed
		}
		start := time.Now()
		r.stage(StageQueue, start.Sub(b.decided))
		ok := r.writeBatch(ctx, writeCtx, reproc, produce, &b, cond, log)
		fl.written()
		if !ok {
			failed = true
			continue
		}
		end := time.Now()
		r.stage(StageWrite, end.Sub(start))
		if !b.oldest.IsZero() {
			r.stage(StageAge, end.Sub(b.oldest))
		}
		p.acked.Store(b.next)
	}
}

// stage reports a batch's time in a stage to the StageHooks.
func (r *Runner) stage(stage string, d time.Duration) {
	hooks.Each(r.cfg.Hooks, func(h StageHook) { h.OnStage(stage, d) })
}

// oldestRecord returns the earliest record time of msgs that is set and
// not after now (a producer's clock may be wrong), zero when none is.
func oldestRecord(msgs []kafka.Message, now time.Time) time.Time {
	var oldest time.Time
	for i := range msgs {
		if t := msgs[i].Time; !t.IsZero() && !t.After(now) && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest
}

// writeBatch writes one batch through the write fence: held while the
// instance may not write (fail closed), then in flight so that a barrier
// waits for it from its last check; decided again while stale. It
// reports the batch's accounting once every write is acknowledged and
// returns false when the batch was not written.
func (r *Runner) writeBatch(ctx, writeCtx context.Context, reproc BatchProcessor, loop *outage.Loop, b *pending, cond string, log *zap.Logger) bool {
	for {
		rep, err := r.writeOnce(ctx, writeCtx, reproc, loop, b, cond, log)
		if errors.Is(err, errFenceClosed) {
			continue // begun again: held until the lease is current, checked, decided again if stale
		}
		if err != nil || rep == nil {
			return false
		}
		acc := Account(b.res, rep)
		hooks.Each(r.cfg.Hooks, func(h BatchWrittenHook) { h.OnBatchWritten(acc) })
		return true
	}
}

// writeOnce is one pass of writeBatch through the fence. A nil report
// with a nil error: ctx ended while the store failed.
func (r *Runner) writeOnce(ctx, writeCtx context.Context, reproc BatchProcessor, loop *outage.Loop, b *pending, cond string, log *zap.Logger) (*WriteReport, error) {
	cfg := &r.cfg
	w, err := cfg.Fence.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cfg.Fence.End(w)
	if !r.recheck(ctx, w, reproc, b) {
		return nil, nil // ctx ended while the store failed: write nothing more
	}
	return r.sink.write(ctx, writeCtx, b.msgs, b.res, loop, cond, cfg.Fence.Open, log)
}

// recheck decides b again until no consent it was decided with changed
// since; the fence records the change sequence of the last check. false
// when ctx ended while the consent store failed.
func (r *Runner) recheck(ctx context.Context, w uint64, reproc BatchProcessor, b *pending) bool {
	for {
		r.cfg.Fence.Check(w)
		if !reproc.Stale(b.res) {
			return true
		}
		if ctx.Err() != nil {
			return false // stopping: the batch is redelivered
		}
		res, err := reproc.Process(ctx, b.msgs)
		if err != nil {
			return false
		}
		b.res = res
	}
}
