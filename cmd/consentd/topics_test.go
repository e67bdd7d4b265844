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
// create makes it with the settings it must have, check then passes; a
// consent topic that is not compacted and a clean topic with the broker's
// retention are reported and left alone by create, and set to the plan by
// create --alter (not by create --alter --dry-run).
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
	code, out, errs = run2(t, "topics", "create", "--config", cfg)
	if code != 1 || strings.Count(out, "drift") != 2 || !strings.Contains(errs, "--alter") {
		t.Fatalf("create with two topics whose settings differ: exit %d\n%s%s", code, out, errs)
	}

	// --alter --dry-run says what it would alter and changes nothing.
	code, out, errs = run2(t, "topics", "create", "--alter", "--dry-run", "--config", cfg)
	if code != 0 || strings.Count(out, "would alter") != 2 || !strings.Contains(out, `retention.ms is "604800000", want "2592000000"`) {
		t.Fatalf("create --alter --dry-run: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run2(t, "topics", "check", "--config", cfg); code != 1 || strings.Count(out, "drift") != 2 {
		t.Fatalf("check after create --alter --dry-run: exit %d\n%s", code, out)
	}

	// --alter sets them; partition counts are reported, never changed.
	code, out, errs = run2(t, "topics", "create", "--alter", "--json", "--config", cfg)
	var altered []kafkaops.TopicState
	if err := json.Unmarshal([]byte(out), &altered); code != 0 || err != nil {
		t.Fatalf("create --alter: exit %d, %v\n%s%s", code, err, out, errs)
	}
	for _, s := range altered {
		want := "ok"
		if s.Name == other+".consent" || s.Name == other+".advertising" {
			want = "altered"
		}
		if s.State != want {
			t.Errorf("create --alter: %s is %s, want %s (%v)", s.Name, s.State, want, s.Drift)
		}
		if s.HasPartitions != 8 && (len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "never changed")) {
			t.Errorf("create --alter: %s has %d partitions, the plan 8, notes %q", s.Name, s.HasPartitions, s.Notes)
		}
	}
	code, out, errs = run2(t, "topics", "check", "--config", cfg, "--json")
	var after []kafkaops.TopicState
	if err := json.Unmarshal([]byte(out), &after); code != 0 || err != nil {
		t.Fatalf("check after create --alter: exit %d, %v\n%s%s", code, err, out, errs)
	}
	for _, s := range after {
		if s.Name == other+".consent" && s.Current["cleanup.policy"] != "compact" {
			t.Errorf("consent topic after create --alter: %+v", s)
		}
		if s.Name == other+".advertising" && s.Current["retention.ms"] != "2592000000" {
			t.Errorf("advertising topic after create --alter: %+v", s)
		}
	}
	if ps, err := kafkatest.Partitions(env.Kafka, other+".advertising"); err != nil || len(ps) != 1 {
		t.Errorf("%s.advertising has partitions %v (%v) after create --alter, want its 1", other, ps, err)
	}
	if code, out, errs := run2(t, "topics", "create", "--alter", "--config", cfg); code != 0 || strings.Contains(out, "altered") {
		t.Errorf("a second create --alter: exit %d\n%s%s", code, out, errs)
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
