package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestComposeFileIsValid runs `docker compose config` (or Debian's
// docker-compose) on docker-compose.yml: the file is one Compose accepts.
func TestComposeFileIsValid(t *testing.T) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		run(t, root, "docker", "compose", "config", "-q")
		return
	}
	dc := tool(t, "docker-compose")
	run(t, root, dc, "config", "-q")
}

func composeService(t *testing.T, compose map[string]any, name string) map[string]any {
	t.Helper()
	s, ok := at(compose, "services", name).(map[string]any)
	if !ok {
		t.Fatalf("docker-compose.yml has no service %s", name)
	}
	return s
}

func strs(l []any) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i], _ = v.(string)
	}
	return out
}

// uidGid parses a compose user "uid:gid".
func uidGid(t *testing.T, user string) (uint32, uint32) {
	t.Helper()
	u, g, _ := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %q: want numeric uid:gid", user)
	}
	return uint32(uid), uint32(gid)
}

// TestComposeKeyOwnership checks the order and users of the services that
// make and read the pseudonymization key, then runs their commands here, as
// their users, on a directory standing for the keys volume: the key is
// written with mode 0600 by and for consentd's non-root user, consentd
// (that user) reads it, a second run keeps it, and a volume whose key was
// written by root (as the stack used to do) is repaired by secrets-init.
func TestComposeKeyOwnership(t *testing.T) {
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	initSvc := composeService(t, compose, "secrets-init")
	keygen := composeService(t, compose, "consentd-keygen")
	consentd := composeService(t, compose, "consentd")

	// order: secrets-init, then keygen, then consentd, each after the previous one succeeded
	if str(keygen, "depends_on", "secrets-init", "condition") != "service_completed_successfully" ||
		str(consentd, "depends_on", "consentd-keygen", "condition") != "service_completed_successfully" {
		t.Fatal("consentd must wait for consentd-keygen, and consentd-keygen for secrets-init, to complete successfully")
	}
	// users: only secrets-init is root; keygen and consentd are the same non-root user
	if str(initSvc, "user") != "0:0" {
		t.Errorf("secrets-init user %q, want 0:0", str(initSvc, "user"))
	}
	keygenUID, keygenGID := uidGid(t, str(keygen, "user"))
	consentdUID, consentdGID := uidGid(t, str(consentd, "user"))
	if keygenUID == 0 || keygenUID != consentdUID || keygenGID != consentdGID {
		t.Fatalf("keygen runs as %d:%d and consentd as %d:%d; want the same non-root user", keygenUID, keygenGID, consentdUID, consentdGID)
	}
	// volumes: secrets-init and keygen write, consentd only reads
	if !slices.Contains(strs(list(initSvc, "volumes")), "keys:/keys") || !slices.Contains(strs(list(keygen, "volumes")), "keys:/keys") ||
		!slices.Contains(strs(list(consentd, "volumes")), "keys:/keys:ro") {
		t.Fatal("keys volume: want keys:/keys for secrets-init and keygen, keys:/keys:ro for consentd")
	}
	// the image's user and the Dockerfile's /keys owner are the same user
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	owner := "--chown=" + strconv.Itoa(int(consentdUID)) + ":" + strconv.Itoa(int(consentdGID))
	if !bytes.Contains(dockerfile, []byte("mkdir -m 0700 /out/root/keys")) || !bytes.Contains(dockerfile, []byte(owner+" /out/root/ /")) || !bytes.Contains(dockerfile, []byte("USER "+strconv.Itoa(int(consentdUID)))) {
		t.Errorf("the Dockerfile must create /keys %s and run as USER %d", owner, consentdUID)
	}
	// the key file keygen writes is the one consentd's compose config reads
	keygenCmd := strs(list(keygen, "command"))
	out := keygenCmd[slices.Index(keygenCmd, "--out")+1]
	cfg := serviceConfig(t, compose, "consentd")
	if cfg.Pseudonymization.KeyFile != out {
		t.Fatalf("keygen writes %s but consentd reads %s", out, cfg.Pseudonymization.KeyFile)
	}

	if os.Geteuid() != 0 {
		t.Skip("running the containers' commands as their users needs root")
	}
	tool(t, "setpriv")
	bin := consentdBinary(t)
	readKey := func(s *stack) error {
		_, err := runAsErr(consentdUID, consentdGID, bin, "policy", "check", s.at("/etc/consentd/policy.yaml"), "--keys", s.at(out))
		return err
	}

	t.Run("fresh volume", func(t *testing.T) {
		s := newStack(t, bin, nil)
		s.run("secrets-init")
		checkOwner(t, s.at("/keys"), consentdUID, consentdGID, 0o700)
		s.run("consentd-keygen")
		checkOwner(t, s.at(out), consentdUID, consentdGID, 0o600)
		if err := readKey(s); err != nil {
			t.Fatalf("consentd cannot use the key: %v", err)
		}
		before, _ := os.ReadFile(s.at(out))
		// the next `docker compose up` runs both again: the key is kept
		s.run("secrets-init")
		if msg := s.run("consentd-keygen"); !strings.Contains(msg, "keeping its keys") {
			t.Errorf("second keygen: %s", msg)
		}
		after, _ := os.ReadFile(s.at(out))
		if !bytes.Equal(before, after) || len(after) == 0 {
			t.Error("the key changed on the second run")
		}
		checkOwner(t, s.at(out), consentdUID, consentdGID, 0o600)
	})

	t.Run("volume from the old stack, key written by root", func(t *testing.T) {
		s := newStack(t, bin, nil)
		runAs(t, 0, 0, bin, "keygen", "k1", "--out", s.at(out)) // what `user: "0"` used to do
		checkOwner(t, s.at(out), 0, 0, 0o600)
		if err := readKey(s); err == nil {
			t.Fatal("consentd read a root-only key file: the test does not run as the non-root user")
		}
		s.run("secrets-init")
		checkOwner(t, s.at(out), consentdUID, consentdGID, 0o600)
		if err := readKey(s); err != nil {
			t.Fatalf("after secrets-init, consentd cannot use the key: %v", err)
		}
	})
}

func checkOwner(t *testing.T, path string, uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s: owner %d:%d mode %o, want %d:%d %o", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
	}
}

func runAsErr(uid, gid uint32, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func runAs(t *testing.T, uid, gid uint32, name string, args ...string) string {
	t.Helper()
	out, err := runAsErr(uid, gid, name, args...)
	if err != nil {
		t.Fatalf("%s %s as %d:%d: %v\n%s", name, strings.Join(args, " "), uid, gid, err, out)
	}
	return out
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// testVersion is the VERSION the test binary is stamped with.
const testVersion = "deploy-test"

// consentdBinary builds cmd/consentd the way the Dockerfile does, with
// VERSION=testVersion, once per test run.
func consentdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "consentd-deploy-test")
		if binErr != nil {
			return
		}
		_ = os.Chmod(binDir, 0o755)
		binPath = filepath.Join(binDir, "consentd")
		args := dockerfileBuildArgs(t, testVersion, binPath)
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{err: err, out: string(out)}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "building consentd: " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var goBuildLine = regexp.MustCompile(`RUN CGO_ENABLED=0 go build (.*) -o /out/consentd (\./cmd/consentd)`)

// dockerfileBuildArgs returns the Dockerfile's go build arguments with
// ${VERSION} replaced, writing to out.
func dockerfileBuildArgs(t *testing.T, version, out string) []string {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := goBuildLine.FindSubmatch(data)
	if m == nil {
		t.Fatal("the Dockerfile has no `RUN CGO_ENABLED=0 go build ... -o /out/consentd ./cmd/consentd`")
	}
	flags := strings.ReplaceAll(string(m[1]), "${VERSION}", version)
	// split the flags as the shell would: the -ldflags value is quoted
	var args []string
	sc := bufio.NewScanner(strings.NewReader(flags))
	sc.Split(shellWords)
	for sc.Scan() {
		args = append(args, sc.Text())
	}
	return append(append([]string{"build"}, args...), "-o", out, string(m[2]))
}

// shellWords splits on spaces outside double quotes and drops the quotes.
func shellWords(data []byte, atEOF bool) (int, []byte, error) {
	start := 0
	for start < len(data) && data[start] == ' ' {
		start++
	}
	var word []byte
	quoted := false
	for i := start; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			return i + 1, word, nil
		default:
			word = append(word, c)
		}
	}
	if atEOF && len(word) > 0 {
		return len(data), word, nil
	}
	if atEOF {
		return len(data), nil, nil
	}
	return start, nil, nil
}

// TestImageVersionIsStamped builds the binary with the Dockerfile's
// command and a version, and asks it for its version; the Makefile stamps
// the same symbol.
func TestImageVersionIsStamped(t *testing.T) {
	bin := consentdBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "consentd "+testVersion {
		t.Fatalf("version: %q %v", out, err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	df, _ := os.ReadFile(filepath.Join(root, "Dockerfile"))
	sym := regexp.MustCompile(`(?m)^VERSION_SYMBOL \?= (\S+)$`).FindSubmatch(mk)
	if sym == nil || !bytes.Contains(df, []byte("-X "+string(sym[1])+"=${VERSION}")) {
		t.Errorf("the Makefile's VERSION_SYMBOL and the Dockerfile's -X flag differ")
	}
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	if !strings.Contains(str(compose, "x-consentd-build", "args", "VERSION"), "CONSENTD_VERSION") {
		t.Error("docker-compose.yml does not pass a VERSION build argument")
	}
}

// TestDockerignoreKeepsSecretsOut applies .dockerignore with Docker's own
// pattern matcher to the files of this checkout and to typical secret
// names: no key, certificate, token, password or env file enters the build
// context, and everything the binary and the image need does.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(p string) bool {
		ok, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, p := range []string{"configs/pseudonym.keys", "pseudonym.keys", "configs/api-token", "secrets/kafka-password", "deploy/kubernetes/secret.yaml",
		"tls/client.key", "configs/ca.pem", "broker.p12", ".env", "configs/prod.env", ".git/config", "bin/consentd", "consentd", "tmp/state"} {
		if !excluded(p) {
			t.Errorf("%s would enter the build context", p)
		}
	}
	// what the build needs: module files, every Go file cmd/consentd is
	// built from (including embedded files), and the configs the image copies
	needed := []string{"go.mod", "go.sum", "configs/consentd.compose.yaml", "configs/consentd.yaml", "configs/policy.yaml"}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}`, "../cmd/consentd").Output()
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(root)
	for line := range strings.Lines(string(out)) {
		p := strings.TrimSpace(line)
		if rel, ok := strings.CutPrefix(p, abs+"/"); ok {
			needed = append(needed, rel)
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, p := range needed {
		if excluded(p) {
			t.Errorf("%s is needed by the build but excluded", p)
		}
	}
}
