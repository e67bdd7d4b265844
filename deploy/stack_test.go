package deploy

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/consentd/consentd/config"
)

// composeConfigPath is where the image keeps the compose configuration
// (the Dockerfile copies configs/ to /etc/consentd).
const composeConfigPath = "/etc/consentd/consentd.compose.yaml"

// stack stands in for the compose stack on this machine: one directory
// plays the containers' file system (the image's /etc/consentd and
// /usr/local/bin/consentd, every named volume at its mount point), and a
// service's command runs here as the service's user, with its
// environment, every container path in its arguments (and in the
// configuration) moved under that directory.
type stack struct {
	t       *testing.T
	compose map[string]any
	root    string            // the containers' "/"
	paths   *strings.Replacer // container path -> path under root
}

// newStack lays out the stack's file system. rewrite, if not nil, edits
// the compose configuration's text (the test services' addresses).
func newStack(t *testing.T, bin string, rewrite func(string) string) *stack {
	t.Helper()
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	dir := t.TempDir()
	// other users must reach the binary, the configuration and the volumes
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	s := &stack{t: t, compose: compose, root: filepath.Join(dir, "root")}
	targets := []string{"/etc/consentd", "/usr/local/bin/consentd"}
	for name := range at(compose, "services").(map[string]any) {
		for _, m := range namedMounts(composeService(t, compose, name)) {
			if !slices.Contains(targets, m.target) {
				targets = append(targets, m.target)
			}
		}
	}
	// longest first: a path inside another target is moved as itself
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	var pairs []string
	for _, p := range targets {
		pairs = append(pairs, p, s.root+p)
		if p != "/usr/local/bin/consentd" && p != "/etc/consentd" {
			// a fresh named volume: an empty directory of root's, mode 0755
			if err := os.MkdirAll(s.root+p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.paths = strings.NewReplacer(pairs...)
	if err := os.MkdirAll(s.root+"/etc/consentd", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.root+"/usr/local/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if bin != "" {
		copyFile(t, bin, s.root+"/usr/local/bin/consentd", 0o755)
	}
	// the image's configuration: the compose configuration and the policy
	for from, to := range map[string]string{"consentd.compose.yaml": composeConfigPath, "policy.yaml": "/etc/consentd/policy.yaml"} {
		text, err := os.ReadFile(filepath.Join(root, "configs", from))
		if err != nil {
			t.Fatal(err)
		}
		out := string(text)
		if rewrite != nil {
			out = rewrite(out)
		}
		if err := os.WriteFile(s.root+to, []byte(s.paths.Replace(out)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// at returns where the container path p is on this machine.
func (s *stack) at(p string) string { return s.paths.Replace(p) }

type mount struct {
	volume, target string
	readOnly       bool
}

// namedMounts returns a service's named-volume mounts (bind mounts of
// the source tree, "./...", are left out).
func namedMounts(svc map[string]any) []mount {
	var out []mount
	for _, v := range strs(list(svc, "volumes")) {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
			continue
		}
		out = append(out, mount{volume: parts[0], target: parts[1], readOnly: len(parts) > 2 && parts[2] == "ro"})
	}
	return out
}

// argv is the service's entrypoint and command, as the file says.
func (s *stack) argv(name string) []string {
	svc := composeService(s.t, s.compose, name)
	return append(strs(list(svc, "entrypoint")), strs(list(svc, "command"))...)
}

// env is the service's environment, as NAME=VALUE.
func (s *stack) env(name string) []string {
	svc := composeService(s.t, s.compose, name)
	var out []string
	m, _ := at(svc, "environment").(map[string]any)
	for k := range m {
		out = append(out, k+"="+str(m, k))
	}
	sort.Strings(out)
	return out
}

// user is the service's uid and gid.
func (s *stack) user(name string) (uint32, uint32) {
	return uidGid(s.t, str(composeService(s.t, s.compose, name), "user"))
}

// command returns the service's command, ready to run as its user with
// its environment; extra arguments are appended.
func (s *stack) command(name string, extra ...string) *exec.Cmd {
	args := append(s.argv(name), extra...)
	uid, _ := s.user(name)
	cmd := s.commandWith(name, args...)
	if caps := strs(list(composeService(s.t, s.compose, name), "cap_add")); slices.Contains(strs(list(composeService(s.t, s.compose, name), "cap_drop")), "ALL") && uid == 0 {
		// root with only the capabilities the service adds back
		bounding := "-all"
		for _, c := range caps {
			bounding += ",+" + strings.ToLower(c)
		}
		cmd.Path, _ = exec.LookPath("setpriv")
		cmd.Args = append([]string{"setpriv", "--bounding-set=" + bounding, "--inh-caps=-all", "--no-new-privs"}, cmd.Args...)
	}
	return cmd
}

// commandWith returns args run as the service's user with its
// environment, container paths moved.
func (s *stack) commandWith(name string, args ...string) *exec.Cmd {
	uid, gid := s.user(name)
	args = slices.Clone(args)
	for i := range args {
		args[i] = s.paths.Replace(args[i])
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, s.env(name)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	return cmd
}

// run runs the service's command to completion and returns its output;
// it fails the test when the command fails.
func (s *stack) run(name string, extra ...string) string {
	s.t.Helper()
	out, err := s.command(name, extra...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("service %s (%s): %v\n%s", name, strings.Join(s.argv(name), " "), err, out)
	}
	return string(out)
}

// serviceConfig parses the compose configuration as the service's
// consentd reads it (with its environment), or returns nil when the
// service does not run consentd with --config.
func serviceConfig(t *testing.T, compose map[string]any, name string) *config.Config {
	t.Helper()
	svc := composeService(t, compose, name)
	args := append(strs(list(svc, "entrypoint")), strs(list(svc, "command"))...)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		return nil
	}
	if args[i+1] != composeConfigPath {
		t.Fatalf("service %s reads %s; the image has configs/ at /etc/consentd", name, args[i+1])
	}
	data, err := os.ReadFile(filepath.Join(root, "configs", "consentd.compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := at(svc, "environment").(map[string]any)
	cfg, err := config.ParseEnv(args[i+1], data, func(k string) (string, bool) {
		if _, ok := env[k]; ok {
			return str(env, k), true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return cfg
}

// consentdServices are the services that run the consentd image.
func consentdServices(t *testing.T, compose map[string]any) []string {
	var out []string
	for name := range at(compose, "services").(map[string]any) {
		if strings.HasPrefix(str(compose, "services", name, "image"), "consentd:") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	if len(out) < 4 {
		t.Fatalf("consentd image services %v: want keygen, topics-init, consentd and cli", out)
	}
	return out
}

// TestComposeHardening: every consentd container runs as the image's
// non-root user on a read-only root, with no capabilities and
// no-new-privileges; every other service has no-new-privileges and drops
// every capability except where its image needs some (listed below, with
// the reason); nothing is published beyond the host's loopback.
func TestComposeHardening(t *testing.T) {
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	// services that keep capabilities, and why
	keepsCaps := map[string]string{
		"redis": "the image's entrypoint changes the data directory's owner and switches to the redis user",
	}
	consentd := consentdServices(t, compose)
	for name := range at(compose, "services").(map[string]any) {
		svc := composeService(t, compose, name)
		if !slices.Contains(strs(list(svc, "security_opt")), "no-new-privileges:true") {
			t.Errorf("%s: no security_opt no-new-privileges:true", name)
		}
		if keepsCaps[name] == "" && !slices.Equal(strs(list(svc, "cap_drop")), []string{"ALL"}) {
			t.Errorf("%s: cap_drop %v, want [ALL]", name, list(svc, "cap_drop"))
		}
		for _, p := range strs(list(svc, "ports")) {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond the host's loopback", name, p)
			}
		}
		if slices.Contains(consentd, name) {
			uid, _ := uidGid(t, str(svc, "user"))
			if uid != 65532 || str(svc, "read_only") != "true" || len(list(svc, "cap_add")) > 0 {
				t.Errorf("%s: user %s, read_only %s, cap_add %v: want 65532, true, none", name, str(svc, "user"), str(svc, "read_only"), list(svc, "cap_add"))
			}
			if str(svc, "entrypoint", 0) != "/usr/local/bin/consentd" {
				t.Errorf("%s: entrypoint %v, want /usr/local/bin/consentd", name, list(svc, "entrypoint"))
			}
		}
	}
	// a shell script stops at its first failure
	for name := range at(compose, "services").(map[string]any) {
		args := append(strs(list(composeService(t, compose, name), "entrypoint")), strs(list(composeService(t, compose, name), "command"))...)
		if i := slices.Index(args, "-c"); i > 0 && strings.HasSuffix(args[i-1], "sh") && i+1 < len(args) && !strings.HasPrefix(strings.TrimSpace(args[i+1]), "set -e") {
			t.Errorf("%s: a shell script that does not start with set -e", name)
		}
	}
	// the only root service adds back what chown and chmod of others' files need
	init := composeService(t, compose, "secrets-init")
	if caps := strs(list(init, "cap_add")); str(init, "read_only") != "true" || !slices.Equal(caps, []string{"CHOWN", "FOWNER", "DAC_OVERRIDE"}) {
		t.Errorf("secrets-init: read_only %s, cap_add %v", str(init, "read_only"), caps)
	}
	// the production binary leaves the demo out
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if args := dockerfileBuildArgs(t, "v", "out"); !slices.Contains(args, "nodemo") || args[slices.Index(args, "nodemo")-1] != "-tags" {
		t.Errorf("the Dockerfile builds %v, want -tags nodemo", args)
	}
	if !bytes.Contains(df, []byte("USER 65532:65532")) {
		t.Error("the Dockerfile does not run as USER 65532:65532")
	}
}

// TestComposeDemoLeftOut: with the nodemo tag, cmd/consentd links none of
// the demo's packages (the in-process broker, miniredis, Lua). Skipped
// while no file of the module has a nodemo build constraint.
func TestComposeDemoLeftOut(t *testing.T) {
	tagged := false
	constraint := regexp.MustCompile(`(?m)^//go:build .*\bnodemo\b`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		b, err := os.ReadFile(path)
		tagged = tagged || constraint.Match(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tagged {
		t.Skip("no file of cmd/consentd has a nodemo build constraint yet")
	}
	deps, err := exec.Command("go", "list", "-deps", "-tags", "nodemo", "../cmd/consentd").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(deps)) {
		if strings.Contains(p, "/internal/demo") || strings.Contains(p, "miniredis") || strings.Contains(p, "gopher-lua") {
			t.Errorf("the nodemo build links %s", p)
		}
	}
}

// TestComposeKafkaListeners: the containers reach Kafka at the address
// consentd's configuration names, the host at a listener published on
// loopback and advertised as that address, and every listener has a
// security protocol.
func TestComposeKafkaListeners(t *testing.T) {
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	kafka := composeService(t, compose, "kafka")
	env := func(k string) string { return str(kafka, "environment", k) }
	listeners := map[string]string{} // name -> port
	for _, l := range strings.Split(env("KAFKA_LISTENERS"), ",") {
		name, addr, _ := strings.Cut(l, "://")
		_, port, _ := strings.Cut(addr, ":")
		listeners[name] = port
	}
	protocols := map[string]string{}
	for _, p := range strings.Split(env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"), ",") {
		name, proto, _ := strings.Cut(p, ":")
		protocols[name] = proto
	}
	for name := range listeners {
		if protocols[name] == "" {
			t.Errorf("listener %s has no security protocol", name)
		}
	}
	advertised := map[string]string{} // name -> host:port
	for _, l := range strings.Split(env("KAFKA_ADVERTISED_LISTENERS"), ",") {
		name, addr, _ := strings.Cut(l, "://")
		advertised[name] = addr
		if _, port, _ := strings.Cut(addr, ":"); listeners[name] != port {
			t.Errorf("advertised listener %s %s: the broker listens on port %s", name, addr, listeners[name])
		}
	}
	if inter := env("KAFKA_INTER_BROKER_LISTENER_NAME"); advertised[inter] == "" {
		t.Errorf("inter-broker listener %q is not advertised", inter)
	}
	cfg := serviceConfig(t, compose, "consentd")
	inNetwork := ""
	for name, addr := range advertised {
		if slices.Contains(cfg.Kafka.Brokers, addr) {
			inNetwork = name
		}
	}
	if inNetwork == "" || !strings.HasPrefix(cfg.Kafka.Brokers[0], "kafka:") {
		t.Errorf("consentd's brokers %v are not an advertised listener of the kafka service (%v)", cfg.Kafka.Brokers, advertised)
	}
	hostListener := ""
	for _, p := range strs(list(kafka, "ports")) {
		// 127.0.0.1:HOSTPORT:CONTAINERPORT
		parts := strings.Split(p, ":")
		if len(parts) != 3 {
			t.Fatalf("kafka port %q: want 127.0.0.1:HOST:CONTAINER", p)
		}
		for name, port := range listeners {
			if port == parts[2] {
				hostListener = name
				if advertised[name] != parts[0]+":"+parts[1] {
					t.Errorf("listener %s is published at %s:%s but advertised as %s", name, parts[0], parts[1], advertised[name])
				}
			}
		}
	}
	if hostListener == "" || hostListener == inNetwork || hostListener == env("KAFKA_CONTROLLER_LISTENER_NAMES") {
		t.Errorf("no listener of its own is published for the host (published: %q)", hostListener)
	}
}

// TestComposeServicesFitTogether: topics come from `consentd topics
// create --alter` (no hand-written loop; settings that differ from the
// policy's are set, not left to block consentd), before consentd starts; consentd's
// healthcheck is `consentd healthcheck` with its own configuration; each
// consentd service finds every file its configuration names on a volume
// it mounts (writable where it writes); the API token and Grafana's
// password come from volumes secrets-init fills, never from the file.
func TestComposeServicesFitTogether(t *testing.T) {
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	text, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(text, []byte("kafka-topics.sh")) || bytes.Contains(text, []byte("kafka-configs.sh")) {
		t.Error("docker-compose.yml creates topics with Kafka's scripts; `consentd topics create` does it")
	}
	consentd := composeService(t, compose, "consentd")
	run := strs(list(consentd, "command"))
	topics := strs(list(composeService(t, compose, "topics-init"), "command"))
	if len(topics) < 2 || topics[0] != "topics" || topics[1] != "create" || !slices.Contains(topics, "--alter") || !slices.Contains(topics, composeConfigPath) {
		t.Errorf("topics-init runs %v, want topics create --alter --config %s", topics, composeConfigPath)
	}
	if str(consentd, "depends_on", "topics-init", "condition") != "service_completed_successfully" ||
		str(composeService(t, compose, "topics-init"), "depends_on", "kafka", "condition") != "service_healthy" {
		t.Error("topics-init must run once Kafka is healthy, and consentd once topics-init succeeded")
	}
	hc := strs(list(consentd, "healthcheck", "test"))
	if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/usr/local/bin/consentd" || hc[2] != "healthcheck" ||
		hc[slices.Index(hc, "--config")+1] != run[slices.Index(run, "--config")+1] {
		t.Errorf("consentd's healthcheck %v, want CMD /usr/local/bin/consentd healthcheck --config (its own)", hc)
	}

	// each volume has one mount point across the stack (so that one
	// directory can stand for it in the tests that run the commands)
	targets := map[string]string{}
	for name := range at(compose, "services").(map[string]any) {
		for _, m := range namedMounts(composeService(t, compose, name)) {
			if _, declared := at(compose, "volumes").(map[string]any)[m.volume]; !declared {
				t.Errorf("%s mounts volume %s, which is not declared", name, m.volume)
			}
			if targets[m.volume] != "" && targets[m.volume] != m.target {
				t.Errorf("volume %s is mounted at %s and at %s", m.volume, targets[m.volume], m.target)
			}
			targets[m.volume] = m.target
		}
	}
	// files each consentd service reads or writes are on its mounts
	for _, name := range consentdServices(t, compose) {
		svc := composeService(t, compose, name)
		mounts := namedMounts(svc)
		on := func(p string, write bool) bool {
			if !write && strings.HasPrefix(p, "/etc/consentd/") {
				return true // in the image
			}
			for _, m := range mounts {
				if strings.HasPrefix(p, m.target+"/") && (!write || !m.readOnly) {
					return true
				}
			}
			return false
		}
		args := append(strs(list(svc, "entrypoint")), strs(list(svc, "command"))...)
		if i := slices.Index(args, "--out"); i >= 0 && !on(args[i+1], true) {
			t.Errorf("%s writes %s, not on a writable volume it mounts", name, args[i+1])
		}
		cfg := serviceConfig(t, compose, name)
		if cfg == nil {
			continue
		}
		for setting, p := range map[string]string{"pseudonymization.key_file": cfg.Pseudonymization.KeyFile, "admin.token_file": cfg.Admin.TokenFile, "policy": cfg.Policy} {
			if p != "" && !on(p, false) {
				t.Errorf("%s: %s %s is on no volume it mounts", name, setting, p)
			}
		}
	}
	// the consent API is on, with the generated token, and published on loopback
	cfg := serviceConfig(t, compose, "consentd")
	if cfg.Admin.TokenFile == "" || !strings.HasPrefix(cfg.Admin.TokenFile, targets["api-token"]+"/") {
		t.Errorf("consentd's admin.token_file %q is not in the api-token volume (%s)", cfg.Admin.TokenFile, targets["api-token"])
	}
	for _, listen := range []string{cfg.Admin.Listen, cfg.Admin.APIListen} {
		_, port, _ := strings.Cut(listen, ":")
		if !slices.Contains(strs(list(consentd, "ports")), "127.0.0.1:"+port+":"+port) {
			t.Errorf("consentd listens on %s, not published as 127.0.0.1:%s:%s", listen, port, port)
		}
	}
	script := strings.Join(strs(list(composeService(t, compose, "secrets-init"), "command")), " ")
	if !strings.Contains(script, cfg.Admin.TokenFile) {
		t.Errorf("secrets-init does not generate %s", cfg.Admin.TokenFile)
	}
	grafana := composeService(t, compose, "grafana")
	pw := str(grafana, "environment", "GF_SECURITY_ADMIN_PASSWORD__FILE")
	if str(grafana, "environment", "GF_SECURITY_ADMIN_PASSWORD") != "" || pw == "" || !strings.HasPrefix(pw, targets["grafana-secrets"]+"/") || !strings.Contains(script, pw) {
		t.Errorf("Grafana's admin password %q: want GF_SECURITY_ADMIN_PASSWORD__FILE in the grafana-secrets volume, generated by secrets-init", pw)
	}
	if str(grafana, "depends_on", "secrets-init", "condition") != "service_completed_successfully" {
		t.Error("grafana must start after secrets-init")
	}
	// the tools are on demand only
	for _, name := range []string{"kcat", "cli"} {
		if !slices.Contains(strs(list(composeService(t, compose, name), "profiles")), "tools") {
			t.Errorf("%s is not in the tools profile", name)
		}
	}
}
