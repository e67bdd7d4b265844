package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalYAML = `
kafka: {brokers: ["127.0.0.1:9092"], raw_topics: [raw], dead_letter_topic: dlq}
pseudonymization: {key_file: keys}
policy: policy.yaml
`

// TestTokenFileMode: the test process owns the files, so a group-readable
// one is refused too.
func TestTokenFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}} {
		dir := t.TempDir()
		tok := filepath.Join(dir, "token")
		if err := os.WriteFile(tok, []byte("token-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tok, tc.mode); err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(dir, "consentd.yaml")
		if err := os.WriteFile(cfgPath, []byte(minimalYAML+"admin: {token_file: token}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(cfgPath)
		if tc.ok {
			if err != nil || string(c.Admin.Token) != "token-0123456789abcdef" {
				t.Errorf("mode %04o: %v", tc.mode, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "admin.token_file") || !strings.Contains(err.Error(), "not be readable by others") {
			t.Errorf("mode %04o: got %v, want a refusal naming admin.token_file", tc.mode, err)
		}
	}
}

func TestAdminListeners(t *testing.T) {
	c, err := Parse("consentd.yaml", []byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != DefaultAdminListen || c.Admin.APIListen != DefaultAPIListen || c.Admin.ReadTimeout <= 0 || c.Admin.WriteTimeout <= 0 || c.Admin.IdleTimeout <= 0 {
		t.Errorf("defaults: %+v", c.Admin)
	}
	for yaml, want := range map[string]string{
		"admin: {listen: 0.0.0.0:9464, api_listen: 0.0.0.0:9464}": "consentd.yaml:1: admin.api_listen",
		"admin: {read_timeout: 0s}":                               "consentd.yaml:1: admin.read_timeout",
		"pipeline: {copy_headers: [consentd-output]}":             "consentd.yaml:1: pipeline.copy_headers",
	} {
		_, err := Parse("consentd.yaml", []byte(yaml+minimalYAML))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
	c, err = Parse("consentd.yaml", []byte("pipeline: {copy_headers: [traceparent, tracestate]}"+minimalYAML))
	if err != nil || strings.Join(c.Pipeline.CopyHeaders, ",") != "traceparent,tracestate" {
		t.Errorf("copy_headers: %v %v", c, err)
	}
}
