package deploy

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, relative to this package.
const root = ".."

// tool returns the path of an external program the test needs, or skips
// the test when it is missing (fails under CONSENTD_REQUIRE_INTEGRATION=1;
// scripts/services.sh install provides it).
func tool(t *testing.T, name string, alternatives ...string) string {
	t.Helper()
	for _, n := range append([]string{name}, alternatives...) {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CONSENTD_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s is not installed (scripts/services.sh install installs it)", name)
	}
	t.Skipf("%s is not installed (scripts/services.sh install installs it)", name)
	return ""
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	docs := readYAMLDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(docs))
	}
	return docs[0]
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// at walks m along keys (map keys or list indexes) and returns what is
// there, or nil.
func at(m any, keys ...any) any {
	for _, k := range keys {
		switch v := m.(type) {
		case map[string]any:
			m = v[k.(string)]
		case []any:
			i, ok := k.(int)
			if !ok || i >= len(v) {
				return nil
			}
			m = v[i]
		default:
			return nil
		}
	}
	return m
}

func str(m any, keys ...any) string {
	switch v := at(m, keys...).(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	default:
		return ""
	}
}

func list(m any, keys ...any) []any {
	l, _ := at(m, keys...).([]any)
	return l
}

// eachGoFile parses every non-test Go file of the module (but deploy's
// and testdata) and hands it to fn.
func eachGoFile(t *testing.T, fn func(*ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "deploy" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		fn(f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exportedMetrics returns the names of every series consentd exports, read
// from the Go source: the Name of every prometheus Counter/Gauge/Histogram/
// Summary option literal and every prometheus.NewDesc, anywhere in the
// module. Histograms add _bucket, _sum and _count; summaries _sum and
// _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	eachGoFile(t, func(f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || ident(sel.X) != "prometheus" {
					return true
				}
				kind := sel.Sel.Name
				if !slices.Contains([]string{"CounterOpts", "GaugeOpts", "HistogramOpts", "SummaryOpts", "Opts"}, kind) {
					return true
				}
				parts := map[string]string{}
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if s, ok := stringLit(kv.Value); ok {
						parts[ident(kv.Key)] = s
					}
				}
				if parts["Name"] == "" {
					return true
				}
				name := parts["Name"]
				if parts["Subsystem"] != "" {
					name = parts["Subsystem"] + "_" + name
				}
				if parts["Namespace"] != "" {
					name = parts["Namespace"] + "_" + name
				}
				names[name] = true
				switch kind {
				case "HistogramOpts":
					names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
				case "SummaryOpts":
					names[name+"_sum"], names[name+"_count"] = true, true
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if ok && ident(sel.X) == "prometheus" && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					if s, ok := stringLit(n.Args[0]); ok {
						names[s] = true
					}
				}
			}
			return true
		})
	})
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the source; the parser no longer understands internal/metrics", len(names))
	}
	return names
}

func ident(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// Series that are not consentd's own but may be queried.
var foreignSeries = map[string]bool{
	"up": true, // Prometheus's scrape health
}

var (
	braces     = regexp.MustCompile(`\{[^}]*\}`)
	brackets   = regexp.MustCompile(`\[[^\]]*\]`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	grafanaVar = regexp.MustCompile(`\$\{?\w+\}?`)
	strLits    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	idents     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

var promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true}

// queriedMetrics returns the metric names a PromQL expression reads:
// identifiers that are neither functions (followed by a parenthesis),
// keywords, label names in matchers or groupings, nor Grafana variables.
func queriedMetrics(expr string) []string {
	e := strLits.ReplaceAllString(expr, `""`)
	e = braces.ReplaceAllString(e, " ")
	e = brackets.ReplaceAllString(e, " ")
	e = grouping.ReplaceAllString(e, " ")
	e = grafanaVar.ReplaceAllString(e, " ")
	var out []string
	for _, m := range idents.FindAllStringSubmatchIndex(e, -1) {
		word := e[m[0]:m[1]]
		if m[2] >= 0 { // a function call
			continue
		}
		if m[0] > 0 && (e[m[0]-1] >= '0' && e[m[0]-1] <= '9' || e[m[0]-1] == '.') { // the unit of a number or duration: 5m, 1e3
			continue
		}
		if promqlKeywords[strings.ToLower(word)] {
			continue
		}
		out = append(out, word)
	}
	return out
}
