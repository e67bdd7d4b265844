package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/policy"
)

func consentCLI(t *testing.T, cfg string, args ...string) (int, map[string]any, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append(append([]string{"consent"}, args...), "--config", cfg), &out, &errOut)
	var m map[string]any
	if code == 0 {
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("consent %v: output is not JSON: %s", args, out.String())
		}
	}
	return code, m, errOut.String()
}

// TestIntegrationConsentCommands runs every data-subject command against
// the real Redis.
func TestIntegrationConsentCommands(t *testing.T) {
	env := itest.Require(t)
	dir := t.TempDir()
	id := itest.Unique("t")
	policyPath, topics := shippedPolicyOn(t, env.Kafka, id, dir)
	var kb bytes.Buffer
	if code := run([]string{"keygen", "k1"}, &kb, &kb); code != 0 {
		t.Fatal(kb.String())
	}
	t.Setenv("CONSENTD_TEST_KEYS", kb.String())
	cfg := filepath.Join(dir, "consentd.yaml")
	prefix := id + ":consent:"
	content := "kafka:\n  brokers: [\"" + env.Kafka + "\"]\n  raw_topics: [raw]\n  dead_letter_topic: dlq\nredis:\n  addr: " + env.Redis +
		"\n  key_prefix: \"" + prefix + "\"\npseudonymization:\n  key_env: CONSENTD_TEST_KEYS\npolicy: " + policyPath + "\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errs := consentCLI(t, cfg, "set", "u1", "personalization=true", "analytics=false")
	if code != 0 || out["version"] == nil {
		t.Fatalf("set: %d %v %s", code, out, errs)
	}
	// Every data-subject command leaves an audit line: who, what, the
	// subject's pseudonym, never its id.
	keys, err := policy.ParseKeyring("keys", kb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := keys.AppendPseudonym(nil, "k1", []byte("u1"))
	for _, want := range []string{`"msg":"audit"`, `"command":"consent set"`, `"result":"ok"`, `"os_user":`, `"subject_pseudonym":"` + string(p1) + `"`} {
		if !strings.Contains(errs, want) {
			t.Fatalf("audit line %q lacks %s", errs, want)
		}
	}
	if strings.Contains(errs, `"u1"`) {
		t.Fatalf("the audit line holds the subject id: %s", errs)
	}
	if _, _, errs := consentCLI(t, cfg, "set", "u1", "dancing=true"); !strings.Contains(errs, `"result":"refused"`) {
		t.Fatalf("a refused command's audit line: %s", errs)
	}
	v1 := out["version"].(float64)

	_, out, _ = consentCLI(t, cfg, "get", "u1")
	p := out["purposes"].(map[string]any)
	if out["found"] != true || p["personalization"] != true || p["analytics"] != false || p["advertising"] != false || out["version"].(float64) != v1 {
		t.Fatalf("get after set: %v", out)
	}

	code, out, _ = consentCLI(t, cfg, "revoke", "u1", "personalization")
	if code != 0 || out["version"].(float64) <= v1 {
		t.Fatalf("revoke: %v", out)
	}
	// Withdrawing personalization retracts from the outputs that need it.
	if r := fmt.Sprint(out["retracted_from"]); !strings.Contains(r, topics["personalization"]) || !strings.Contains(r, topics["advertising"]) || strings.Contains(r, topics["analytics"]) {
		t.Fatalf("revoke retracted from %v", out["retracted_from"])
	}
	if n := itest.Count(t, env.Kafka, topics["personalization"]); n != 2 {
		t.Fatalf("personalization topic holds %d records after the revoke, want 2 retractions (before the change and after the barrier)", n)
	}
	// Revoking what is already denied retracts nothing.
	if _, out, _ = consentCLI(t, cfg, "revoke", "u1", "personalization"); fmt.Sprint(out["retracted_from"]) != "[]" {
		t.Fatalf("second revoke retracted from %v", out["retracted_from"])
	}
	_, out, _ = consentCLI(t, cfg, "get", "u1")
	if out["purposes"].(map[string]any)["personalization"] != false {
		t.Fatalf("get after revoke: %v", out)
	}

	consentCLI(t, cfg, "set", "u1", "advertising=true")
	consentCLI(t, cfg, "revoke", "u1") // every purpose
	_, out, _ = consentCLI(t, cfg, "get", "u1")
	for name, granted := range out["purposes"].(map[string]any) {
		if granted != false {
			t.Fatalf("revoke without purposes left %s granted: %v", name, out)
		}
	}

	for _, anon := range []string{"anon-1", "anon-2"} {
		if code, out, errs := consentCLI(t, cfg, "link", anon, "u1"); code != 0 || out["linked_to"] != "u1" {
			t.Fatalf("link: %d %v %s", code, out, errs)
		}
	}
	consentCLI(t, cfg, "set", "anon-2", "analytics=true")
	_, out, _ = consentCLI(t, cfg, "export", "u1")
	stored := out["stored"].(map[string]any)
	if stored["redis_key"] != redisstore.RecordKey(prefix, "u1") || stored["fields"].(map[string]any)["_v"] == nil ||
		fmt.Sprint(stored["linked_anonymous_ids"]) != "[anon-1 anon-2]" {
		t.Fatalf("export: %v", out)
	}
	if a2 := out["linked"].(map[string]any)["anon-2"].(map[string]any); a2["linked_to"] != "u1" || a2["fields"].(map[string]any)["analytics"] != "1" {
		t.Fatalf("export of a linked id: %v", a2)
	}
	_, out, _ = consentCLI(t, cfg, "export", "anon-1")
	if out["stored"].(map[string]any)["linked_to"] != "u1" {
		t.Fatalf("export of an anonymous id: %v", out)
	}

	before := itest.Count(t, env.Kafka, topics["analytics"])
	_, out, _ = consentCLI(t, cfg, "erase", "u1")
	if out["erased"] != true || len(out["retracted_from"].([]any)) != 3 || fmt.Sprint(out["erased_linked_ids"]) != "[anon-1 anon-2]" {
		t.Fatalf("erase: %v", out)
	}
	// Three subjects, each retracted before the erasure and after the
	// barrier.
	if n := itest.Count(t, env.Kafka, topics["analytics"]) - before; n != 6 {
		t.Fatalf("the erasure wrote %d retractions to the analytics topic, want 6", n)
	}
	for _, subj := range []string{"u1", "anon-1", "anon-2"} {
		_, out, _ = consentCLI(t, cfg, "export", subj)
		st := out["stored"].(map[string]any)
		if out["consent"].(map[string]any)["found"] != false || len(st["fields"].(map[string]any)) != 0 || st["linked_to"] != nil || len(st["linked_anonymous_ids"].([]any)) != 0 {
			t.Fatalf("export of %s after erase: %v", subj, out)
		}
	}

	for _, bad := range [][]string{
		{"set", "u1", "dancing=true"},
		{"set", "u1", "personalization=maybe"},
		{"set", "u1", "personalization"},
		{"revoke", "u1", "dancing"},
		{"frob", "u1"},
		{"link", "anon-1"},
		{"link", "u1", "u1"},
		{"get"},
	} {
		if code, _, errs := consentCLI(t, cfg, bad...); code != 2 || errs == "" {
			t.Errorf("consent %v: exit %d, stderr %q; want a usage error", bad, code, errs)
		}
	}
	if code, _, errs := consentCLI(t, filepath.Join(dir, "nope.yaml"), "get", "u1"); code != 1 || !strings.Contains(errs, "reading config") {
		t.Errorf("missing config: %d %s", code, errs)
	}
}

// shippedPolicyOn writes into dir the shipped policy with clean topics of
// its own (id + "." + output), created on broker; it returns its path and
// the topics by output.
func shippedPolicyOn(t *testing.T, broker, id, dir string) (string, map[string]string) {
	t.Helper()
	path, topics := shippedPolicyOnly(t, id, dir)
	itest.CreateTopics(t, broker, 1, topics["personalization"], topics["analytics"], topics["advertising"])
	return path, topics
}
