package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationDLQReplayOnlyToRawTopics: on real Kafka, dlq replay
// refuses a clean, consent or dead-letter topic as --to, and skips dead
// letters whose source is not a raw topic (a forged header), so no raw
// event, raw key or e-mail reaches a clean topic.
func TestIntegrationDLQReplayOnlyToRawTopics(t *testing.T) {
	env := itest.Require(t)
	id := itest.Unique("t")
	raw, dlq, consentTopic, clean := id+".raw", id+".dlq", id+".consent", id+".perso"
	itest.CreateTopics(t, env.Kafka, 1, raw, dlq, consentTopic, clean)
	dir := t.TempDir()
	shipped, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol := strings.Replace(string(shipped), "topic: clean.personalization", "topic: "+clean, 1)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var kb bytes.Buffer
	if code := run([]string{"keygen", "k1"}, &kb, &kb); code != 0 {
		t.Fatal(kb.String())
	}
	write("keys", kb.String())
	write("policy.yaml", pol)
	cfg := write("consentd.yaml", "kafka:\n  brokers: [\""+env.Kafka+"\"]\n  raw_topics: ["+raw+"]\n  dead_letter_topic: "+dlq+
		"\nconsent:\n  topic: "+consentTopic+"\nredis:\n  addr: "+env.Redis+"\npseudonymization:\n  key_file: keys\npolicy: policy.yaml\n")

	ev := []byte(`{"type":"track","userId":"u1","userId":"u2","context":{"traits":{"email":"dana@example.com"}}}`)
	legit := wire.DeadLetter(dlq, &kafka.Message{Topic: raw, Key: []byte("dana@example.com"), Value: ev}, "duplicate_key", "duplicate key", "v1")
	forged := wire.DeadLetter(dlq, &kafka.Message{Topic: clean, Key: []byte("dana@example.com"), Value: ev}, "duplicate_key", "duplicate key", "v1")
	legit.Topic, forged.Topic = "", ""
	itest.Produce(t, env.Kafka, dlq, legit, forged)

	for target, why := range map[string]string{clean: "clean topic of output personalization", dlq: "dead-letter topic", consentTopic: "consent topic", "elsewhere": "not a raw topic"} {
		var out, errOut bytes.Buffer
		code := run([]string{"dlq", "replay", "--to", target, "--config", cfg}, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), why) {
			t.Fatalf("replay --to %s: exit %d, %s%s", target, code, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"dlq", "replay", "--config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("replay: %s%s", out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "replayed 1,") || !strings.Contains(out.String(), "1 not from a raw topic") {
		t.Fatalf("replay report: %s", out.String())
	}
	if n := itest.Count(t, env.Kafka, clean); n != 0 {
		t.Fatalf("the clean topic holds %d records after the replays", n)
	}
	if n := itest.Count(t, env.Kafka, raw); n != 1 {
		t.Fatalf("the raw topic holds %d records, want the one legitimate dead letter", n)
	}
}
