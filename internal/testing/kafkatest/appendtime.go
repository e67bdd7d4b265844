package kafkatest

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ScanAppendTimes is Scan for a topic created with
// message.timestamp.type=LogAppendTime, where each message's Time is the
// broker's append time. kafka-go cannot read those: it reports the
// producer's timestamps (it ignores the batch's max timestamp, where the
// broker writes the append time), so this reads with franz-go, which
// reports the append time. Plaintext brokers only (not those passed to
// Secure). Partitions are read in parallel: fn sees each partition's
// messages in order, partitions interleaved.
func ScanAppendTimes(ctx context.Context, broker, topic string, fn func(kafka.Message) error) error {
	if _, ok := secured.Load(broker); ok {
		return fmt.Errorf("reading append times from %s: only plaintext brokers are supported", broker)
	}
	offs, err := Offsets(broker, topic)
	if err != nil {
		return err
	}
	starts := map[int32]kgo.Offset{}
	left := map[int32]int64{} // messages still to read, by partition
	var total int64
	for p, o := range offs {
		if o[1] > o[0] {
			starts[int32(p)] = kgo.NewOffset().At(o[0])
			left[int32(p)] = o[1] - o[0]
			total += o[1] - o[0]
		}
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(total)*50*time.Microsecond)
	defer cancel()
	for total > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %d messages not read: %w", topic, total, err)
		}
		if err := fs.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			if ferr != nil || left[r.Partition] == 0 {
				return // an error already, or past the end at the call
			}
			left[r.Partition]--
			total--
			ferr = fn(message(r))
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

func message(r *kgo.Record) kafka.Message {
	m := kafka.Message{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset, Key: r.Key, Value: r.Value, Time: r.Timestamp}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return m
}
