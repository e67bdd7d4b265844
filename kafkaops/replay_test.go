package kafkaops

import (
	"context"
	"errors"
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
	cfg := ReplayConfig{Brokers: []string{broker}, DeadLetterTopic: dlqTopic, RawTopics: []string{rawTopic}, Reasons: []string{"invalid_json"}, Producer: w}

	dry := cfg
	dry.DryRun = true
	rep, err := ReplayDeadLetters(context.Background(), dry)
	if err != nil || rep.Read != 4 || rep.Replayed != 2 || rep.Skipped != 1 || rep.Truncated != 1 {
		t.Fatalf("dry run: %+v err %v", rep, err)
	}
	if got := kafkatest.ReadAll(t, broker, rawTopic); len(got) != 0 {
		t.Fatalf("a dry run wrote %d events", len(got))
	}
	if rep.Reasons["invalid_json"] != 3 || rep.Reasons["invalid_ip"] != 1 || len(rep.Reasons) != 2 {
		t.Fatalf("reasons counted %v", rep.Reasons)
	}
	typo := cfg
	typo.Reasons = []string{"invalid_json", "invalid_jsn"}
	_, err = ReplayDeadLetters(context.Background(), typo)
	var unknown *UnknownReasonError
	if !errors.As(err, &unknown) || err.Error() != "no dead letter has reason invalid_jsn; the reasons present are invalid_json (3), invalid_ip (1)" {
		t.Fatalf("unknown reason: %v", err)
	}
	if got := kafkatest.ReadAll(t, broker, rawTopic); len(got) != 0 {
		t.Fatalf("a replay with an unknown reason wrote %d events", len(got))
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

func TestReplayOnlyToRawTopics(t *testing.T) {
	const rawTopic, dlqTopic, cleanTopic = "raw", "dlq", "clean"
	broker := kafkatest.Fake(t, 1, rawTopic, dlqTopic, cleanTopic)
	w := &kafka.Writer{Addr: kafka.TCP(broker), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	forged := wire.DeadLetter(dlqTopic, &kafka.Message{Topic: cleanTopic, Key: []byte("k"), Value: []byte("{}")}, "invalid_json", "x", "v1")
	if err := w.WriteMessages(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	cfg := ReplayConfig{Brokers: []string{broker}, DeadLetterTopic: dlqTopic, RawTopics: []string{rawTopic}, Producer: w}
	to := cfg
	to.To = cleanTopic
	if _, err := ReplayDeadLetters(context.Background(), to); !errors.Is(err, ErrNotRawTopic) {
		t.Fatalf("--to a clean topic: %v", err)
	}
	none := cfg
	none.RawTopics = nil
	if _, err := ReplayDeadLetters(context.Background(), none); err == nil {
		t.Fatal("a replay without raw topics ran")
	}
	rep, err := ReplayDeadLetters(context.Background(), cfg)
	if err != nil || rep.Foreign != 1 || rep.Replayed != 0 {
		t.Fatalf("a dead letter naming a clean source: %+v err %v", rep, err)
	}
	// Not with --to a raw topic either (a consent record's dead letter
	// must never become a raw event).
	raw := cfg
	raw.To = rawTopic
	if rep, err := ReplayDeadLetters(context.Background(), raw); err != nil || rep.Foreign != 1 || rep.Replayed != 0 {
		t.Fatalf("--to a raw topic, source not raw: %+v err %v", rep, err)
	}
	if got := kafkatest.ReadAll(t, broker, cleanTopic); len(got) != 0 {
		t.Fatalf("%d records written to the clean topic", len(got))
	}
}
