package layering

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/consentd/consentd"

// layers orders consentd's packages from the bottom up: a package may
// import packages of its own layer or below, never above. The first
// matching prefix wins; every package of the module must match one.
var layers = []struct {
	name     string
	packages []string
}{
	{"leaf helpers, and the auditor (which shares no code with what it audits)", []string{"internal/lib/", "internal/audit", "internal/representation"}},
	{"wire contract, event model, shipped files, consent records", []string{"event", "scrub", "wire", "configs", "consent"}},
	{"decisions and consent services", []string{"policy", "consent/ingest", "consent/changes", "consent/redisstore", "barrier"}},
	{"engine, Kafka services, data-subject requests", []string{"pipeline", "pipeline/aggregates", "kafkaops", "consent/dsr"}},
	{"configuration (filled from the components' defaults), adapters, plugins and the policy test runner", []string{"config", "internal/connect", "internal/metrics", "internal/policytest"}},
	{"composition root", []string{"internal/app"}},
	{"tools: command, demo, benchmarks, test helpers and contract suites, operations package", []string{"cmd/", "internal/demo/", "internal/bench/", "internal/testing/", "pipeline/enginetest", "consent/storetest", "deploy"}},
}

// forbidden lists, per package prefix, imports it must never have: the
// concerns each package leaves to another (see each package doc).
var forbidden = map[string][]string{
	"event":                   {"github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/", module + "/pipeline"},
	"scrub":                   {"github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/"},
	"policy/":                 {"github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/", "go.uber.org/zap"},
	"consent/":                {"github.com/segmentio/kafka-go", "github.com/prometheus/", module + "/pipeline", module + "/kafkaops"},
	"barrier/":                {"github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/", module + "/pipeline", module + "/consent"},
	"pipeline/":               {"github.com/redis/go-redis", "github.com/prometheus/", module + "/barrier", module + "/kafkaops", module + "/config"},
	"kafkaops/":               {"github.com/redis/go-redis", "github.com/prometheus/", module + "/pipeline", module + "/config"},
	"internal/app":            {"github.com/prometheus/client_golang/prometheus\x00"},
	"cmd/consentd":            {"github.com/redis/go-redis", "github.com/prometheus/"},
	"wire":                    {"github.com/redis/go-redis", "github.com/prometheus/"},
	"config":                  {"github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/"},
	"internal/connect":        {module + "/pipeline", module + "/consent"},
	"internal/metrics":        {module + "/internal/app"},
	"internal/audit":          {module + "/"},
	"internal/representation": {module + "/", "github.com/segmentio/kafka-go", "github.com/redis/go-redis", "github.com/prometheus/client_golang"},
	"internal/policytest":     {"github.com/redis/go-redis", "github.com/prometheus/", module + "/internal/app", module + "/kafkaops"},
	"consent/redisstore":      {module + "/barrier", module + "/policy"},
}

// production packages never import tooling.
var tooling = []string{"internal/bench/", "internal/testing/"}

type pkg struct {
	ImportPath string
	Imports    []string
}

func rel(path string) string {
	if path == module {
		return ""
	}
	return strings.TrimPrefix(path, module+"/")
}

func matches(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p+"/", prefix)
	}
	return p == prefix
}

func layerOf(p string) int {
	for i, l := range layers {
		for _, prefix := range l.packages {
			if matches(p, prefix) {
				return i
			}
		}
	}
	return -1
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// TestImportsRunDownward: no package imports a package of a higher
// layer, and every package has a layer.
func TestImportsRunDownward(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p.ImportPath)
		lf := layerOf(from)
		if lf < 0 {
			t.Errorf("%s has no layer: add it to layers", from)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rel(imp)
			if lt := layerOf(to); lt > lf {
				t.Errorf("%s (%s) imports %s (%s): an import upward", from, layers[lf].name, to, layers[lt].name)
			}
		}
	}
}

// TestForbiddenImports: each package leaves the concerns it does not own
// to their one place, and production code never imports tooling.
func TestForbiddenImports(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p.ImportPath)
		for prefix, bans := range forbidden {
			if !matches(from, prefix) {
				continue
			}
			for _, imp := range p.Imports {
				for _, ban := range bans {
					exact := strings.HasSuffix(ban, "\x00")
					b := strings.TrimSuffix(ban, "\x00")
					if (exact && imp == b) || (!exact && strings.HasPrefix(imp, b)) {
						t.Errorf("%s imports %s: %s must not import %s", from, imp, prefix, b)
					}
				}
			}
		}
		if layerOf(from) == len(layers)-1 {
			continue
		}
		for _, imp := range p.Imports {
			for _, tool := range tooling {
				if matches(rel(imp), tool) {
					t.Errorf("production package %s imports tooling %s", from, imp)
				}
			}
		}
	}
}

// TestRulesSeeEveryPackage guards the rules themselves: a prefix that no
// package matches is stale.
func TestRulesSeeEveryPackage(t *testing.T) {
	var all []string
	for _, p := range listPackages(t) {
		all = append(all, rel(p.ImportPath))
	}
	for _, l := range layers {
		for _, prefix := range l.packages {
			if !slices.ContainsFunc(all, func(p string) bool { return matches(p, prefix) }) {
				t.Errorf("layer %q names %s, which no package matches", l.name, prefix)
			}
		}
	}
	for prefix := range forbidden {
		if !slices.ContainsFunc(all, func(p string) bool { return matches(p, prefix) }) {
			t.Errorf("forbidden imports name %s, which no package matches", prefix)
		}
	}
}
