package deploy

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
)

// composeTestRewrite returns the edit that points the compose
// configuration and policy at the test services: Kafka's and Redis's
// addresses, listeners on free loopback ports; and, so that runs do not
// share state, topic names, the group id and the Redis key prefix with a
// unique suffix.
func composeTestRewrite(t *testing.T, env itest.Env, admin, api int) func(string) string {
	t.Helper()
	data, err := os.ReadFile(root + "/configs/consentd.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(composeConfigPath, data)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := os.ReadFile(root + "/configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topics := append(slices.Clone(cfg.Kafka.RawTopics), cfg.Kafka.DeadLetterTopic, cfg.Consent.Topic)
	for _, m := range regexp.MustCompile(`(?m)^\s+topic: (\S+)`).FindAllStringSubmatch(string(pol), -1) {
		topics = append(topics, m[1])
	}
	suffix := itest.Unique("")
	addrs := map[string]string{
		cfg.Kafka.Brokers[0]:             env.Kafka,
		cfg.Redis.Addr:                   env.Redis,
		cfg.Admin.Listen:                 "127.0.0.1:" + strconv.Itoa(admin),
		cfg.Admin.APIListen:              "127.0.0.1:" + strconv.Itoa(api),
		"group_id: " + cfg.Kafka.GroupID: "group_id: consentd" + suffix,
		// Redis keys, and so the revocation barrier's members, of this run only
		`key_prefix: "` + cfg.Redis.KeyPrefix + `"`: `key_prefix: "` + strings.TrimSuffix(cfg.Redis.KeyPrefix, ":") + suffix + `:"`,
	}
	var pairs []string
	for from, to := range addrs {
		if !bytes.Contains(data, []byte(from)) {
			t.Fatalf("configs/consentd.compose.yaml does not say %q", from)
		}
		pairs = append(pairs, from, to)
	}
	for _, tp := range topics {
		pairs = append(pairs, " "+tp+"\n", " "+tp+suffix+"\n", "["+tp+"]", "["+tp+suffix+"]")
	}
	return strings.NewReplacer(pairs...).Replace
}

// TestIntegrationComposeStack runs the compose stack's commands in its
// order, each as its service's user with its environment, against the
// test services (only the addresses rewritten): secrets-init (root, with
// only its added capabilities), consentd-keygen, topics-init (`consentd
// topics create`, then `topics check` agrees and a second create changes
// nothing), consentd itself until ready, its healthcheck, the consent API
// with the generated token, and the cli service.
func TestIntegrationComposeStack(t *testing.T) {
	env := itest.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("running the containers' commands as their users needs root")
	}
	tool(t, "setpriv")
	admin, api := itest.FreePort(t), itest.FreePort(t)
	s := newStack(t, consentdBinary(t), composeTestRewrite(t, env, admin, api))

	s.run("secrets-init")
	s.run("consentd-keygen")
	created := s.run("topics-init")
	if strings.Count(created, "created") < 6 {
		t.Errorf("topics-init created fewer than the 6 topics of the configuration and policy:\n%s", created)
	}
	if out, err := s.commandWith("topics-init", "/usr/local/bin/consentd", "topics", "check", "--config", composeConfigPath).CombinedOutput(); err != nil {
		t.Fatalf("topics check after topics-init: %v\n%s", err, out)
	}
	if again := s.run("topics-init"); strings.Contains(again, "created") {
		t.Errorf("a second topics-init created topics:\n%s", again)
	}

	var logs bytes.Buffer
	run := s.command("consentd")
	run.Stdout, run.Stderr = &logs, &logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = run.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = run.Process.Kill()
			return <-exited
		}
	}
	defer func() { _ = stop() }()
	readyz := "http://127.0.0.1:" + strconv.Itoa(admin) + "/readyz"
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(readyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("consentd exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consentd not ready after 90s\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// the consent API, with the token secrets-init generated
	token, err := os.ReadFile(s.at(serviceConfig(t, s.compose, "consentd").Admin.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(api)+"/v1/consent/user-42", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(strings.TrimSpace(string(token))); code != http.StatusOK {
		t.Errorf("GET /v1/consent/user-42 with the generated token: %d", code)
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/consent/user-42 without a token: %d", code)
	}

	// the tools: the CLI in the stack, as its user
	s.run("cli")
	if out, err := s.commandWith("cli", "/usr/local/bin/consentd", "consent", "get", "user-42", "--config", composeConfigPath).CombinedOutput(); err != nil || !bytes.Contains(out, []byte(`"found"`)) {
		t.Errorf("cli consent get: %v\n%s", err, out)
	}

	t.Run("healthcheck", func(t *testing.T) {
		hc := strs(list(composeService(t, s.compose, "consentd"), "healthcheck", "test"))[1:] // after CMD
		if out, _ := s.commandWith("consentd", "/usr/local/bin/consentd", "healthcheck", "--help").CombinedOutput(); bytes.Contains(out, []byte("unknown command")) {
			t.Skip("this consentd has no healthcheck command yet")
		}
		if out, err := s.commandWith("consentd", hc...).CombinedOutput(); err != nil {
			t.Fatalf("healthcheck of a ready consentd: %v\n%s", err, out)
		}
		if err := stop(); err != nil {
			t.Fatalf("consentd did not stop cleanly: %v\n%s", err, logs.String())
		}
		if out, err := s.commandWith("consentd", hc...).CombinedOutput(); err == nil {
			t.Fatalf("healthcheck passed with consentd stopped:\n%s", out)
		}
	})
	if err := stop(); err != nil {
		t.Fatalf("consentd did not stop cleanly: %v\n%s", err, logs.String())
	}
}
