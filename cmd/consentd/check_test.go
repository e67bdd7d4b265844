package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/metrics"
)

// checkConfig writes a config naming the shipped policy, a key file with
// keyIDs (mode 0600) and admin.listen; the brokers and Redis are
// unreachable, so a command that connected would fail.
func checkConfig(t *testing.T, dir, adminListen string, keyIDs ...string) (cfg, keyFile string) {
	t.Helper()
	keyFile = filepath.Join(dir, "pseudonym.keys")
	for _, id := range keyIDs {
		var o bytes.Buffer
		args := []string{"keygen", id, "--out", keyFile}
		if _, err := os.Stat(keyFile); err == nil {
			args = append(args, "--append")
		}
		if code := run(args, &o, &o); code != 0 {
			t.Fatal(o.String())
		}
	}
	pol, err := filepath.Abs("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "consentd.yaml")
	content := "kafka:\n  brokers: [\"127.0.0.1:1\"]\n  raw_topics: [raw.events]\n  dead_letter_topic: dlq\nredis:\n  addr: 127.0.0.1:1\n" +
		"pseudonymization:\n  key_file: " + keyFile + "\npolicy: " + pol + "\nadmin:\n  listen: \"" + adminListen + "\"\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, keyFile
}

// TestConfigCheck: config check validates the config, the policy it names
// and the key file (key ids, mode) without connecting to anything.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	cfg, keyFile := checkConfig(t, dir, "127.0.0.1:9464", "k1")
	var out, errs bytes.Buffer
	if code := run([]string{"config", "check", "--config", cfg}, &out, &errs); code != 0 || !strings.Contains(out.String(), "config OK") ||
		!strings.Contains(out.String(), "key ids checked against "+keyFile) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), errs.String())
	}
	out.Reset()
	if code := run([]string{"config", "check", "--config", cfg, "--json"}, &out, &errs); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errs.String())
	}
	var sum configSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("--json output %q: %v", out.String(), err)
	}
	if !sum.Policy.KeysChecked || sum.Policy.KeyFile != keyFile || !strings.HasPrefix(sum.Policy.Digest, "sha256:") || len(sum.Policy.Outputs) == 0 ||
		sum.RedisAddrs[0] != "127.0.0.1:1" || sum.API != "" {
		t.Fatalf("summary %+v", sum)
	}

	// A key file without the policy's key id.
	other := t.TempDir()
	noK1, _ := checkConfig(t, other, "127.0.0.1:9464", "k9")
	// A key file others can read.
	open, openKeys := checkConfig(t, t.TempDir(), "127.0.0.1:9464", "k1")
	if err := os.Chmod(openKeys, 0o644); err != nil {
		t.Fatal(err)
	}
	// A config that does not validate.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kafka:\n  brokers: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"missing key id", noK1, `"k1"`},
		{"readable key file", open, "mode 0644"},
		{"invalid config", bad, "kafka.brokers"},
		{"missing config", filepath.Join(dir, "nope.yaml"), "nope.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run([]string{"config", "check", "--config", tc.cfg}, &out, &errs); code != 1 || !strings.Contains(errs.String(), tc.want) || strings.Contains(out.String(), "OK") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out.String(), errs.String(), tc.want)
			}
		})
	}
}

// TestHealthcheck runs healthcheck against the admin server of an App,
// served in-process on a real listener: ready exits 0, a failing
// condition exits 1 with the server's reason, a listener on every
// interface is asked on the loopback, and nothing listening exits 1.
func TestHealthcheck(t *testing.T) {
	ready := &hooks.Readiness{}
	a := &app.App{Config: &config.Config{}, Readiness: ready, Metrics: metrics.New(ready), Log: zap.NewNop()}
	srv := httptest.NewServer(a.AdminHandler())
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := checkConfig(t, t.TempDir(), "0.0.0.0:"+port, "k1")
	hc := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"healthcheck"}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}
	if code, out, errs := hc("--config", cfg); code != 0 || out != "ready\n" {
		t.Fatalf("ready: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, _ := hc("--url", srv.URL+"/readyz"); code != 0 || out != "ready\n" {
		t.Fatalf("--url: exit %d, %q", code, out)
	}
	ready.OnCondition("kafka", errors.New("dial tcp 10.0.0.1:9092: connection refused"))
	code, out, errs := hc("--config", cfg, "--timeout", "5s")
	if code != 1 || out != "" || !strings.Contains(errs, "503") || !strings.Contains(errs, "not ready: kafka") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("not ready: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "10.0.0.1") {
		t.Fatalf("the reason names an address without a token: %q", errs)
	}
	ready.OnCondition("kafka", nil)
	srv.Close()
	if code, _, errs := hc("--config", cfg); code != 1 || !strings.Contains(errs, "127.0.0.1:"+port) {
		t.Fatalf("nothing listening: exit %d, %q", code, errs)
	}
	if code, _, errs := hc("--nope"); code != 1 || !strings.Contains(errs, "--nope") {
		t.Fatalf("a wrong flag exits 1 (Docker reserves 2): exit %d, %q", code, errs)
	}
}
