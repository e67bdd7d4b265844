package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationConsentAPI drives every data-subject request over HTTP.
func TestIntegrationConsentAPI(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure}, testIntegrationConsentAPI)
}

func testIntegrationConsentAPI(t *testing.T, env itest.Env) {
	s := newStack(t, env, 1)
	const token, readOnly = "test-token-0123456789", "auditor-token-9876543210"
	r := s.start(t, func(c *config.Config) {
		c.Admin.Tokens = []config.Token{{Name: "ops", Scopes: config.AllScopes, Secret: token}, {Name: "auditor", Scopes: []string{config.ScopeRead}, Secret: readOnly},
			{Name: "writer", Scopes: []string{config.ScopeWrite}, Secret: "writer-token-0123456789"}}
	})
	base := "http://" + r.app.APIAddr() + "/v1/consent/"

	call := func(method, path, auth, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if body == "" {
			req.ContentLength = 0
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
		return resp.StatusCode, m
	}

	if code, _ := call("GET", "u1", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := call("GET", "u1", "wrong-token-0123456789", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	// HEAD reads like GET: a write-only token may not learn from it.
	for tok, want := range map[string]int{"writer-token-0123456789": http.StatusForbidden, readOnly: http.StatusOK} {
		req, _ := http.NewRequest("HEAD", base+"u1/export", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("HEAD export with %s: %d, want %d", tok, resp.StatusCode, want)
		}
	}
	// A token with the read scope only reads.
	if code, out := call("PUT", "u1", readOnly, `{"personalization":true}`); code != http.StatusForbidden {
		t.Fatalf("PUT with a read-only token: %d %v", code, out)
	}
	if code, out := call("DELETE", "u1", readOnly, ""); code != http.StatusForbidden {
		t.Fatalf("DELETE with a read-only token: %d %v", code, out)
	}
	code, out := call("PUT", "u1", token, `{"personalization":true,"analytics":true,"advertising":true}`)
	if code != 200 || out["version"] == nil {
		t.Fatalf("PUT: %d %v", code, out)
	}
	if code, out := call("GET", "u1", readOnly, ""); code != 200 || out["found"] != true {
		t.Fatalf("GET with a read-only token: %d %v", code, out)
	}
	code, out = call("GET", "u1", token, "")
	if code != 200 || out["purposes"].(map[string]any)["analytics"] != true {
		t.Fatalf("GET: %d %v", code, out)
	}
	code, out = call("POST", "u1/revoke", token, `{"purposes":["analytics"]}`)
	if code != 200 || len(out["retracted_from"].([]any)) != 1 || out["retracted_from"].([]any)[0] != s.ana {
		t.Fatalf("revoke: %d %v", code, out)
	}
	code, out = call("GET", "u1/export", token, "")
	if code != 200 || out["stored"].(map[string]any)["fields"].(map[string]any)["analytics"] != "0" {
		t.Fatalf("export: %d %v", code, out)
	}
	code, out = call("DELETE", "u1", token, "")
	if code != 200 || out["erased"] != true || len(out["retracted_from"].([]any)) != 3 {
		t.Fatalf("erase: %d %v", code, out)
	}
	if code, out = call("GET", "u1", token, ""); out["found"] != false {
		t.Fatalf("GET after erase: %d %v", code, out)
	}
	// Identity links over the API.
	base = "http://" + r.app.APIAddr() + "/v1/"
	if code, out := call("PUT", "identity/anon-x", token, `{"userId":"u7"}`); code != 200 || out["linked_to"] != "u7" {
		t.Fatalf("link: %d %v", code, out)
	}
	if code, out := call("GET", "consent/anon-x/export", token, ""); code != 200 || out["stored"].(map[string]any)["linked_to"] != "u7" {
		t.Fatalf("export after link: %d %v", code, out)
	}
	if code, _ := call("PUT", "identity/anon-x", token, `{"userId":""}`); code != 400 {
		t.Fatalf("empty user id: %d", code)
	}
	base = "http://" + r.app.APIAddr() + "/v1/consent/"
	for _, bad := range []struct{ method, path, body string }{
		{"PUT", "u1", `{"dancing":true}`},
		{"PUT", "u1", `{"analytics":"yes"}`},
		{"PUT", "u1", `not json`},
		{"PUT", "u1", `{}`},
		{"POST", "u1/revoke", `{"purposes":["dancing"]}`},
	} {
		if code, out := call(bad.method, bad.path, token, bad.body); code != 400 || out["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want 400", bad.method, bad.path, bad.body, code, out)
		}
	}
	// Retractions reached Kafka: one on analytics for the revoke, then one per
	// clean topic for the erasure, each written before the change is stored
	// and again after the revocation barrier.
	if n := itest.Count(t, env.Kafka, s.ana); n != 4 {
		t.Fatalf("analytics holds %d retractions, want 4", n)
	}

	// The admin listener does not serve the API, and the API listener
	// does not serve metrics.
	if code, _ := r.get(t, "/v1/consent/u1"); code != http.StatusNotFound {
		t.Errorf("GET /v1/consent/u1 on the admin listener = %d, want 404", code)
	}
	if resp, err := http.Get("http://" + r.app.APIAddr() + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API listener = %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	// One audit line per call, with the route and the subject's pseudonym,
	// never the subject id.
	audits := s.logs.FilterMessage("audit").All()
	var calls, withPseudonym int
	for _, e := range audits {
		f := e.ContextMap()
		if f["route"] == "GET /v1/consent/{subject}" && f["method"] == "GET" {
			calls++
		}
		if f["subject_pseudonym"] == pseud("u1") {
			withPseudonym++
		}
	}
	// Each names its token and the caller's address.
	byToken := map[string]map[string]int{}
	for _, e := range audits {
		f := e.ContextMap()
		tok, _ := f["token"].(string)
		if byToken[tok] == nil {
			byToken[tok] = map[string]int{}
		}
		byToken[tok][f["result"].(string)]++
		if remote, _ := f["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
			t.Errorf("audit line without the caller's address: %v", f)
		}
	}
	if byToken["auditor"]["forbidden"] != 2 || byToken["auditor"]["ok"] != 2 || byToken["writer"]["forbidden"] != 1 || byToken["ops"]["ok"] < 5 || byToken[""]["unauthorized"] != 2 {
		t.Errorf("audit lines by token and result: %v", byToken)
	}
	if calls < 4 || withPseudonym < 10 {
		t.Errorf("audit lines: %d for GET /v1/consent/{subject} (want >= 4), %d with u1's pseudonym (want >= 10) among %d", calls, withPseudonym, len(audits))
	}
	s.assertNoPersonalData(t, "u1", "anon-x", "u7")
}
