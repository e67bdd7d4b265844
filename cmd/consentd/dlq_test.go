package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
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
	env, raw, dlq, consentTopic, clean, cfg := dlqSetup(t, 1)
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

// dlqSetup creates a raw, a dead-letter, a consent and a clean topic with
// partitions each, and writes a configuration that names them.
func dlqSetup(t *testing.T, partitions int) (env itest.Env, raw, dlq, consentTopic, clean, cfg string) {
	env = itest.Require(t)
	id := itest.Unique("t")
	raw, dlq, consentTopic, clean = id+".raw", id+".dlq", id+".consent", id+".perso"
	itest.CreateTopics(t, env.Kafka, partitions, raw, dlq, consentTopic, clean)
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
	cfg = write("consentd.yaml", "kafka:\n  brokers: [\""+env.Kafka+"\"]\n  raw_topics: ["+raw+"]\n  dead_letter_topic: "+dlq+
		"\nconsent:\n  topic: "+consentTopic+"\nredis:\n  addr: "+env.Redis+"\npseudonymization:\n  key_file: keys\npolicy: policy.yaml\n")
	return env, raw, dlq, consentTopic, clean, cfg
}

// TestIntegrationDLQReplayByReason: on real Kafka, with dead letters of
// several reasons over several partitions, a dry run counts them by
// reason and writes nothing; a reason no dead letter has is an error that
// lists the reasons present with their counts, prints no report and
// replays nothing; a replay by reason re-injects exactly the dead letters
// of that reason, each once.
func TestIntegrationDLQReplayByReason(t *testing.T) {
	env, raw, dlq, _, _, cfg := dlqSetup(t, 3)
	reasons := map[string]int{"invalid_json": 4, "duplicate_key": 2, "invalid_ip": 1}
	var dls []kafka.Message
	for reason, n := range reasons {
		for i := range n {
			key := fmt.Sprintf("%s-%d", reason, i)
			dl := wire.DeadLetter(dlq, &kafka.Message{Topic: raw, Key: []byte(key), Value: []byte(`{"k":"` + key + `"}`)}, reason, "x", "v1")
			dl.Topic = ""
			dls = append(dls, dl)
		}
	}
	itest.Produce(t, env.Kafka, dlq, dls...)

	replay := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"dlq", "replay", "--config", cfg}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := replay("--dry-run", "--json")
	var rep struct {
		DryRun                                               bool `json:"dry_run"`
		Read, Replayed, Written, Skipped, Truncated, Foreign int
		Reasons                                              map[string]int
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("dry run: exit %d, %v: %s%s", code, err, out, errOut)
	}
	if !rep.DryRun || rep.Read != 7 || rep.Replayed != 7 || rep.Skipped != 0 || !maps.Equal(rep.Reasons, reasons) {
		t.Fatalf("dry run counts %+v, want 7 read and replayable, reasons %v", rep, reasons)
	}
	if rep.Written != 0 {
		t.Fatalf("a dry run wrote %d", rep.Written)
	}
	code, out, _ = replay("--dry-run", "--reason", "duplicate_key, invalid_ip")
	if want := "would replay 3, skipped 4 (other reasons)"; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("dry run by reason: exit %d %s, want %q", code, out, want)
	}

	code, out, errOut = replay("--reason", "invalid_jsn,duplicate_key")
	want := "dlq replay --reason: no dead letter has reason invalid_jsn; the reasons present are invalid_json (4), duplicate_key (2), invalid_ip (1) (in " + dlq + "); nothing was replayed"
	if code == 0 || out != "" || !strings.Contains(errOut, want) {
		t.Fatalf("unknown reason: exit %d, stdout %q, stderr %q\nwant %q", code, out, errOut, want)
	}
	if n := itest.Count(t, env.Kafka, raw); n != 0 {
		t.Fatalf("the raw topic holds %d records after a dry run and a refused replay", n)
	}

	code, out, errOut = replay("--reason", "duplicate_key", "--json")
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Replayed != 2 || rep.Written != 2 || rep.Skipped != 5 {
		t.Fatalf("replay: exit %d %+v %s%s", code, rep, out, errOut)
	}
	got := map[string]int{}
	for _, m := range itest.ReadAll(t, env.Kafka, raw) {
		got[string(m.Key)]++
	}
	if want := map[string]int{"duplicate_key-0": 1, "duplicate_key-1": 1}; !maps.Equal(got, want) {
		t.Fatalf("the raw topic holds %v, want %v", got, want)
	}
}
