package kafkatest

import (
	"context"
	"testing"

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
	if err := Scan(context.Background(), broker, topic, func(m kafka.Message) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
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
