package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestQueriedMetricsParser(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (output, reason) (rate(consentd_decisions_total{action="skip",instance=~"$instance"}[$__rate_interval]))`, []string{"consentd_decisions_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(consentd_consent_lookup_seconds_bucket[5m])))`, []string{"consentd_consent_lookup_seconds_bucket"}},
		{`a_total > 3 * (sum(rate(b_total[1h] offset 5m)) or c * 0) and on(instance) up == 0`, []string{"a_total", "b_total", "c", "up"}},
		{`rate(consentd_events_consumd_total{topic="x y"}[1e3s])`, []string{"consentd_events_consumd_total"}},
	}
	for _, tt := range tests {
		if got := queriedMetrics(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("queriedMetrics(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
	exported := exportedMetrics(t)
	for _, name := range []string{"consentd_ready", "consentd_consent_lookup_seconds_bucket", "consentd_consent_lookup_seconds_count", "consentd_events_dead_lettered_total"} {
		if !exported[name] {
			t.Errorf("%s is not among the exported names %v", name, exported)
		}
	}
	if exported["consentd_ready_bucket"] || exported["consentd_events_consumd_total"] {
		t.Error("names that consentd does not export were found")
	}
}

// alertExprs returns alert name -> expression of deploy/prometheus/alerts.yml.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	doc := readYAML(t, "prometheus/alerts.yml")
	out := map[string]string{}
	for _, g := range list(doc, "groups") {
		for _, r := range list(g, "rules") {
			name := str(r, "alert")
			if name == "" {
				name = str(r, "record")
			}
			out[name] = str(r, "expr")
		}
	}
	if len(out) == 0 {
		t.Fatal("no rules")
	}
	return out
}

// dashboardQueries returns every query of the dashboard: panel targets and
// template variables.
func dashboardQueries(t *testing.T) (map[string]string, map[string]any) {
	t.Helper()
	data, err := os.ReadFile("grafana/dashboards/consentd.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list(d, "panels") {
		for i, tg := range list(p, "targets") {
			out[fmt.Sprintf("panel %q target %d", str(p, "title"), i)] = str(tg, "expr")
		}
	}
	for _, v := range list(d, "templating", "list") {
		if q := str(v, "definition"); q != "" {
			// label_values(metric, label): the metric is what is queried
			if inner, ok := strings.CutPrefix(q, "label_values("); ok {
				q = strings.TrimSpace(strings.SplitN(inner, ",", 2)[0])
			}
			out["variable "+str(v, "name")] = q
		}
	}
	return out, d
}

// TestEveryQueriedMetricIsExported reads the alert rules and the dashboard
// and checks that each metric they query is one consentd exports (a
// renamed metric would silently empty a panel or disarm an alert).
func TestEveryQueriedMetricIsExported(t *testing.T) {
	exported := exportedMetrics(t)
	queries := map[string]string{}
	for name, e := range alertExprs(t) {
		queries["alert "+name] = e
	}
	dq, _ := dashboardQueries(t)
	for k, v := range dq {
		queries[k] = v
	}
	used := map[string]bool{}
	for where, q := range queries {
		names := queriedMetrics(q)
		if len(names) == 0 {
			t.Errorf("%s queries no metric: %s", where, q)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] && !foreignSeries[n] {
				t.Errorf("%s queries %s, which consentd does not export", where, n)
			}
		}
	}
	// the operators' questions the dashboard must answer
	for _, n := range []string{"consentd_events_consumed_total", "consentd_events_written_total", "consentd_decisions_total", "consentd_events_dropped_total",
		"consentd_events_dead_lettered_total", "consentd_commit_lag_messages", "consentd_consent_lookup_seconds_bucket", "consentd_consent_cache_hits_total",
		"consentd_ready", "consentd_consent_updates_total", "consentd_consent_redis_errors_total"} {
		if !used[n] {
			t.Errorf("nothing shows %s", n)
		}
	}
}

// TestPrometheusRulesAndConfig runs promtool: the rules and the scrape
// configuration are valid, and the alert unit tests (alerts_test.yml)
// pass: each alert fires on the series it is meant for and not on the
// look-alikes next to it.
func TestPrometheusRulesAndConfig(t *testing.T) {
	promtool := tool(t, "promtool")
	out := run(t, "prometheus", promtool, "check", "rules", "alerts.yml")
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", len(alertExprs(t)))) {
		t.Errorf("promtool check rules:\n%s", out)
	}
	run(t, "prometheus", promtool, "check", "config", "prometheus.yml")
	out = run(t, "prometheus", promtool, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
	// every alert has a unit test
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name := range alertExprs(t) {
		if name == "ConsentdDown" || name == "ConsentdProduceErrors" || name == "ConsentdCommitErrors" {
			continue // one-line thresholds on a single counter or up
		}
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no unit test in alerts_test.yml", name)
		}
	}
	// every rule says what to do
	for _, g := range list(readYAML(t, "prometheus/alerts.yml"), "groups") {
		for _, r := range list(g, "rules") {
			if str(r, "labels", "severity") == "" || str(r, "annotations", "summary") == "" || str(r, "annotations", "description") == "" {
				t.Errorf("alert %s lacks severity, summary or description", str(r, "alert"))
			}
		}
	}
}

// TestDashboard checks the dashboard's structure and, through promtool,
// the syntax of every query (as recording rules, with Grafana's variables
// replaced by values).
func TestDashboard(t *testing.T) {
	queries, d := dashboardQueries(t)
	if str(d, "uid") != "consentd" || str(d, "title") == "" {
		t.Errorf("uid %q title %q", str(d, "uid"), str(d, "title"))
	}
	ids := map[string]bool{}
	for _, p := range list(d, "panels") {
		id := str(p, "id")
		if id == "" || ids[id] {
			t.Errorf("panel %q: id %q missing or repeated", str(p, "title"), id)
		}
		ids[id] = true
		if str(p, "type") == "row" {
			continue
		}
		if str(p, "datasource", "uid") != "${datasource}" || len(list(p, "targets")) == 0 || str(p, "title") == "" {
			t.Errorf("panel %q: needs a title, the datasource variable and a query", str(p, "title"))
		}
		for _, tg := range list(p, "targets") {
			if str(tg, "refId") == "" {
				t.Errorf("panel %q: a target without refId", str(p, "title"))
			}
		}
	}
	var rules []map[string]string
	keys := make([]string, 0, len(queries))
	for k := range queries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		q := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", `"$instance"`, `".*"`).Replace(queries[k])
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": q})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	promtool := tool(t, "promtool")
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ".", promtool, "check", "rules", f)
}

// TestGrafanaProvisioning checks that the provisioned data source and
// dashboard folder are the ones docker-compose.yml wires up.
func TestGrafanaProvisioning(t *testing.T) {
	ds := readYAML(t, "grafana/provisioning/datasources/prometheus.yml")
	src := at(ds, "datasources", 0)
	if str(src, "type") != "prometheus" || str(src, "url") != "http://prometheus:9090" || str(src, "isDefault") != "true" {
		t.Errorf("data source %v", src)
	}
	prov := readYAML(t, "grafana/provisioning/dashboards/consentd.yml")
	path := str(prov, "providers", 0, "options", "path")
	compose := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	vols := list(compose, "services", "grafana", "volumes")
	if !slices.Contains(vols, any("./deploy/grafana/dashboards:"+path+":ro")) || !slices.Contains(vols, any("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro")) {
		t.Errorf("grafana volumes %v do not mount the dashboards at %s and the provisioning", vols, path)
	}
	if !slices.Contains(list(compose, "services", "prometheus", "volumes"), any("./deploy/prometheus:/etc/prometheus:ro")) {
		t.Error("prometheus does not mount deploy/prometheus")
	}
	prom := readYAML(t, "prometheus/prometheus.yml")
	target := str(prom, "scrape_configs", 0, "static_configs", 0, "targets", 0)
	if target != "consentd:9464" {
		t.Errorf("scrape target %q", target)
	}
}
