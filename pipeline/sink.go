package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/wire"
)

// This file is where clean messages and dead letters are written to Kafka,
// and where Kafka's write errors are classified.

// Producer writes messages; *kafka.Writer implements it. WriteMessages
// returns only once every message is acknowledged or failed; on partial
// failure it returns kafka.WriteErrors, one entry per message (nil for
// the written ones). Safe for concurrent use.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Dead-letter reasons for clean messages Kafka will not take.
const (
	// ReasonOutputTooLarge: a clean message is larger than its topic
	// accepts (MaxWriteBytes).
	ReasonOutputTooLarge = "output_too_large"
	// ReasonWriteRefused: the broker refused a clean message for good
	// (too large for the topic, invalid record, policy violation).
	ReasonWriteRefused = "write_refused"
	// ReasonTopicUnknown: a clean topic stopped existing after start.
	ReasonTopicUnknown = "topic_unknown"
)

// errClass says what to do about a write error.
type errClass uint8

const (
	transient errClass = iota // retry with backoff
	refused                   // this message will never be accepted: dead-letter it
	fatal                     // nothing this instance writes will be accepted: stop
)

// classify sorts a produce error. Kafka's own retriable errors (a leader
// moving, a timeout, a broken connection) are transient; errors about the
// message itself are refused; authorization failures are fatal.
func classify(err error) errClass {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return refused
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed, kafka.SASLAuthenticationFailed,
			kafka.TransactionalIDAuthorizationFailed, kafka.InvalidRequiredAcks:
			return fatal
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidMessageSize, kafka.InvalidRecord,
			kafka.InvalidTimestamp, kafka.PolicyViolation, kafka.UnsupportedForMessageFormat, kafka.InvalidTopic:
			return refused
		}
	}
	return transient
}

// batchWrite is one decided batch on its way out.
type batchWrite struct {
	raw  []kafka.Message
	res  *Result
	skip []bool       // Out[i] replaced by an earlier dead letter of its raw event
	dead map[int]bool // raw indexes already dead-lettered by the sink
}

// write writes res.Out, retrying transient failures with backoff until
// every message is acknowledged. Messages Kafka refuses for good are
// replaced by dead letters (a dead letter too large is truncated), so one
// message never blocks the others. It returns an error when writing is
// abandoned: ctx or writeCtx ended, or the instance cannot write at all.
//
// cond is the partition's readiness condition (PartitionCond): failing
// while writes fail, so that /readyz names the stuck partition and why.
func (r *Runner) write(ctx, writeCtx context.Context, raw []kafka.Message, res *Result, cond string, log *zap.Logger) error {
	cfg := &r.cfg
	copyHeaders(cfg.CopyHeaders, cfg.DeadLetterTopic, raw, res)
	bw := &batchWrite{raw: raw, res: res, skip: make([]bool, len(res.Out))}
	todo := make([]int, 0, len(res.Out))
	for i := range res.Out {
		if wire.Size(&res.Out[i]) > cfg.MaxWriteBytes {
			r.refuse(bw, i, ReasonOutputTooLarge, fmt.Errorf("message of %d bytes exceeds the %d bytes the topic accepts", wire.Size(&res.Out[i]), cfg.MaxWriteBytes))
		}
		if !bw.skip[i] {
			todo = append(todo, i)
		}
	}
	var unknownSince time.Time
	for attempt := 1; len(todo) > 0; attempt++ {
		msgs := make([]kafka.Message, len(todo))
		for k, i := range todo {
			msgs[k] = res.Out[i]
		}
		start := time.Now()
		err := cfg.Producer.WriteMessages(writeCtx, msgs...)
		cfg.Hooks.OnProduce(time.Since(start), len(msgs), err)
		if err == nil {
			cfg.Health.Set(cond, nil)
			return nil
		}
		var next []int
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			for k, e := range werrs {
				if e == nil {
					continue
				}
				i := todo[k]
				switch classify(e) {
				case fatal:
					r.fail(fmt.Errorf("writing to %s: %w", res.Out[i].Topic, e))
					return e
				case refused:
					if ferr := r.refuse(bw, i, ReasonWriteRefused, e); ferr != nil {
						return ferr
					}
				}
				if !bw.skip[i] {
					next = append(next, i) // retried (as its replacement, if refused)
				}
			}
		} else {
			switch {
			case classify(err) == fatal:
				r.fail(fmt.Errorf("writing: %w", err))
				return err
			case isUnknownTopic(err):
				if unknownSince.IsZero() {
					unknownSince = time.Now()
				} else if time.Since(unknownSince) >= UnknownTopicGrace {
					if ferr := r.isolateTopics(writeCtx, bw, todo, ReasonTopicUnknown, isUnknownTopic); ferr != nil {
						return ferr
					}
					unknownSince = time.Time{}
				}
			case classify(err) == refused:
				// A whole call refused: kafka-go's own size check names
				// the message; anything else is narrowed down by topic.
				var tooLarge kafka.MessageTooLargeError
				if errors.As(err, &tooLarge) {
					if i, ok := indexOf(res.Out, todo, &tooLarge.Message); ok {
						if ferr := r.refuse(bw, i, ReasonWriteRefused, err); ferr != nil {
							return ferr
						}
					}
				} else if ferr := r.isolateTopics(writeCtx, bw, todo, ReasonWriteRefused, func(e error) bool { return classify(e) == refused }); ferr != nil {
					return ferr
				}
			}
			for _, i := range todo {
				if !bw.skip[i] {
					next = append(next, i)
				}
			}
		}
		todo = next
		if len(todo) == 0 {
			cfg.Health.Set(cond, nil)
			return nil
		}
		cfg.Health.Set(cond, err)
		if writeCtx.Err() != nil || ctx.Err() != nil {
			log.Warn("abandoning unacknowledged writes; they will be redelivered", zap.Int("messages", len(todo)), zap.Error(err))
			return err
		}
		wait := cfg.Backoff.Delay(attempt)
		log.Warn("produce failed; retrying", zap.Int("attempt", attempt), zap.Int("messages", len(todo)), zap.Duration("retry_in", wait), zap.Error(err))
		if err := retry.Sleep(writeCtx, wait); err != nil {
			return err
		}
	}
	return nil
}

// refuse replaces Out[i], which Kafka will never take, by the dead letter
// of its raw event (once per raw event; the event's other refused clean
// messages are skipped), or, when Out[i] is a dead letter already, by its
// truncated form. A truncated dead letter that is refused too means the
// dead-letter topic takes nothing: the instance stops.
func (r *Runner) refuse(bw *batchWrite, i int, reason string, cause error) error {
	res, limit := bw.res, r.cfg.MaxWriteBytes
	m := &res.Out[i]
	if wire.IsDeadLetter(m) {
		if wire.Header(m, wire.HeaderDLQTruncated) != nil {
			err := fmt.Errorf("dead-letter topic %s refuses even a truncated dead letter: %w", m.Topic, cause)
			r.fail(err)
			return err
		}
		*m = wire.Truncate(*m, limit)
		return nil
	}
	origin := res.Origin[i]
	output := string(wire.Header(m, wire.HeaderOutput))
	acc := &res.Accounting
	acc.Written[output]--
	acc.Decisions[Decision{output, "write", ""}]--
	acc.Decisions[Decision{output, "skip", reason}]++
	if bw.dead == nil {
		bw.dead = map[int]bool{}
	}
	if bw.dead[origin] {
		bw.skip[i] = true
		return nil
	}
	bw.dead[origin] = true
	acc.Dead[reason]++
	dl := wire.DeadLetter(r.cfg.DeadLetterTopic, &bw.raw[origin], reason, fmt.Sprintf("clean write to output %s refused: %v", output, cause), string(wire.Header(m, wire.HeaderPolicyVersion)))
	if wire.Size(&dl) > limit {
		dl = wire.Truncate(dl, limit)
	}
	*m = dl
	r.cfg.Log.Warn("clean message refused for good; raw event dead-lettered",
		zap.String("output", output), zap.String("reason", reason), zap.Error(cause))
	return nil
}

// isolateTopics writes the pending messages topic by topic, after a
// whole call failed in a way that names no message (a topic unknown for
// UnknownTopicGrace, a refusal): the messages of a topic whose write still
// fails with an error refusedFor accepts are dead-lettered with reason.
// An unknown dead-letter topic stops the instance.
func (r *Runner) isolateTopics(ctx context.Context, bw *batchWrite, todo []int, reason string, refusedFor func(error) bool) error {
	byTopic := map[string][]int{}
	for _, i := range todo {
		t := bw.res.Out[i].Topic
		byTopic[t] = append(byTopic[t], i)
	}
	for topic, idx := range byTopic {
		msgs := make([]kafka.Message, len(idx))
		for k, i := range idx {
			msgs[k] = bw.res.Out[i]
		}
		err := r.cfg.Producer.WriteMessages(ctx, msgs...)
		if err == nil {
			for _, i := range idx {
				bw.skip[i] = true // written
			}
			continue
		}
		if !refusedFor(err) {
			continue
		}
		if topic == r.cfg.DeadLetterTopic && isUnknownTopic(err) {
			err = fmt.Errorf("dead-letter topic %s does not exist: %w", topic, err)
			r.fail(err)
			return err
		}
		for _, i := range idx {
			if ferr := r.refuse(bw, i, reason, err); ferr != nil {
				return ferr
			}
		}
	}
	return nil
}

func isUnknownTopic(err error) bool { return errors.Is(err, kafka.UnknownTopicOrPartition) }

// indexOf finds, among out[todo], the message m (kafka-go reports a copy).
func indexOf(out []kafka.Message, todo []int, m *kafka.Message) (int, bool) {
	for _, i := range todo {
		o := &out[i]
		if o.Topic == m.Topic && bytes.Equal(o.Key, m.Key) && bytes.Equal(o.Value, m.Value) && len(o.Headers) == len(m.Headers) {
			return i, true
		}
	}
	return 0, false
}
