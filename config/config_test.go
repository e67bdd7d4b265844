package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
kafka:
  brokers: ["127.0.0.1:9092"]
  raw_topics: [raw]
  dead_letter_topic: dlq
pseudonymization:
  key_file: keys
policy: policy.yaml
`

func TestParseAppliesDefaults(t *testing.T) {
	c, err := Parse("/etc/consentd/consentd.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"group", c.Kafka.GroupID, "consentd"},
		{"max bytes", c.Kafka.MaxMessageBytes, 1 << 20},
		{"redis", c.Redis.Addr, "127.0.0.1:6379"},
		{"prefix", c.Redis.KeyPrefix, "consent:"},
		{"cache size", *c.Cache.Size, 100000},
		{"cache ttl", c.Cache.TTL, 2 * time.Second},
		{"cache max bytes", *c.Cache.MaxBytes, 32 << 20},
		{"admin", c.Admin.Listen, "127.0.0.1:9464"},
		{"batch", c.Pipeline.BatchSize, 1000},
		{"produce linger", c.Pipeline.ProduceLinger, 500 * time.Microsecond},
		{"policy path is relative to the file", c.Policy, "/etc/consentd/policy.yaml"},
		{"key path is relative to the file", c.Pseudonymization.KeyFile, "/etc/consentd/keys"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key with line", minimal + "bogus: 1\n", "c.yaml:9: bogus: field bogus not found"},
		{"per_output in the config", strings.Replace(minimal, "  key_file: keys", "  key_file: keys\n  per_output: true", 1), "per_output is a policy setting"},
		{"unknown nested key", strings.Replace(minimal, "raw_topics", "raw_topic", 1), "c.yaml:4: kafka.raw_topic: field raw_topic not found"},
		{"wrong type with key", minimal + "cache:\n  size: lots\n", "c.yaml:10: cache.size: cannot unmarshal"},
		{"bad duration", minimal + "cache:\n  ttl: soon\n", "c.yaml:10: cache.ttl"},
		{"no brokers", strings.Replace(minimal, `brokers: ["127.0.0.1:9092"]`, "brokers: []", 1), "kafka.brokers: at least one"},
		{"broker without port", strings.Replace(minimal, `127.0.0.1:9092`, "localhost", 1), `kafka.brokers: "localhost": want host:port`},
		{"no dlq", strings.Replace(minimal, "dead_letter_topic: dlq", "", 1), "kafka.dead_letter_topic: required"},
		{"dlq is a raw topic", strings.Replace(minimal, "dead_letter_topic: dlq", "dead_letter_topic: raw", 1), "also the dead-letter topic"},
		{"ttl too long", minimal + "cache:\n  ttl: 5m\n", "cache.ttl: 5m0s"},
		{"negative byte budget", minimal + "cache:\n  max_bytes: -1\n", "cache.max_bytes: -1"},
		{"produce linger 1s", minimal + "pipeline:\n  produce_linger: 1s\n", "produce_linger: 1s: must be under 1s"},
		{"both password sources", minimal + "redis:\n  password_file: f\n  password_env: E\n", "at most one of password_file and password_env"},
		{"no keys", strings.Replace(minimal, "key_file: keys", "", 1), "exactly one of key_file and key_env"},
		{"bad log level", minimal + "log:\n  level: loud\n", `log.level: "loud"`},
		{"bad log time format", minimal + "log:\n  time_format: human\n", `log.time_format: "human": want epoch or iso8601`},
		{"two documents", minimal + "---\nkafka: {}\n", "more than one YAML document"},
		{"empty", "", "empty document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSecretsFromFileAndEnvAreNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte(minimal+"redis:\n  password_file: pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Redis.Password) != "s3cret-from-file" {
		t.Fatalf("password not read from file")
	}
	for _, s := range []string{fmt.Sprint(c.Redis), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c.Redis), fmt.Sprint(c.Redis.Password)} {
		if strings.Contains(s, "s3cret") {
			t.Fatalf("secret printed: %s", s)
		}
	}

	t.Setenv("CONSENTD_TEST_PW", "s3cret-from-env")
	if err := os.WriteFile(cfgPath, []byte(minimal+"redis:\n  password_env: CONSENTD_TEST_PW\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(cfgPath); err != nil || string(c.Redis.Password) != "s3cret-from-env" {
		t.Fatalf("env password: %v", err)
	}
	if err := os.WriteFile(cfgPath, []byte(minimal+"redis:\n  password_env: CONSENTD_TEST_UNSET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(cfgPath); err == nil || !strings.Contains(err.Error(), "CONSENTD_TEST_UNSET is not set") {
		t.Fatalf("unset env: %v", err)
	}
}

func TestShippedConfigParses(t *testing.T) {
	data, err := os.ReadFile("../configs/consentd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("../configs/consentd.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != filepath.Join("../configs", "policy.yaml") {
		t.Fatalf("policy = %s", c.Policy)
	}
}

func TestComposeConfigParses(t *testing.T) {
	data, err := os.ReadFile("../configs/consentd.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("../configs/consentd.compose.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Brokers[0] != "kafka:9092" || c.Redis.Addr != "redis:6379" || c.Pseudonymization.KeyFile != "/keys/pseudonym.keys" {
		t.Fatalf("compose config: %+v", c)
	}
}

// TestExampleConfigsParse parses configs/examples/*.yaml: each is a valid
// configuration for the managed service it describes.
func TestExampleConfigsParse(t *testing.T) {
	files, err := filepath.Glob("../configs/examples/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if !c.Kafka.TLS.Enabled || (c.Kafka.SASL.Mechanism == "" && c.Kafka.TLS.CertFile == "") {
			t.Errorf("%s: a managed Kafka example without TLS and authentication", f)
		}
	}
}
