package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentd/consentd/policy"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kafka:\n  brokers: [\"127.0.0.1:9092\"]\n  raw_topic: [x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [b]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no args", nil, 2, "", "Usage:"},
		{"unknown", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "consentd dev", ""},
		{"--version", []string{"--version"}, 0, "consentd dev", ""},
		{"version --json", []string{"version", "--json"}, 0, `"version": "dev"`, ""},
		{"policy check --json", []string{"policy", "check", "--json", "../../configs/policy.yaml"}, 0, `"digest": "sha256:`, ""},
		{"policy check bad --keys", []string{"policy", "check", "../../configs/policy.yaml", "--keys", filepath.Join(dir, "nope.keys")}, 1, "", "--keys: "},
		{"help COMMAND", []string{"help", "redis", "migrate"}, 0, "--force", ""},
		{"help unknown", []string{"help", "redis", "nope"}, 2, "", `help: unknown command "redis nope"`},
		{"consent without a subject", []string{"consent", "get"}, 2, "", "consent get: missing SUBJECT"},
		{"completion without a shell", []string{"completion"}, 2, "", "completion: missing command"},
		{"help", []string{"help"}, 0, "consentd run --config FILE", ""},
		{"run help", []string{"run", "--help"}, 0, "Usage: consentd run --config FILE", ""},
		{"run bad flag", []string{"run", "--nope"}, 2, "", "run: flag provided but not defined: --nope"},
		{"run bad config", []string{"run", "--config", bad}, 1, "", "bad.yaml:3: kafka.raw_topic: field raw_topic not found"},
		{"run missing config", []string{"run", "--config", filepath.Join(dir, "missing.yaml")}, 1, "", "reading config"},
		{"policy check shipped", []string{"policy", "check", "../../configs/policy.yaml"}, 0, "policy OK", ""},
		{"policy check invalid", []string{"policy", "check", badPolicy}, 1, "", `unknown purpose "b"`},
		{"policy check no file", []string{"policy", "check"}, 2, "", "exactly one FILE"},
		{"policy wrong subcommand", []string{"policy", "lint"}, 2, "", "consentd policy check FILE"},
		{"demo help", []string{"demo", "--help"}, 0, "--duration", ""},
		{"explain help", []string{"explain", "--help"}, 0, "--show-values", ""},
		{"dlq help", []string{"dlq", "--help"}, 0, "consentd dlq replay", ""},
		{"topics help", []string{"topics", "--help"}, 0, "consentd topics create [--partitions N]", ""},
		{"topics create help", []string{"topics", "create", "--help"}, 0, "--partitions", ""},
		{"topics bad verb", []string{"topics", "delete"}, 2, "", `topics: unknown command "delete"`},
		{"redis help", []string{"redis", "--help"}, 0, "consentd redis migrate", ""},
		{"usage names consent link", []string{"help"}, 0, "consent link ANONYMOUS_ID USER_ID", ""},
		{"policy test help", []string{"policy", "test", "--help"}, 0, "--cases", ""},
		{"audit help", []string{"audit", "--help"}, 0, "--accept-policy", ""},
		{"audit bad --since", []string{"audit", "--since", "soon"}, 2, "", "--since"},
		{"shadow report help", []string{"shadow", "report", "--help"}, 0, "--top", ""},
		{"demo bad users", []string{"demo", "--users", "1"}, 1, "", "--users must be at least 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.args) > 0 && tt.args[0] == "demo" && !demoIncluded {
				t.Skip("built with -tags nodemo")
			}
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tt.stdout)
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderr)
			}
		})
	}
}

func TestKeygenProducesAValidKeyFile(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"keygen", "k7"}, &out, &out); code != 0 {
		t.Fatalf("keygen: %s", out.String())
	}
	k, err := policy.ParseKeyring("out", out.Bytes())
	if err != nil || !k.Has("k7") {
		t.Fatalf("keygen output %q: %v", out.String(), err)
	}
	// The generated key checks a policy that uses it.
	keyFile := filepath.Join(t.TempDir(), "keys")
	var o2 bytes.Buffer
	if code := run([]string{"keygen", "k1", "--out", keyFile}, &o2, &o2); code != 0 {
		t.Fatal(o2.String())
	}
	before, _ := os.ReadFile(keyFile)
	if code := run([]string{"keygen", "k1", "--out", keyFile}, &o2, &o2); code != 0 || !strings.Contains(o2.String(), "keeping its keys") {
		t.Fatalf("second keygen: %s", o2.String())
	}
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(before, after) {
		t.Fatal("keygen --out overwrote an existing key file")
	}
	var o3 bytes.Buffer
	if code := run([]string{"policy", "check", "../../configs/policy.yaml", "--keys", keyFile}, &o3, &o3); code != 0 || strings.Contains(o3.String(), "not checked") {
		t.Fatalf("policy check with keys: %s", o3.String())
	}
}

// TestKeyFilesStayPrivate: keygen --append rotates into a private key
// file only, never repeats a key id, and policy check --keys refuses a
// key file others can read (config.CheckSecretFile: the config's readers
// are tested in package config).
func TestKeyFilesStayPrivate(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	var o bytes.Buffer
	if code := run([]string{"keygen", "k1", "--out", keyFile}, &o, &o); code != 0 {
		t.Fatal(o.String())
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode(), err)
	}
	if code := run([]string{"keygen", "k2", "--out", keyFile, "--append"}, &o, &o); code != 0 {
		t.Fatal(o.String())
	}
	data, _ := os.ReadFile(keyFile)
	if k, err := policy.ParseKeyring(keyFile, data); err != nil || !k.Has("k1") || !k.Has("k2") {
		t.Fatalf("after --append: %v\n%s", err, data)
	}
	o.Reset()
	if code := run([]string{"keygen", "k2", "--out", keyFile, "--append"}, &o, &o); code == 0 || !strings.Contains(o.String(), "already holds key k2") {
		t.Fatalf("appending an existing id: %d %s", code, o.String())
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"keygen", "k3", "--out", keyFile, "--append"},
		{"policy", "check", "../../configs/policy.yaml", "--keys", keyFile},
	} {
		o.Reset()
		if code := run(args, &o, &o); code == 0 || !strings.Contains(o.String(), "mode 0644") {
			t.Errorf("%v on a world-readable key file: %d %s", args, code, o.String())
		}
	}
}
