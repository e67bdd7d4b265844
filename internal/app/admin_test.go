package app

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/metrics"
)

func adminApp(t *testing.T, token string) (*App, *zap.AtomicLevel, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	lvl := zap.NewAtomicLevelAt(zap.InfoLevel)
	ready := &hooks.Readiness{}
	m := metrics.New(ready)
	m.RegisterBuildInfo(Version)
	a := &App{
		Config:    &config.Config{Admin: config.Admin{Token: config.Secret(token)}},
		Metrics:   m,
		Readiness: ready,
		Log:       zap.New(core),
		level:     &lvl,
	}
	return a, &lvl, logs
}

func do(t *testing.T, h http.Handler, method, path, auth, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestLogLevelEndpoint(t *testing.T) {
	const token = "admin-token-0123456789"
	a, lvl, logs := adminApp(t, token)
	h := a.AdminHandler()
	if code, body := do(t, h, "GET", "/loglevel", "", ""); code != 200 || !strings.Contains(body, `"info"`) {
		t.Fatalf("GET /loglevel = %d %s", code, body)
	}
	for _, auth := range []string{"", "wrong-token-0123456789"} {
		if code, _ := do(t, h, "PUT", "/loglevel", auth, `{"level":"debug"}`); code != http.StatusUnauthorized {
			t.Errorf("PUT with token %q = %d, want 401", auth, code)
		}
	}
	if lvl.Level() != zap.InfoLevel {
		t.Fatalf("level changed without the token: %s", lvl.Level())
	}
	if code, body := do(t, h, "PUT", "/loglevel", token, `{"level":"debug"}`); code != 200 || lvl.Level() != zap.DebugLevel {
		t.Fatalf("PUT with the token = %d %s, level %s", code, body, lvl.Level())
	}
	if code, _ := do(t, h, "PUT", "/loglevel", token, `{"level":"loud"}`); code != http.StatusBadRequest || lvl.Level() != zap.DebugLevel {
		t.Errorf("PUT of an unknown level = %d, level %s", code, lvl.Level())
	}
	if n := logs.FilterMessage("audit").Len(); n != 4 {
		t.Errorf("%d audit lines for 4 PUTs", n)
	}

	// Without a token nobody may change the level.
	a2, lvl2, _ := adminApp(t, "")
	if code, _ := do(t, a2.AdminHandler(), "PUT", "/loglevel", "", `{"level":"debug"}`); code != http.StatusUnauthorized || lvl2.Level() != zap.InfoLevel {
		t.Errorf("PUT without a configured token = %d", code)
	}
}

func TestBuildInfoAndNoAPIOnAdmin(t *testing.T) {
	a, _, _ := adminApp(t, "admin-token-0123456789")
	h := a.AdminHandler()
	_, body := do(t, h, "GET", "/metrics", "", "")
	if !strings.Contains(body, `consentd_build_info{go_version="go`) || !strings.Contains(body, `version="`+Version+`"} 1`) {
		t.Errorf("no consentd_build_info in /metrics:\n%s", body)
	}
	if code, _ := do(t, h, "GET", "/v1/consent/u1", "Bearer admin-token-0123456789", ""); code != http.StatusNotFound {
		t.Errorf("the admin handler serves the consent API: %d", code)
	}
}

// TestScopesAndRedactedReadiness: only a token with the admin scope
// changes the log level; /readyz names the failing conditions to anyone
// and their causes (hosts, addresses) only to a token with the read scope.
func TestScopesAndRedactedReadiness(t *testing.T) {
	a, lvl, logs := adminApp(t, "")
	a.Config.Admin.Tokens = []config.Token{
		{Name: "ops", Scopes: config.AllScopes, Secret: "ops-token-0123456789"},
		{Name: "auditor", Scopes: []string{config.ScopeRead}, Secret: "auditor-token-0123456789"},
	}
	h := a.AdminHandler()
	if code, _ := do(t, h, "PUT", "/loglevel", "auditor-token-0123456789", `{"level":"debug"}`); code != http.StatusForbidden || lvl.Level() != zap.InfoLevel {
		t.Fatalf("PUT /loglevel with a read-only token = %d, level %s", code, lvl.Level())
	}
	if code, _ := do(t, h, "PUT", "/loglevel", "ops-token-0123456789", `{"level":"debug"}`); code != 200 || lvl.Level() != zap.DebugLevel {
		t.Fatalf("PUT /loglevel with the admin scope = %d", code)
	}
	if e := logs.FilterMessage("audit").All(); len(e) != 2 || e[0].ContextMap()["token"] != "auditor" || e[1].ContextMap()["token"] != "ops" {
		t.Fatalf("audit lines: %v", e)
	}
	a.Readiness.OnCondition("consent_store", errors.New("dial tcp 10.20.30.40:6379: connection refused"))
	code, body := do(t, h, "GET", "/readyz", "", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "consent_store") || strings.Contains(body, "10.20.30.40") {
		t.Fatalf("/readyz without a token = %d %q", code, body)
	}
	if _, body := do(t, h, "GET", "/readyz", "wrong-token-0123456789", ""); strings.Contains(body, "10.20.30.40") {
		t.Fatalf("/readyz with a wrong token shows the cause: %q", body)
	}
	if _, body := do(t, h, "GET", "/readyz", "auditor-token-0123456789", ""); !strings.Contains(body, "10.20.30.40") {
		t.Fatalf("/readyz with a read token hides the cause: %q", body)
	}
}
