package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Fake starts an in-process Kafka-protocol broker (kfake) seeded with
// topics of the given partition count, stopped when t ends, and returns
// its address.
func Fake(t testing.TB, partitions int, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// ReadAll reads every message of topic, partition by partition, from its
// first to its last offset at the call.
func ReadAll(t testing.TB, broker, topic string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	offs, err := Offsets(broker, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range offs {
		if o[1] <= o[0] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Dialer: Dialer(broker), Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		_ = r.SetOffset(o[0])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for n := o[0]; n < o[1]; n++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
		}
		cancel()
		r.Close()
	}
	return out
}

// Values counts the messages by value.
func Values(ms []kafka.Message) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		out[string(m.Value)]++
	}
	return out
}
