package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/testing/itest"
)

// explainConfig writes a config with the shipped policy and a fresh key
// (in the environment), with Kafka and Redis at the addresses given.
func explainConfig(t *testing.T, kafkaAddr, redisAddr, prefix string) string {
	t.Helper()
	var kb bytes.Buffer
	if code := run([]string{"keygen", "k1"}, &kb, &kb); code != 0 {
		t.Fatal(kb.String())
	}
	t.Setenv("CONSENTD_EXPLAIN_KEYS", kb.String())
	pol, err := filepath.Abs("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "consentd.yaml")
	content := "kafka:\n  brokers: [\"" + kafkaAddr + "\"]\n  raw_topics: [raw.events]\n  dead_letter_topic: dlq\nredis:\n  addr: " + redisAddr +
		"\n  key_prefix: \"" + prefix + "\"\npseudonymization:\n  key_env: CONSENTD_EXPLAIN_KEYS\npolicy: " + pol + "\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func explainCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(append([]string{"explain"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

const explainEvent = `{"type":"track","event":"Order Completed","userId":"u-4711","anonymousId":"a-9","timestamp":"2026-12-07T10:15:30.123Z","context":{"ip":"203.0.113.77","gpc":true,"page":{"path":"/p/u-4711"}},"properties":{"product_id":"sku-1","title":"mail bob@example.com"}}`

// TestExplainOffline: with consent inline, explain needs no services. It
// says per output what run would do, masks values unless asked, and its
// JSON clean values are what the pipeline renders.
func TestExplainOffline(t *testing.T) {
	cfg := explainConfig(t, "127.0.0.1:1", "127.0.0.1:1", "x:")
	ev := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(ev, []byte(explainEvent), 0o600); err != nil {
		t.Fatal(err)
	}
	all := `{"found":true,"version":3,"purposes":{"personalization":true,"analytics":true,"advertising":true}}`
	code, out, errs := explainCLI(t, ev, "--config", cfg, "--consent", all)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"consent (inline): version 3", "event consent signals: gpc; they deny [advertising]",
		"personalization → clean.personalization: written", "truncate_ip:context.ip", "scrub:*(1 replaced: email)",
		"advertising → clean.advertising: skipped: consent_denied:advertising", "header consentd-consent-version: 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"u-4711", "bob@example.com", "203.0.113", "sku-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("masked explanation shows %q:\n%s", secret, out)
		}
	}

	code, out, errs = explainCLI(t, "--json", "--show-values", "--consent", all, "--config", cfg, ev)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v explanation
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The same event through the pipeline's processor: the same bytes.
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := parseInlineConsent(all)
	p, closeFn, err := app.NewExplainer(c, &rec, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	res, err := p.Process(context.Background(), []kafka.Message{{Topic: "raw.events", Value: []byte(explainEvent)}})
	if err != nil {
		t.Fatal(err)
	}
	var written []explainedOutput
	for _, o := range v.Outputs {
		if o.Written {
			written = append(written, o)
		}
	}
	if len(written) != 2 || len(res.Out) != 2 || v.Subject != "u-4711" {
		t.Fatalf("explained %d written outputs (subject %q), processed %d", len(written), v.Subject, len(res.Out))
	}
	for i, o := range written {
		var compact bytes.Buffer
		if err := json.Compact(&compact, o.Value); err != nil {
			t.Fatal(err)
		}
		if compact.String() != string(res.Out[i].Value) || o.Key != string(res.Out[i].Key) || o.Topic != res.Out[i].Topic {
			t.Errorf("output %s: explained %s key %s, processed %s key %s", o.Name, o.Value, o.Key, res.Out[i].Value, res.Out[i].Key)
		}
	}

	// No record: nothing is written, and it says why.
	code, out, _ = explainCLI(t, ev, "--config", cfg, "--consent", "none")
	if code != 0 || !strings.Contains(out, "no record: nothing granted") || !strings.Contains(out, "written to no output (consent_denied:personalization)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	// An event the pipeline dead-letters is explained as such.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"type":"track","userId":"u1","userId":"u2"}`), 0o600)
	code, out, _ = explainCLI(t, bad, "--config", cfg, "--consent", all)
	if code != 0 || !strings.Contains(out, "DEAD-LETTERED to dlq: duplicate_key") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestExplainRefusesBadInput: every mistake gets a clear message and a
// usage (2) or failure (1) exit, never an explanation of something else.
func TestExplainRefusesBadInput(t *testing.T) {
	cfg := explainConfig(t, "127.0.0.1:1", "127.0.0.1:1", "x:")
	ev := filepath.Join(t.TempDir(), "event.json")
	os.WriteFile(ev, []byte(explainEvent), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no event", []string{"--config", cfg}, 2, "give one event"},
		{"two events", []string{ev, ev, "--config", cfg}, 2, "give one event"},
		{"file and --from", []string{ev, "--from", "raw/0/1", "--config", cfg}, 2, "give one event"},
		{"missing file", []string{"/nonexistent/event.json", "--config", cfg, "--consent", "none"}, 1, "reading the event"},
		{"bad --from", []string{"--from", "raw/x/1", "--config", cfg}, 2, "want TOPIC/PARTITION/OFFSET"},
		{"negative offset", []string{"--from", "raw/0/-1", "--config", cfg}, 2, "want TOPIC/PARTITION/OFFSET"},
		{"bad --consent", []string{ev, "--config", cfg, "--consent", `{"found":true,"purposes":{"a":"yes"}}`}, 2, "--consent"},
		{"unknown field in --consent", []string{ev, "--config", cfg, "--consent", `{"granted":{"a":true}}`}, 2, "--consent"},
		{"unknown output", []string{ev, "--config", cfg, "--consent", "none", "--output", "nope"}, 2, "no such output (it has personalization, analytics, advertising)"},
		{"missing config", []string{ev, "--config", "/nonexistent.yaml"}, 1, "nonexistent.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := explainCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tc.code, tc.want)
			}
		})
	}
	if code, out, _ := explainCLI(t, "--help"); code != 0 || !strings.Contains(out, "Usage: consentd explain") {
		t.Fatalf("--help: exit %d", code)
	}
}

// TestIntegrationExplainFromKafka: explain --from reads the raw event from
// the real broker and decides with the real consent store; an offset past
// the end and a missing topic are clear errors.
func TestIntegrationExplainFromKafka(t *testing.T) {
	env := itest.Require(t)
	id := itest.Unique("explain")
	topic := id + ".raw"
	itest.CreateTopics(t, env.Kafka, 1, topic)
	prefix := id + ":consent:"
	cfg := explainConfig(t, env.Kafka, env.Redis, prefix)
	code, out, errs := run2(t, "consent", "set", "u-4711", "personalization=true", "analytics=true", "--config", cfg)
	if code != 0 {
		t.Fatalf("consent set: %d %s %s", code, out, errs)
	}
	// Collected (and recorded) after the grant: not pre-consent.
	time.Sleep(10 * time.Millisecond)
	ev := strings.Replace(explainEvent, "2026-12-07T10:15:30.123Z", time.Now().UTC().Format(time.RFC3339Nano), 1)
	itest.Produce(t, env.Kafka, topic, kafka.Message{Value: []byte(ev)})
	code, out, errs = explainCLI(t, "--from", topic+"/0/0", "--config", cfg, "--output", "analytics")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"event " + topic + "/0/0", "consent (store): version", "analytics → clean.analytics: written", "header consentd-source: " + topic + "/0/0"} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "personalization →") {
		t.Errorf("--output analytics explained other outputs:\n%s", out)
	}
	// --clean: a clean message traced back to its raw event and decided
	// again. The clean topic gets what the pipeline renders for the raw
	// event at topic/0/0 (as run would write it).
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := app.NewExplainer(c, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	raw, err := app.ReadRaw(context.Background(), c, topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := p.Explain(context.Background(), raw)
	if err != nil || len(ex.Out) != 2 {
		t.Fatalf("explained %d messages, %v", len(ex.Out), err)
	}
	cleanTopic := id + ".clean"
	itest.CreateTopics(t, env.Kafka, 1, cleanTopic)
	written := ex.Out[1] // analytics
	written.Topic = ""
	forged := written
	forged.Value = []byte(strings.Replace(string(written.Value), `"type":"track"`, `"type":"track","email":"bob@example.com"`, 1))
	untraceable := written
	untraceable.Headers = nil
	itest.Produce(t, env.Kafka, cleanTopic, written, forged, untraceable)
	code, out, errs = explainCLI(t, "--clean", cleanTopic+"/0/0", "--config", cfg)
	if code != 0 || !strings.Contains(out, "clean message "+cleanTopic+"/0/0 (output analytics): decided again, the same key and value would be written\n") {
		t.Fatalf("--clean of a faithful message: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ = explainCLI(t, "--clean", cleanTopic+"/0/1", "--config", cfg); code != 0 || !strings.Contains(out, "decided again, it would differ: value") {
		t.Fatalf("--clean of a changed message: exit %d\n%s", code, out)
	}
	if code, _, errs = explainCLI(t, "--clean", cleanTopic+"/0/2", "--config", cfg); code != 1 || !strings.Contains(errs, "is not a clean message consentd can trace back") {
		t.Fatalf("--clean of a message without a source: exit %d, %s", code, errs)
	}
	// Consent withdrawn since (given inline): not written now.
	if code, out, _ = explainCLI(t, "--clean", cleanTopic+"/0/0", "--config", cfg, "--consent", `{"found":true,"version":99,"purposes":{"personalization":true}}`); code != 0 || !strings.Contains(out, "would not be written to output analytics now") {
		t.Fatalf("--clean after a withdrawal: exit %d\n%s", code, out)
	}
	if code, _, errs := explainCLI(t, "--from", topic+"/0/5", "--config", cfg); code != 1 || !strings.Contains(errs, "holds offsets 0 to 0") {
		t.Fatalf("offset past the end: exit %d, %s", code, errs)
	}
	if code, _, errs := explainCLI(t, "--from", topic+"/3/0", "--config", cfg); code != 1 || !strings.Contains(errs, "no partition 3") {
		t.Fatalf("missing partition: exit %d, %s", code, errs)
	}
	if code, _, errs := explainCLI(t, "--from", id+".nope/0/0", "--config", cfg); code != 1 || !strings.Contains(errs, "topic "+id+".nope") {
		t.Fatalf("missing topic: exit %d, %s", code, errs)
	}
}

func run2(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(args, &out, &errs)
	return code, out.String(), errs.String()
}

// TestShadowReportRefusesBadInput: shadow report needs a report topic and
// says so; bad flags are usage errors.
func TestShadowReportRefusesBadInput(t *testing.T) {
	cfg := explainConfig(t, "127.0.0.1:1", "127.0.0.1:1", "x:")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"shadow"}, 2, "consentd shadow report [--since 1h]"},
		{[]string{"shadow", "report", "--config", cfg}, 1, "sets no shadow.report_topic"},
		{[]string{"shadow", "report", "--since", "yesterday", "--config", cfg}, 2, "--since"},
		{[]string{"shadow", "report", "extra", "--config", cfg}, 2, "unexpected argument"},
	} {
		code, _, errs := run2(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if code, out, _ := run2(t, "shadow", "report", "--help"); code != 0 || !strings.Contains(out, "Usage: consentd shadow report") {
		t.Errorf("--help: exit %d", code)
	}
}
