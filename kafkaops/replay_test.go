package kafkaops

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/wire"
)

func TestReplayDeadLetters(t *testing.T) {
	const rawTopic, dlqTopic = "raw", "dlq"
	broker := kafkatest.Fake(t, 2, rawTopic, dlqTopic)
	var dls []kafka.Message
	for i, v := range []string{"a", "b", "c", "d"} {
		raw := kafka.Message{Topic: rawTopic, Partition: 1, Offset: int64(i), Key: []byte("k" + v), Value: []byte(v)}
		reason := "invalid_json"
		if v == "c" {
			reason = "invalid_ip"
		}
		dl := wire.DeadLetter(dlqTopic, &raw, reason, "x", "v1")
		if v == "d" {
			dl = wire.Truncate(dl, 1<<20)
		}
		dls = append(dls, dl)
	}
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), dls...); err != nil {
		t.Fatal(err)
	}
	cfg := ReplayConfig{Brokers: []string{broker}, DeadLetterTopic: dlqTopic, Reasons: []string{"invalid_json"}, Producer: w}

	dry := cfg
	dry.DryRun = true
	rep, err := ReplayDeadLetters(context.Background(), dry)
	if err != nil || rep.Read != 4 || rep.Replayed != 2 || rep.Skipped != 1 || rep.Truncated != 1 {
		t.Fatalf("dry run: %+v err %v", rep, err)
	}
	if got := kafkatest.ReadAll(t, broker, rawTopic); len(got) != 0 {
		t.Fatalf("a dry run wrote %d events", len(got))
	}
	rep, err = ReplayDeadLetters(context.Background(), cfg)
	if err != nil || rep.Replayed != 2 {
		t.Fatalf("replay: %+v err %v", rep, err)
	}
	got := kafkatest.Values(kafkatest.ReadAll(t, broker, rawTopic))
	if len(got) != 2 || got["a"] != 1 || got["b"] != 1 {
		t.Fatalf("replayed %v, want a and b (c has another reason, d was truncated)", got)
	}
}
