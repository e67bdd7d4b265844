package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
)

// A README.md code block and what precedes it.
type readmeBlock struct {
	line   int    // of the opening fence
	lang   string // the fence's info string
	marker string // an HTML comment on the line before the fence, if any
	text   string
}

// notRun is the marker of a shell block the README test does not run:
// <!-- not run: REASON -->.
var notRun = regexp.MustCompile(`^<!-- not run: (\S.*) -->$`)

// shellLangs are the info strings of command blocks.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeBlock
	var cur *readmeBlock
	prev := ""
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &readmeBlock{line: i + 1, lang: strings.TrimSpace(strings.TrimPrefix(l, "```"))}
			if strings.HasPrefix(prev, "<!--") {
				cur.marker = prev
			}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
		if strings.TrimSpace(l) != "" {
			prev = strings.TrimSpace(l)
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code block that is not closed", cur.line)
	}
	return out
}

// commands splits a shell block into command lines: continuations
// joined, blank and comment-only lines left out.
func commands(text string) []string {
	var out []string
	var cur string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		l = cur + l
		cur = ""
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, t)
		}
	}
	return out
}

// needsWhatTestsLack are programs no test machine offers: a block using
// one must be marked not run.
var needsWhatTestsLack = regexp.MustCompile(`(^|[|;&(]\s*)(docker|docker-compose|kubectl|helm|make)\s`)

// TestReadmeShellBlocks: every shell block of README.md is either run by
// TestIntegrationReadme or marked `<!-- not run: REASON -->`, and a block
// that needs Docker, Kubernetes or the test suite itself is marked. Markers
// stand only before shell blocks.
func TestReadmeShellBlocks(t *testing.T) {
	run := 0
	for _, b := range readmeBlocks(t) {
		m := notRun.FindStringSubmatch(b.marker)
		if !shellLangs[b.lang] {
			if m != nil {
				t.Errorf("README.md:%d: a not-run marker before a %q block", b.line, b.lang)
			}
			continue
		}
		if m != nil {
			continue
		}
		if strings.HasPrefix(b.marker, "<!-- not run") {
			t.Errorf("README.md:%d: marker %q: want <!-- not run: REASON -->", b.line, b.marker)
		}
		for _, c := range commands(b.text) {
			if needsWhatTestsLack.MatchString(c) {
				t.Errorf("README.md:%d: %q cannot run in a test: mark the block <!-- not run: REASON -->", b.line, c)
			}
		}
		run++
	}
	if run < 5 {
		t.Errorf("only %d shell blocks of README.md are run", run)
	}
}

// TestReadmePolicyExcerpt: the YAML block marked as an excerpt of
// configs/policy.yaml is a sub-document of it: every key it has, the
// shipped policy has with the same value; outputs are matched by name;
// other lists are equal. Comments may differ.
func TestReadmePolicyExcerpt(t *testing.T) {
	var shipped any
	data, err := os.ReadFile(filepath.Join(root, "configs", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.marker != "<!-- excerpt of configs/policy.yaml -->" {
			continue
		}
		n++
		var excerpt any
		if err := yaml.Unmarshal([]byte(b.text), &excerpt); err != nil {
			t.Fatalf("README.md:%d: %v", b.line, err)
		}
		for _, d := range subDocument("", excerpt, shipped) {
			t.Errorf("README.md:%d: %s", b.line, d)
		}
	}
	if n == 0 {
		t.Fatal("README.md has no block marked <!-- excerpt of configs/policy.yaml -->")
	}
}

// subDocument returns where part says something whole does not.
func subDocument(path string, part, whole any) []string {
	switch p := part.(type) {
	case map[string]any:
		w, ok := whole.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: a mapping where the policy has %v", path, whole)}
		}
		var out []string
		for k, v := range p {
			wv, ok := w[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: not in the policy", path, k))
				continue
			}
			out = append(out, subDocument(path+"."+k, v, wv)...)
		}
		return out
	case []any:
		w, ok := whole.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: a list where the policy has %v", path, whole)}
		}
		if named(p) && named(w) {
			var out []string
			for _, e := range p {
				name := e.(map[string]any)["name"]
				found := false
				for _, we := range w {
					if we.(map[string]any)["name"] == name {
						found = true
						out = append(out, subDocument(fmt.Sprintf("%s[%v]", path, name), e, we)...)
					}
				}
				if !found {
					out = append(out, fmt.Sprintf("%s[%v]: not in the policy", path, name))
				}
			}
			return out
		}
		if len(p) != len(w) {
			return []string{fmt.Sprintf("%s: %d elements, the policy has %d: %v", path, len(p), len(w), w)}
		}
		var out []string
		for i := range p {
			if !reflect.DeepEqual(p[i], w[i]) {
				out = append(out, fmt.Sprintf("%s[%d]: %v, the policy has %v", path, i, p[i], w[i]))
			}
		}
		return out
	default:
		if !reflect.DeepEqual(part, whole) {
			return []string{fmt.Sprintf("%s: %v, the policy has %v", path, part, whole)}
		}
		return nil
	}
}

// named reports whether every element of l is a mapping with a name.
func named(l []any) bool {
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok || m["name"] == nil {
			return false
		}
	}
	return len(l) > 0
}

// readmeBinary builds cmd/consentd as `go run` would (demo included), once.
func readmeBinary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	bin := filepath.Join(dir, "consentd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/consentd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/consentd: %v\n%s", err, out)
	}
	return bin
}

// TestIntegrationReadme runs every shell block of README.md not marked
// `<!-- not run: … -->`, in order, as one shell session would, in a
// directory holding a copy of configs/: against the test services (their
// addresses, free ports for the admin and API listeners, and topic and
// group names and the Redis key prefix with a unique suffix put in place
// of the README's, in the commands and in the copied configuration), `go run ./cmd/consentd` and
// `consentd` being cmd/consentd built. Each line must exit 0 (with
// pipefail). `export NAME=VALUE` lines carry over to the next lines, as
// in a shell; a line ending in `&` keeps running in the background until
// the end. A line that pipes into grep checks something consentd does
// asynchronously (a clean record, a metric): it is retried for up to
// 30 s.
func TestIntegrationReadme(t *testing.T) {
	env := itest.Require(t)
	kcat := tool(t, "kcat")
	tool(t, "curl")
	bin := readmeBinary(t)
	work := t.TempDir()

	// the addresses the README and configs/consentd.yaml use
	data, err := os.ReadFile(filepath.Join(root, "configs", "consentd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("configs/consentd.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	admin, api := itest.FreePort(t), itest.FreePort(t)
	suffix := itest.Unique("")
	pairs := []string{
		"go run ./cmd/consentd", "consentd",
		cfg.Kafka.Brokers[0], env.Kafka,
		cfg.Redis.Addr, env.Redis,
		cfg.Admin.Listen, "127.0.0.1:" + strconv.Itoa(admin),
		cfg.Admin.APIListen, "127.0.0.1:" + strconv.Itoa(api),
		"group_id: " + cfg.Kafka.GroupID, "group_id: " + cfg.Kafka.GroupID + suffix,
		// Redis keys, and so the revocation barrier's members, of this run only
		`key_prefix: "` + cfg.Redis.KeyPrefix + `"`, `key_prefix: "` + strings.TrimSuffix(cfg.Redis.KeyPrefix, ":") + suffix + `:"`,
	}
	pol, err := os.ReadFile(filepath.Join(root, "configs", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topics := append(cfg.Kafka.RawTopics, cfg.Kafka.DeadLetterTopic, "consent.updates")
	for _, m := range regexp.MustCompile(`(?m)^\s+topic: (\S+)`).FindAllStringSubmatch(string(pol), -1) {
		topics = append(topics, m[1])
	}
	for _, tp := range topics {
		pairs = append(pairs, tp, tp+suffix)
	}
	rewrite := strings.NewReplacer(pairs...).Replace

	// the working directory: configs/ as shipped, addresses rewritten
	if err := os.Mkdir(filepath.Join(work, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"consentd.yaml", "policy.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "configs", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "configs", f), []byte(rewrite(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	session := []string{
		"PATH=" + filepath.Dir(bin) + ":" + filepath.Dir(kcat) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + work, "TMPDIR=" + os.TempDir(), "LANG=C.UTF-8",
	}
	var background []*exec.Cmd
	defer func() {
		for _, c := range background {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		}
		for _, c := range background {
			_ = c.Wait()
		}
	}()
	bash := func(ctx context.Context, line string) *exec.Cmd {
		c := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
		c.Dir, c.Env = work, session
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return c
	}
	exportLine := regexp.MustCompile(`^export ([A-Za-z_][A-Za-z0-9_]*)=`)
	backgroundLine := regexp.MustCompile(`[^&]&\s*(#.*)?$`)
	ran := 0
	for _, b := range readmeBlocks(t) {
		if !shellLangs[b.lang] || notRun.MatchString(b.marker) {
			continue
		}
		for _, line := range commands(b.text) {
			line = rewrite(line)
			ran++
			switch {
			case exportLine.MatchString(line):
				name := exportLine.FindStringSubmatch(line)[1]
				out, err := bash(context.Background(), line+"\nprintf %s \"$"+name+"\"").Output()
				if err != nil {
					t.Fatalf("README.md:%d: %s: %v", b.line, line, err)
				}
				session = append(session, name+"="+string(out))
				t.Logf("README.md:%d: %s", b.line, line)
			case backgroundLine.MatchString(line):
				// the job stays in this process group; the shell waits for it
				// (ignoring the SIGTERM the job gets) and exits with its status
				c := bash(context.Background(), line+"\ntrap '' TERM; wait $!")
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				background = append(background, c)
				t.Logf("README.md:%d: %s (in the background)", b.line, line)
			default:
				deadline := time.Now().Add(30 * time.Second)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					out, err := bash(ctx, line).CombinedOutput()
					cancel()
					if err == nil {
						t.Logf("README.md:%d: %s\n%s", b.line, line, clip(out))
						break
					}
					if !strings.Contains(line, "| grep") || time.Now().After(deadline) {
						logs, _ := os.ReadFile(filepath.Join(work, "consentd.log"))
						t.Fatalf("README.md:%d: %s: %v\n%s\nconsentd.log:\n%s", b.line, line, err, out, clip(logs))
					}
					time.Sleep(500 * time.Millisecond)
				}
			}
		}
	}
	if ran < 20 {
		t.Fatalf("ran only %d README commands", ran)
	}
	if len(background) == 0 {
		t.Fatal("the README started no consentd in the background")
	}
	// the background consentd stops cleanly on SIGTERM
	for _, c := range background {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 0 {
				logs, _ := os.ReadFile(filepath.Join(work, "consentd.log"))
				t.Errorf("consentd after SIGTERM: %v\n%s", err, clip(logs))
			}
		}
	}
	background = nil
}

// clip keeps the last 4 KiB of a command's output.
func clip(b []byte) string {
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var out strings.Builder
	for sc.Scan() {
		out.WriteString("    " + sc.Text() + "\n")
	}
	return out.String()
}

// readinessConditions returns the readiness condition names the code
// declares: every string constant named Cond… outside tests.
func readinessConditions(t *testing.T) []string {
	t.Helper()
	var out []string
	eachGoFile(t, func(f *ast.File) {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) && strings.HasPrefix(n.Name, "Cond") && n.IsExported() {
						if s, ok := stringLit(vs.Values[i]); ok {
							out = append(out, s)
						}
					}
				}
			}
		}
	})
	if len(out) < 4 {
		t.Fatalf("found only the readiness conditions %v in the source", out)
	}
	return out
}

// TestReadinessConditionsDocumented: consentd_condition_failing's help
// text and the README's metrics table name every readiness condition the
// code declares.
func TestReadinessConditionsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `consentd_condition_failing` \\|.*$").Find(readme)
	metrics, err := os.ReadFile(filepath.Join(root, "internal", "metrics", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	help := regexp.MustCompile(`Name: "consentd_condition_failing", Help: "([^"]*)"`).FindSubmatch(metrics)
	if row == nil || help == nil {
		t.Fatal("no consentd_condition_failing row in README.md's metrics table, or no help text in internal/metrics")
	}
	for _, c := range readinessConditions(t) {
		if !bytes.Contains(row, []byte("`"+c)) {
			t.Errorf("README.md's consentd_condition_failing row does not name %s", c)
		}
		if !bytes.Contains(help[1], []byte(c)) {
			t.Errorf("consentd_condition_failing's help text does not name %s", c)
		}
	}
}
