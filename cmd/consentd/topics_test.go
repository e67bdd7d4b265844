package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/kafkaops"
)

// TestIntegrationTopics: on real Kafka, check reports what is missing,
// create makes it with the settings it must have, check then passes, and
// a consent topic that is not compacted is reported, never changed.
func TestIntegrationTopics(t *testing.T) {
	env := itest.Require(t)
	id := itest.Unique("topics")
	dir := t.TempDir()
	polPath, _ := shippedPolicyOnly(t, id, dir)
	cfg := explainConfig(t, env.Kafka, env.Redis, id+":")
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "policy: ", "policy: "+polPath+"\n# was: ", 1)
	text = strings.Replace(text, "raw_topics: [raw.events]", "raw_topics: ["+id+".raw]", 1)
	text = strings.Replace(text, "dead_letter_topic: dlq", "dead_letter_topic: "+id+".dlq", 1)
	text += "consent:\n  topic: " + id + ".consent\n"
	os.WriteFile(cfg, []byte(text), 0o600)

	code, out, errs := run2(t, "topics", "check", "--config", cfg, "--json")
	var states []kafkaops.TopicState
	if err := json.Unmarshal([]byte(out), &states); code != 1 || err != nil || len(states) != 6 {
		t.Fatalf("check before: exit %d, %v, %s %s", code, err, out, errs)
	}
	for _, s := range states {
		if s.State != "missing" {
			t.Errorf("%s: %s before anything was created", s.Name, s.State)
		}
	}
	if code, out, _ := run2(t, "topics", "create", "--dry-run", "--config", cfg); code != 0 || strings.Count(out, "would create") != 6 {
		t.Fatalf("create --dry-run: exit %d\n%s", code, out)
	}
	if code, out, errs := run2(t, "topics", "create", "--partitions", "3", "--config", cfg); code != 0 || strings.Count(out, "created") != 6 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := run2(t, "topics", "check", "--config", cfg); code != 0 || strings.Count(out, "ok ") != 6 {
		t.Fatalf("check after create: exit %d\n%s%s", code, out, errs)
	}
	if ps, err := kafkatest.Partitions(env.Kafka, id+".analytics"); err != nil || len(ps) != 3 {
		t.Fatalf("%s.analytics has partitions %v (%v), want 3", id, ps, err)
	}

	// A consent topic made by hand without compaction is drift.
	other := id + "b"
	text2 := strings.Replace(text, id+".consent", other+".consent", 1)
	os.WriteFile(cfg, []byte(text2), 0o600)
	itest.CreateTopics(t, env.Kafka, 1, other+".consent")
	code, out, _ = run2(t, "topics", "create", "--config", cfg)
	if code != 1 || !strings.Contains(out, `drift`) || !strings.Contains(out, `cleanup.policy is "delete", want "compact"`) {
		t.Fatalf("a consent topic that is not compacted: exit %d\n%s", code, out)
	}

	// Clean topics got the retention their output names; one made by
	// hand with the broker's default retention is drift.
	var states2 []kafkaops.TopicState
	_, out, _ = run2(t, "topics", "check", "--config", cfg, "--json")
	if err := json.Unmarshal([]byte(out), &states2); err != nil {
		t.Fatal(err)
	}
	for _, s := range states2 {
		if s.Name == id+".advertising" && (s.State != "ok" || s.Configs["retention.ms"] != "2592000000") {
			t.Errorf("advertising topic: %+v, want ok with retention.ms 2592000000 (720h)", s)
		}
	}
	pol2 := strings.Replace(mustRead(t, polPath), "topic: "+id+".advertising", "topic: "+other+".advertising", 1)
	os.WriteFile(polPath, []byte(pol2), 0o600)
	itest.CreateTopics(t, env.Kafka, 1, other+".advertising")
	code, out, _ = run2(t, "topics", "check", "--config", cfg)
	if code != 1 || !strings.Contains(out, other+".advertising") || !strings.Contains(out, `retention.ms is "604800000", want "2592000000"`) {
		t.Fatalf("a clean topic with the broker's retention: exit %d\n%s", code, out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shippedPolicyOnly writes the shipped policy with clean topics of its
// own (id.<output>), without creating them.
func shippedPolicyOnly(t *testing.T, id, dir string) (string, map[string]string) {
	t.Helper()
	shipped, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol := string(shipped)
	topics := map[string]string{}
	for _, o := range []string{"personalization", "analytics", "advertising"} {
		topics[o] = id + "." + o
		pol = strings.Replace(pol, "topic: clean."+o, "topic: "+topics[o], 1)
	}
	path := dir + "/policy.yaml"
	if err := os.WriteFile(path, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, topics
}
