package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/wire"
)

// This file is where clean messages and dead letters are written to
// Kafka. Retrying (retry.Do with the Kafka error table, kafkax.Classify)
// and dead-lettering what Kafka refuses for good (refuse) are separate
// steps, composed in write.

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

// sink writes decided batches. One per Runner; safe for concurrent use.
type sink struct {
	producer        Producer
	deadLetterTopic string
	maxWriteBytes   int
	backoff         retry.Backoff
	hooks           hooks.List
	// fail stops the instance: nothing it writes will be accepted.
	fail func(error)
	// loop is the produce loop: each partition's writes report their
	// transient failures and successes to a Member of it.
	loop *outage.Loop
}

// stopError is an attempt's error after which nothing is retried: the
// instance cannot write at all (fail was called), or the write fence
// closed (errFenceClosed).
type stopError struct{ err error }

// errFenceClosed stops a write whose retry found the write fence closed.
var errFenceClosed = errors.New("write fence closed while retrying")

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// stopClass is the sink's classifier for retry.Do: an attempt handles
// refusals itself, so only a stop is not transient.
func stopClass(err error) retry.Class {
	var se *stopError
	if errors.As(err, &se) {
		return retry.Fatal
	}
	return retry.Transient
}

// outbox is one decided batch on its way out. The Result stays frozen:
// msgs starts as res.Out and is copied before its first replacement.
type outbox struct {
	raw    []kafka.Message
	res    *Result
	msgs   []kafka.Message
	copied bool
	done   []bool       // written, or replaced by an earlier dead letter
	dead   map[int]bool // raw indexes dead-lettered by the sink
	report WriteReport
	// unknownSince is when the pending messages' topic was first unknown.
	unknownSince time.Time
}

func newOutbox(raw []kafka.Message, res *Result) *outbox {
	return &outbox{raw: raw, res: res, msgs: res.Out, done: make([]bool, len(res.Out))}
}

// set replaces message i.
func (o *outbox) set(i int, m kafka.Message) {
	if !o.copied {
		o.msgs = slices.Clone(o.msgs)
		o.copied = true
	}
	o.msgs[i] = m
}

// pending returns the indexes of the messages not written yet.
func (o *outbox) pending() []int {
	var out []int
	for i, d := range o.done {
		if !d {
			out = append(out, i)
		}
	}
	return out
}

func (o *outbox) gather(idx []int) []kafka.Message {
	msgs := make([]kafka.Message, len(idx))
	for k, i := range idx {
		msgs[k] = o.msgs[i]
	}
	return msgs
}

// write writes res.Out, retrying transient failures with backoff until
// every message is acknowledged. Messages Kafka refuses for good are
// replaced by dead letters (a dead letter too large is truncated) and
// reported, so one message never blocks the others. It returns an error
// when writing is abandoned: ctx (fetching) ended, or the instance cannot
// write at all. Writes themselves run under writeCtx, which outlives ctx
// by the shutdown grace.
//
// loop is the partition's Member of the produce loop, and cond its
// readiness condition (PartitionCond): failing while writes fail, so that
// /readyz names the stuck partition and why.
func (s *sink) write(ctx, writeCtx context.Context, raw []kafka.Message, res *Result, loop *outage.Loop, cond string, open func() bool, log *zap.Logger) (*WriteReport, error) {
	o := newOutbox(raw, res)
	if err := s.refuseOversized(o); err != nil {
		return nil, err
	}
	first := true
	err := retry.Do(ctx, retry.Policy{
		Backoff:  s.backoff,
		Classify: stopClass,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			s.hooks.Condition(cond, err)
			loop.Failed(err)
			log.Debug("produce failed; retrying", zap.Int("attempt", attempt), zap.Int("messages", len(o.pending())), zap.Duration("retry_in", wait), zap.Error(err))
		},
	}, func() error {
		if !first && !open() {
			// The lease ended while this write was retried: a revoker may
			// have stopped waiting for it. Stop; the batch is begun again.
			return &stopError{errFenceClosed}
		}
		first = false
		return s.attempt(writeCtx, o)
	})
	if errors.Is(err, errFenceClosed) {
		log.Warn("the revocation barrier lease ended while a write was retried; writing the batch again once rejoined", zap.Int("messages", len(o.pending())))
		return nil, err
	}
	if err != nil {
		// Abandoned, not acknowledged: this write stops retrying and
		// withdraws its failure (the next write reports again).
		loop.Close()
		if stopClass(err) != retry.Fatal {
			s.hooks.Condition(cond, err)
			log.Warn("abandoning unacknowledged writes; they will be redelivered", zap.Int("messages", len(o.pending())), zap.Error(err))
		}
		return nil, err
	}
	s.hooks.Condition(cond, nil)
	loop.OK()
	return &o.report, nil
}

// refuseOversized dead-letters, before any write, the clean messages
// larger than the topics accept.
func (s *sink) refuseOversized(o *outbox) error {
	for i := range o.msgs {
		if n := wire.Size(&o.msgs[i]); n > s.maxWriteBytes && !o.done[i] {
			if err := s.refuse(o, i, ReasonOutputTooLarge, fmt.Errorf("message of %d bytes exceeds the %d bytes the topic accepts", n, s.maxWriteBytes)); err != nil {
				return err
			}
		}
	}
	return nil
}

// produce is the one place the sink calls the Producer: every call is
// reported to the hooks.
func (s *sink) produce(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	err := s.producer.WriteMessages(ctx, msgs...)
	hooks.Each(s.hooks, func(h ProduceHook) { h.OnProduce(time.Since(start), len(msgs), err) })
	return err
}

// attempt writes the pending messages once. nil: all written; a
// *stopError: stop; any other error: some are still pending.
func (s *sink) attempt(ctx context.Context, o *outbox) error {
	todo := o.pending()
	if len(todo) == 0 {
		return nil
	}
	err := s.produce(ctx, o.gather(todo))
	if err == nil {
		for _, i := range todo {
			o.done[i] = true
		}
		return nil
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == len(todo) {
		if serr := s.perMessage(o, todo, werrs); serr != nil {
			return serr
		}
	} else if serr := s.wholeCall(ctx, o, todo, err); serr != nil {
		return serr
	}
	if len(o.pending()) == 0 {
		return nil
	}
	return err
}

// perMessage sorts a partial failure: written messages are done, refused
// ones dead-lettered; the rest stay pending.
func (s *sink) perMessage(o *outbox, todo []int, werrs kafka.WriteErrors) error {
	for k, e := range werrs {
		i := todo[k]
		if e == nil {
			o.done[i] = true
			continue
		}
		switch kafkax.Classify(e) {
		case retry.Fatal:
			return s.stop(fmt.Errorf("writing to %s: %w", o.msgs[i].Topic, e))
		case retry.Refused:
			if err := s.refuse(o, i, ReasonWriteRefused, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// wholeCall sorts a failure that names no message: an authorization
// failure stops; a topic unknown for UnknownTopicGrace, or a refusal, is
// narrowed down topic by topic (kafka-go's own size check names its
// message).
func (s *sink) wholeCall(ctx context.Context, o *outbox, todo []int, err error) error {
	switch {
	case kafkax.Classify(err) == retry.Fatal:
		return s.stop(fmt.Errorf("writing: %w", err))
	case kafkax.IsUnknownTopic(err):
		if o.unknownSince.IsZero() {
			o.unknownSince = time.Now()
		} else if time.Since(o.unknownSince) >= UnknownTopicGrace {
			o.unknownSince = time.Time{}
			return s.isolateTopics(ctx, o, todo, ReasonTopicUnknown, kafkax.IsUnknownTopic)
		}
	case kafkax.Classify(err) == retry.Refused:
		var tooLarge kafka.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			if i, ok := indexOf(o.msgs, todo, &tooLarge.Message); ok {
				return s.refuse(o, i, ReasonWriteRefused, err)
			}
			return nil
		}
		return s.isolateTopics(ctx, o, todo, ReasonWriteRefused, func(e error) bool { return kafkax.Classify(e) == retry.Refused })
	}
	return nil
}

func (s *sink) stop(err error) error {
	s.fail(err)
	return &stopError{err}
}

// refuse replaces message i, which Kafka will never take, by the dead
// letter of its raw event (once per raw event; the event's other refused
// clean messages are dropped), or, when it is a dead letter already, by
// its truncated form. A truncated dead letter that is refused too means
// the dead-letter topic takes nothing: the instance stops.
func (s *sink) refuse(o *outbox, i int, reason string, cause error) error {
	m := &o.msgs[i]
	if wire.IsDeadLetter(m) {
		if wire.Header(m, wire.HeaderDLQTruncated) != nil {
			return s.stop(fmt.Errorf("dead-letter topic %s refuses even a truncated dead letter: %w", m.Topic, cause))
		}
		o.set(i, wire.Truncate(*m, s.maxWriteBytes))
		return nil
	}
	origin := o.res.Origin[i]
	output := string(wire.Header(m, wire.HeaderOutput))
	first := !o.dead[origin]
	o.report.Refused = append(o.report.Refused, Refusal{Output: output, Reason: reason, DeadLettered: first, Origin: origin})
	if !first {
		o.done[i] = true
		return nil
	}
	if o.dead == nil {
		o.dead = map[int]bool{}
	}
	o.dead[origin] = true
	dl := wire.DeadLetter(s.deadLetterTopic, &o.raw[origin], reason, fmt.Sprintf("clean write to output %s refused: %v", output, cause), string(wire.Header(m, wire.HeaderPolicyVersion)))
	if wire.Size(&dl) > s.maxWriteBytes {
		dl = wire.Truncate(dl, s.maxWriteBytes)
	}
	o.set(i, dl)
	return nil
}

// isolateTopics writes the pending messages topic by topic, after a
// whole call failed in a way that names no message (a topic unknown for
// UnknownTopicGrace, a refusal): the messages of a topic whose write still
// fails with an error refusedFor accepts are dead-lettered with reason.
// An unknown dead-letter topic stops the instance.
func (s *sink) isolateTopics(ctx context.Context, o *outbox, todo []int, reason string, refusedFor func(error) bool) error {
	var topics []string
	byTopic := map[string][]int{}
	for _, i := range todo {
		t := o.msgs[i].Topic
		if byTopic[t] == nil {
			topics = append(topics, t)
		}
		byTopic[t] = append(byTopic[t], i)
	}
	for _, topic := range topics {
		idx := byTopic[topic]
		err := s.produce(ctx, o.gather(idx))
		if err == nil {
			for _, i := range idx {
				o.done[i] = true
			}
			continue
		}
		if !refusedFor(err) {
			continue
		}
		if topic == s.deadLetterTopic && kafkax.IsUnknownTopic(err) {
			return s.stop(fmt.Errorf("dead-letter topic %s does not exist: %w", topic, err))
		}
		for _, i := range idx {
			if ferr := s.refuse(o, i, reason, err); ferr != nil {
				return ferr
			}
		}
	}
	return nil
}

// indexOf finds, among msgs[todo], the message m (kafka-go reports a
// copy).
func indexOf(msgs []kafka.Message, todo []int, m *kafka.Message) (int, bool) {
	for _, i := range todo {
		o := &msgs[i]
		if o.Topic == m.Topic && bytes.Equal(o.Key, m.Key) && bytes.Equal(o.Value, m.Value) && len(o.Headers) == len(m.Headers) {
			return i, true
		}
	}
	return 0, false
}
