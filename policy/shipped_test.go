package policy

import (
	"net/url"
	"strings"
	"testing"
)

func TestRequireKeepOnlyAndWarnings(t *testing.T) {
	const out = "outputs: [{name: o, topic: t, require: [a], transforms: [{drop_fields: [x]}]}]"
	spec, err := ParseSpec("p.yaml", []byte("version: v\npurposes: [a]\npseudonym_key: k1\nrequire_keep_only: true\n"+out))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(spec, testKeys(t)); err == nil || !strings.Contains(err.Error(), "outputs[0] (o): no keep_only") {
		t.Fatalf("require_keep_only: err = %v", err)
	}
	spec.RequireKeepOnly = false
	p, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(p.Warnings, "\n")
	for _, want := range []string{"(o): no keep_only", "(o): no scrub", "(o): no truncate_time"} {
		if !strings.Contains(w, want) || !strings.Contains(p.Summary(), "warning: outputs[0] "+want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	shipped, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(shipped.Warnings) != 0 {
		t.Fatalf("shipped policy warns: %v", shipped.Warnings)
	}
}

// TestShippedPolicyHostileEvents runs events with personal data in
// unexpected places through the shipped policy and searches every output
// value and actions header for each piece, in plain, lowercased,
// percent-encoded and JSON-escaped forms. Events that must be
// dead-lettered say so.
func TestShippedPolicyHostileEvents(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	const base = `"type":"track","event":"Order Completed","userId":"u-7781","anonymousId":"anon-5521","messageId":"m1","timestamp":"2026-11-22T10:15:30.5Z"`
	tests := []struct {
		name, ev string
		pii      []string
		reason   string
	}{
		{"nested email", `{` + base + `,"properties":{"user":{"email":"carol@example.com"}}}`, []string{"carol@example.com"}, ""},
		{"emails in arrays of objects", `{` + base + `,"properties":{"items":[{"email":"dan@example.com"}]}}`, []string{"dan@example.com"}, ""},
		{"x_forwarded_for and idfa", `{` + base + `,"properties":{"x_forwarded_for":"198.51.100.55","idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC"}}`, []string{"198.51.100.55", "6D92078A"}, ""},
		{"lat/lng outside context.location", `{` + base + `,"properties":{"lat":52.520008,"lng":13.404954}}`, []string{"52.520008", "13.404954"}, ""},
		{"email in messageId", `{"type":"track","event":"Order Completed","userId":"u-7781","messageId":"erin@example.com"}`, []string{"erin@example.com"}, ""},
		{"email in the event name", `{"type":"track","event":"Signed Up frank@example.com","userId":"u-7781"}`, []string{"frank@example.com"}, ""},
		{"user id in product_id", `{` + base + `,"properties":{"product_id":"u-7781"}}`, []string{"u-7781"}, ""},
		{"anonymous id in the page title", `{` + base + `,"properties":{"title":"Hello anon-5521"}}`, []string{"anon-5521"}, ""},
		{"email in page url query", `{` + base + `,"context":{"page":{"url":"https://s.example/c?email=carol%40example.com","path":"/c"}}}`, []string{"carol@example.com"}, ""},
		{"id in the path", `{` + base + `,"context":{"page":{"path":"/users/u-7781/orders","url":"https://s.example/users/u-7781/orders"}}}`, []string{"u-7781"}, ""},
		{"referrer and search", `{` + base + `,"context":{"page":{"referrer":"https://r.example/?q=grace@example.com","search":"?email=grace%40example.com"}}}`, []string{"grace@example.com"}, ""},
		{"email as a key", `{` + base + `,"properties":{"heidi@example.com":true}}`, []string{"heidi@example.com"}, ""},
		{"6to4 ip", `{` + base + `,"context":{"ip":"2002:c633:6437::1"}}`, []string{"198.51.100.55", "c633:6437"}, ""},
		{"phone in properties.title", `{` + base + `,"properties":{"title":"call +49 151 2345 6789"}}`, []string{"+49 151 2345 6789", "2345 6789"}, ""},
		{"card in properties.category", `{` + base + `,"properties":{"category":"4111 1111 1111 1111"}}`, []string{"4111 1111 1111 1111"}, ""},
		{"duplicate key nobody touches", `{` + base + `,"properties":{"user":{"email":"x@example.com","email":"ivan@example.com"}}}`, []string{"ivan@example.com"}, ReasonDuplicateKey},
		{"UserId", `{"type":"track","anonymousId":"anon-5521","UserId":"judy@example.com"}`, []string{"judy@example.com"}, ReasonConfusableKey},
		{"context.IP", `{` + base + `,"context":{"IP":"198.51.100.55"}}`, []string{"198.51.100.55"}, ReasonConfusableKey},
		{"fullwidth userId", `{"type":"track","anonymousId":"anon-5521","ｕｓｅｒＩｄ":"kim@example.com"}`, []string{"kim@example.com"}, ReasonConfusableKey},
		{"padded userId", `{"type":"track","anonymousId":"anon-5521","userId ":"lee@example.com"}`, []string{"lee@example.com"}, ReasonConfusableKey},
		{"NUL in a key", `{` + base + `,"properties":{"email\u0000":"mia@example.com"}}`, []string{"mia@example.com"}, ReasonInvalidKey},
		{"lone surrogate in a key", `{` + base + `,"properties":{"\udc00email":"ned@example.com"}}`, []string{"ned@example.com"}, ReasonInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, tt.ev, all)
			if tt.reason != "" {
				wantInputError(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Written() == 0 {
				t.Fatalf("nothing written: %s", d.Explain())
			}
			for _, o := range d.Outputs {
				hay := strings.ToLower(string(o.Value) + "\n" + o.ActionsHeader() + "\n" + string(o.Key) + "\n" + d.Explain())
				for _, pii := range tt.pii {
					for _, form := range []string{pii, url.QueryEscape(pii), url.PathEscape(pii), strings.ReplaceAll(pii, "@", `\u0040`)} {
						if strings.Contains(hay, strings.ToLower(form)) {
							t.Errorf("%s: %q found in %s (%s)", o.Output.Name, form, o.Value, o.ActionsHeader())
						}
					}
				}
			}
		})
	}
}
