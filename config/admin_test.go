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

// TestSecretFilesMustBePrivate: every secret file the configuration names
// (passwords, TLS private keys, the pseudonymization key file) is refused
// when others can read it, with the setting named, and read when private.
func TestSecretFilesMustBePrivate(t *testing.T) {
	for _, tc := range []struct{ setting, yaml string }{
		{"redis.password_file", "redis: {password_file: secret}\n"},
		{"redis.sentinel_password_file", "redis: {mode: sentinel, addrs: [\"127.0.0.1:26379\"], master_name: m, sentinel_password_file: secret}\n"},
		{"kafka.sasl.password_file", "kafka_sasl\n"},
		{"kafka.tls.key_file", "kafka_tls\n"},
		{"redis.tls.key_file", "redis: {tls: {enabled: true, cert_file: cert, key_file: secret}}\n"},
		{"pseudonymization.key_file", ""},
	} {
		for _, mode := range []os.FileMode{0o644, 0o604, 0o640, 0o600} {
			dir := t.TempDir()
			for _, f := range []string{"secret", "cert", "keys"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := "secret"
			if tc.setting == "pseudonymization.key_file" {
				target = "keys"
			}
			if err := os.Chmod(filepath.Join(dir, target), mode); err != nil {
				t.Fatal(err)
			}
			kafka, extra := `kafka: {brokers: ["127.0.0.1:9092"], raw_topics: [raw], dead_letter_topic: dlq`, tc.yaml
			switch tc.yaml {
			case "kafka_sasl\n":
				kafka, extra = kafka+`, tls: {enabled: true}, sasl: {mechanism: SCRAM-SHA-512, username: u, password_file: secret}`, ""
			case "kafka_tls\n":
				kafka, extra = kafka+`, tls: {enabled: true, cert_file: cert, key_file: secret}`, ""
			}
			cfgPath := filepath.Join(dir, "consentd.yaml")
			body := kafka + "}\npseudonymization: {key_file: keys}\npolicy: policy.yaml\n" + extra
			if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(cfgPath)
			if err == nil {
				_, _, err = c.KeyMaterial()
			}
			if mode == 0o600 {
				if err != nil {
					t.Errorf("%s mode 0600: %v", tc.setting, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), "not be readable by others") {
				t.Errorf("%s mode %04o: got %v, want a refusal naming the setting", tc.setting, mode, err)
			}
		}
	}
}

func TestTokenFile(t *testing.T) {
	for _, tc := range []struct {
		name, file, err string
		want            []string // name:scopes
	}{
		{"one token", "single-token-0123456789\n", "", []string{"admin:read,write,admin"}},
		{"named", "# ops\nops:read,write,admin:ops-token-0123456789\n\nauditor:read:auditor-token-01234567\n", "", []string{"ops:read,write,admin", "auditor:read"}},
		{"unknown scope", "ops:read,delete:ops-token-0123456789\n", `unknown scope "delete"`, nil},
		{"short", "ops:read:short\n", "at least 16", nil},
		{"twice", "a:read:aaaa-token-0123456789\na:write:bbbb-token-0123456789\n", "used twice", nil},
		{"same secret", "a:read:aaaa-token-0123456789\nb:write:aaaa-token-0123456789\n", "the same token as a", nil},
		{"bad line", "a:read:aaaa-token-0123456789\nno-colons-here-0123456789\n", "line 2: want NAME:SCOPES:TOKEN", nil},
		{"empty", "\n# nothing\n", "no token", nil},
	} {
		toks, err := parseTokens(tc.file)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "0123456789") {
				t.Errorf("%s: err %v, want %q without the secret", tc.name, err, tc.err)
			}
			continue
		}
		var got []string
		for _, tk := range toks {
			got = append(got, tk.Name+":"+strings.Join(tk.Scopes, ","))
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}
