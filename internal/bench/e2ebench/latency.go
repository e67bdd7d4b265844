package e2ebench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/testing/kafkatest"
)

// Raw→clean latency: a paced producer writes raw events at a fixed rate
// to a raw topic while the contender runs; afterwards every clean record
// is matched to its raw event by the event's messageId (every policy of
// the bench keeps it, and the pass-throughs copy it) and its latency is
// the clean record's broker append time minus the raw record's. Both
// topics are created with message.timestamp.type=LogAppendTime, so
// producer clocks and linger do not count.

// Latency is one contender's raw→clean latency at a fixed offered rate.
type Latency struct {
	Offered  float64 // raw events/s asked of the paced producer
	Achieved float64 // raw events/s it achieved
	Events   int     // raw events measured (after the warm-up)
	Samples  int     // clean records measured (one raw event may have several)
	P50, P99 time.Duration
	Max      time.Duration
	// FirstP50 and LastP50 are the p50 over the clean records of the
	// first and of the last tenth of the raw events offered: a contender
	// that falls behind the offered rate has a last one far above the
	// first (see FellBehind).
	FirstP50, LastP50 time.Duration
}

// FellBehind reports whether the latency grew while events were offered:
// the last tenth's p50 over twice the first's and 100ms more.
func (l *Latency) FellBehind() bool {
	return l.LastP50 > 2*l.FirstP50 && l.LastP50-l.FirstP50 > 100*time.Millisecond
}

// sample is the latency of one clean record, by its raw event's sequence
// number.
type sample struct {
	seq int
	d   time.Duration
}

// latencyTopicConfig makes the broker stamp every record with its append
// time.
var latencyTopicConfig = map[string]string{"message.timestamp.type": "LogAppendTime"}

// percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method: the smallest sample with at least q of the
// samples at or below it. 0 for no samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*q + 0.999999999) // ceil, tolerant of float error
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize fills l's percentiles from the samples of the raw events
// numbered first to last.
func (l *Latency) summarize(samples []sample, first, last int) {
	tenth := max((last-first+1)/10, 1)
	var all, early, late []time.Duration
	for _, s := range samples {
		all = append(all, s.d)
		if s.seq < first+tenth {
			early = append(early, s.d)
		}
		if s.seq > last-tenth {
			late = append(late, s.d)
		}
	}
	for _, ds := range [][]time.Duration{all, early, late} {
		slices.Sort(ds)
	}
	l.Samples = len(all)
	l.P50, l.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		l.Max = all[len(all)-1]
	}
	l.FirstP50, l.LastP50 = percentile(early, 0.50), percentile(late, 0.50)
}

var messageIDField = []byte(`"messageId":"msg-`)

// messageSeq returns n of the synthetic messageId "msg-n" in an event.
func messageSeq(v []byte) (int, bool) {
	i := bytes.Index(v, messageIDField)
	if i < 0 {
		return 0, false
	}
	rest := v[i+len(messageIDField):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	return n, err == nil && n > 0
}

// pacedWriter writes raw events at a fixed rate, asynchronously, batching
// no longer than a millisecond; the first error is kept.
type pacedWriter struct {
	w   *kafka.Writer
	mu  sync.Mutex
	err error
}

func newPacedWriter(broker, topic string) *pacedWriter {
	p := &pacedWriter{}
	// A transport of its own: kafka-go's default one caches the cluster's
	// metadata from before topic was created for a few seconds.
	p.w = &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, Transport: &kafka.Transport{},
		Async: true, BatchTimeout: time.Millisecond, BatchSize: 500,
		Completion: func(_ []kafka.Message, err error) {
			if err != nil {
				p.mu.Lock()
				p.err = firstErr(p.err, err)
				p.mu.Unlock()
			}
		}}
	return p
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// write writes msgs at once. A topic just created may be unknown to the
// broker's metadata for a moment: nothing is written then, and it is
// tried again for up to ten seconds.
func (p *pacedWriter) write(ctx context.Context, msgs []kafka.Message) error {
	for attempt := 0; ; attempt++ {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil || !errors.Is(err, kafka.UnknownTopicOrPartition) || attempt == 40 {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pace writes msgs at rate messages/s from now, and returns the rate
// achieved (the last message's due time over the time it was handed to
// the writer).
func (p *pacedWriter) pace(ctx context.Context, msgs []kafka.Message, rate float64) (float64, error) {
	start := time.Now()
	for sent := 0; sent < len(msgs); {
		due := min(int(rate*time.Since(start).Seconds()), len(msgs))
		if due <= sent {
			time.Sleep(time.Millisecond)
			continue
		}
		if err := p.w.WriteMessages(ctx, msgs[sent:due]...); err != nil {
			return 0, err
		}
		sent = due
	}
	return float64(len(msgs)) / time.Since(start).Seconds(), nil
}

// close flushes what is buffered and returns the first write error.
func (p *pacedWriter) close() error {
	err := p.w.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return firstErr(p.err, err)
}

// waitCommitted waits until group has committed n messages of topic, or
// the child exits, or a minute passed.
func waitCommitted(ctx context.Context, c *child, broker, group, topic string, partitions, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := kafkatest.Committed(broker, group, topic, partitions)
		if err == nil && kafkatest.SumCommitted(got) >= int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the contender did not commit its %d warm-up events within a minute (last error: %v)", n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			_, err := c.wait()
			return firstErr(err, errors.New("the contender exited during the warm-up"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// appendTimes returns the append time of every raw event of topic by
// message sequence number.
func appendTimes(ctx context.Context, broker, topic string) (map[int]time.Time, error) {
	at := map[int]time.Time{}
	err := kafkatest.ScanAppendTimes(ctx, broker, topic, func(m kafka.Message) error {
		n, ok := messageSeq(m.Value)
		if !ok {
			return fmt.Errorf("%s/%d/%d: no messageId", m.Topic, m.Partition, m.Offset)
		}
		at[n] = m.Time
		return nil
	})
	return at, err
}

// cleanLatencies reads topic and returns its record count and the
// latency of every record whose raw event's sequence number is above
// warm.
func cleanLatencies(ctx context.Context, broker, topic string, raw map[int]time.Time, warm int, dst []sample) (int64, []sample, error) {
	var n int64
	err := kafkatest.ScanAppendTimes(ctx, broker, topic, func(m kafka.Message) error {
		n++
		seq, ok := messageSeq(m.Value)
		if !ok {
			return fmt.Errorf("%s/%d/%d: no messageId: the latency cannot be matched", m.Topic, m.Partition, m.Offset)
		}
		t, ok := raw[seq]
		if !ok {
			return fmt.Errorf("%s/%d/%d: messageId msg-%d is no raw event", m.Topic, m.Partition, m.Offset, seq)
		}
		if seq > warm {
			dst = append(dst, sample{seq, m.Time.Sub(t)})
		}
		return nil
	})
	return n, dst, err
}
