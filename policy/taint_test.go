package policy

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// taintIDs are the identifier fields of Segment and RudderStack events,
// with a value each. The shipped policy drops, pseudonymizes or truncates
// every one of them, or leaves it out of keep_only.
var taintIDs = []struct{ path, value string }{
	{"userId", "usr-7Q2x9KpL"},
	{"anonymousId", "8f14e45f-ceea-467f-a1d2-3b1c2e9d7a10"},
	{"previousId", "prev-55AB12cd"},
	{"context.device.advertisingId", "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
	{"context.device.id", "dev-A1B2C3D4E5"},
	{"context.userAgent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Hammerhead/42"},
	{"context.ip", "198.51.100.77"},
	{"context.traits.email", "quinn.r@example.net"},
	{"context.traits.phone", "+1 415 555 0199"},
	{"traits.email", "rowan_k@example.org"},
	{"request_ip", "203.0.113.219"},
	{"context.externalId", "crm-000418833"},
	{"properties.email", "sam.t@mail.example.com"},
}

// taintEncodings are the forms an echo takes: each returns the JSON
// string literal (quotes included) to put into a kept field.
var taintEncodings = []struct {
	name string
	enc  func(v string) string
}{
	{"plain", func(v string) string { return strconv.Quote(v) }},
	{"upper", func(v string) string { return strconv.Quote(strings.ToUpper(v)) }},
	{"glued", func(v string) string { return strconv.Quote("ref" + v + "x9") }},
	{"in a sentence", func(v string) string { return strconv.Quote("Hello " + v + ", welcome back") }},
	{"percent once", func(v string) string { return strconv.Quote(url.QueryEscape(v)) }},
	{"percent every byte", func(v string) string { return strconv.Quote(pctAll(v)) }},
	{"percent twice", func(v string) string { return strconv.Quote(url.QueryEscape(url.QueryEscape(v))) }},
	{"json unicode escapes", func(v string) string {
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range v {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		return b.String() + `"`
	}},
	{"html entities", func(v string) string {
		var b strings.Builder
		for _, r := range v {
			fmt.Fprintf(&b, "&#%d;", r)
		}
		return strconv.Quote(b.String())
	}},
	{"html hex entities on separators", func(v string) string {
		r := strings.NewReplacer("@", "&#x40;", ".", "&period;", "-", "&#45;")
		return strconv.Quote(r.Replace(v))
	}},
	{"fullwidth", func(v string) string {
		var b strings.Builder
		for _, r := range v {
			if r > ' ' && r < 0x7f {
				r += 0xFEE0
			}
			b.WriteRune(r)
		}
		return strconv.Quote(b.String())
	}},
	{"zero-width spaces", func(v string) string {
		return strconv.Quote(strings.Join(strings.Split(v, ""), "\u200b"))
	}},
	{"base64", func(v string) string { return strconv.Quote(base64.StdEncoding.EncodeToString([]byte(v))) }},
	{"base64url glued", func(v string) string {
		return strconv.Quote("id_" + base64.RawURLEncoding.EncodeToString([]byte("uid="+v)))
	}},
	{"hex", func(v string) string { return strconv.Quote(hex.EncodeToString([]byte(v))) }},
	{"in a url query", func(v string) string {
		return strconv.Quote("https://shop.example/p/1?u=" + url.QueryEscape(v) + "&utm_source=x")
	}},
	{"in a url path", func(v string) string { return strconv.Quote("/p/" + url.PathEscape(v) + "/reviews") }},
	{"jwt payload", func(v string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":` + strconv.Quote(v) + `}`))
		return strconv.Quote("tok." + h + "." + p + ".c2lnbmF0dXJl")
	}},
}

func pctAll(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		fmt.Fprintf(&b, "%%%02X", v[i])
	}
	return b.String()
}

// TestTaintEchoes puts every identifier of a Segment/RudderStack event,
// in every encoding, into every string field the shipped policy keeps,
// and checks that no clean message holds it in any form a reader can
// undo (decodeAll, written apart from package scrub).
func TestTaintEchoes(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	kept := []string{"event", "messageId", "context.locale", "context.page.path", "context.page.url",
		"context.location.country", "context.location.city", "properties.product_id", "properties.category",
		"properties.currency", "properties.path", "properties.title", "traits.plan"}
	cases := 0
	for _, id := range taintIDs {
		for _, enc := range taintEncodings {
			for _, field := range kept {
				ev := taintEvent(id.path, field, enc.enc(id.value))
				d, err := decide(t, p, ev, all)
				if err != nil {
					t.Fatalf("%s as %s in %s: %v\n%s", id.path, enc.name, field, err, ev)
				}
				if d.Written() == 0 {
					t.Fatalf("%s as %s in %s: nothing written: %s", id.path, enc.name, field, d.Explain())
				}
				cases++
			outputs:
				for _, o := range d.Outputs {
					if o.Value == nil {
						continue
					}
					for _, where := range []string{string(o.Value), string(o.Key), o.ActionsHeader()} {
						if leaks(where, id.value) {
							t.Errorf("%s as %s in %s: %s holds it: %s", id.path, enc.name, field, o.Output.Name, where)
							break outputs
						}
					}
				}
			}
		}
	}
	t.Logf("%d echoes checked", cases)
}

// TestTaintInsideArrays: identifiers the shipped policy removes that sit
// where paths do not reach (an identifier field holding an array or an
// object, identifier members of objects inside arrays, a dropped array),
// echoed in every encoding into every kept field, never survive; values
// of other fields inside removed arrays (product ids, names) stay.
func TestTaintInsideArrays(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	const v = "crm-Zq81Kx0042"
	holders := []struct{ name, path, lit string }{
		{"RudderStack externalId", "context.externalId", `[{"id":"` + v + `","type":"brazeExternalId"}]`},
		{"identifier object", "context.externalId", `{"crm":{"primary":"` + v + `"}}`},
		{"Snowplow context", "contexts", `[{"schema":"iglu:com.acme/user/jsonschema/1-0-0","data":{"domain_userid":"` + v + `"}}]`},
		{"nested arrays", "properties.items", `[[{"meta":[{"idfa":"` + v + `"}]}]]`},
		{"dropped array", "context.device.advertisingId", `["` + v + `"]`},
		{"escaped key", "properties.items", `[{"user\u005fid":"` + v + `"}]`},
		{"identifier object in an array", "properties.items", `[{"externalId":{"id":"` + v + `"}}]`},
		{"identifier array in a Snowplow context", "contexts", `[{"data":{"externalId":[{"id":"` + v + `","type":"crm"}]}}]`},
		{"subject object in an array", "properties.items", `[{"userId":{"value":"` + v + `"}}]`},
	}
	kept := []string{"event", "context.page.path", "context.page.url", "properties.product_id", "properties.category", "properties.title", "traits.plan"}
	n := 0
	for _, h := range holders {
		for _, enc := range taintEncodings {
			for _, field := range kept {
				ev := buildEvent(map[string]string{h.path: h.lit, field: enc.enc(v)})
				d, err := decide(t, p, ev, all)
				if err != nil {
					t.Fatalf("%s, %s in %s: %v", h.name, enc.name, field, err)
				}
				if d.Written() == 0 {
					t.Fatalf("nothing written: %s", d.Explain())
				}
				n++
				for _, o := range d.Outputs {
					if o.Value != nil && leaks(string(o.Value), v) {
						t.Errorf("%s, %s in %s: %s holds it: %s", h.name, enc.name, field, o.Output.Name, o.Value)
						break
					}
				}
			}
		}
	}
	// Look-alikes: a removed product array's own values are not
	// identifiers, and a kept field repeating them is left alone.
	ev := buildEvent(map[string]string{
		"properties.products": `[{"product_id":"SKU-48213377","name":"Trail Runner GTX","price":129.99}]`,
		"properties.title":    `"Trail Runner GTX SKU-48213377"`,
	})
	d, err := decide(t, p, ev, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Outputs {
		if strings.Contains(string(o.Value), `"title"`) && !strings.Contains(string(o.Value), "Trail Runner GTX SKU-48213377") {
			t.Errorf("%s changed a title repeating a removed product: %s (%s)", o.Output.Name, o.Value, o.ActionsHeader())
		}
	}
	t.Logf("%d echoes from inside arrays and objects checked", n)
}

// TestTaintNumbers: a numeric identifier (a string or a number in its own
// field) echoed as a JSON number in any integer form into a kept number
// field, and inside a kept array.
func TestTaintNumbers(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	for _, src := range []string{"userId", "context.device.id", "context.externalId", "traits.phone"} {
		for _, own := range []string{`"7008984883"`, `7008984883`} {
			for _, form := range []string{"7008984883", "7008984883.0", "7.008984883e9", "70089848830E-1", "[1,7008984883,3]"} {
				ev := buildEvent(map[string]string{src: own, "properties.revenue": form})
				d, err := decide(t, p, ev, all)
				if src == "userId" && own[0] != '"' {
					wantInputError(t, err, ReasonInvalidSubject) // subjects are strings
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", ev, err)
				}
				if d.Written() == 0 {
					t.Fatalf("nothing written: %s", d.Explain())
				}
				for _, o := range d.Outputs {
					v := string(o.Value)
					if strings.Contains(v, "7008984883") || strings.Contains(v, "7.008984883") || strings.Contains(v, "70089848830") {
						t.Errorf("%s=%s as %s: %s holds it: %s", src, own, form, o.Output.Name, o.Value)
					}
				}
			}
		}
	}
}

// taintEvent is a Segment track event with the identifier at idPath and
// lit (a JSON literal) at field.
func taintEvent(idPath, field, lit string) string {
	lits := map[string]string{field: lit}
	for _, id := range taintIDs {
		if id.path == idPath {
			lits[id.path] = strconv.Quote(id.value)
		}
	}
	return buildEvent(lits)
}

// buildEvent is a Segment track event with the JSON literals lits at
// their paths.
func buildEvent(lits map[string]string) string {
	ev := map[string]any{
		"type": "track", "event": "Order Completed", "messageId": "m-1", "timestamp": "2026-11-22T10:15:30.5Z",
		"userId": "usr-7Q2x9KpL", "anonymousId": "8f14e45f-ceea-467f-a1d2-3b1c2e9d7a10",
		"context": map[string]any{"locale": "en-US", "page": map[string]any{"path": "/cart", "url": "https://shop.example/cart"},
			"location": map[string]any{"country": "DE", "city": "Berlin"}},
		"properties": map[string]any{"product_id": "sku-1", "category": "shoes", "currency": "EUR", "revenue": 12.5, "title": "Cart"},
		"traits":     map[string]any{"plan": "pro"},
	}
	var marks []string
	for path := range lits {
		mark := fmt.Sprintf("@@LIT%d@@", len(marks))
		marks = append(marks, path)
		set(ev, path, mark)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	out := string(b)
	for i, path := range marks {
		out = strings.Replace(out, fmt.Sprintf(`"@@LIT%d@@"`, i), lits[path], 1)
	}
	return out
}

func set(m map[string]any, path, v string) {
	segs := strings.Split(path, ".")
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
}

// leaks reports whether s holds needle in a form a reader undoes without
// a key: case, JSON escapes, percent-encoding (repeated), HTML references,
// Unicode compatibility forms and invisible characters, base64 (either
// alphabet, any alignment) and hex of any run.
func leaks(s, needle string) bool {
	n := strings.ToLower(needle)
	var texts []string
	var v any
	if json.Unmarshal([]byte(s), &v) == nil {
		collectStrings(v, &texts)
	}
	texts = append(texts, s)
	for _, t := range texts {
		for _, form := range decodeAll(t) {
			if strings.Contains(strings.ToLower(form), n) {
				return true
			}
		}
	}
	return false
}

func collectStrings(v any, out *[]string) {
	switch v := v.(type) {
	case string:
		*out = append(*out, v)
	case map[string]any:
		for k, x := range v {
			*out = append(*out, k)
			collectStrings(x, out)
		}
	case []any:
		for _, x := range v {
			collectStrings(x, out)
		}
	case json.Number:
		*out = append(*out, v.String())
	}
}

func decodeAll(s string) []string {
	forms := []string{s}
	d := s
	for i := 0; i < 4; i++ {
		if u, err := url.QueryUnescape(d); err == nil {
			d = u
		}
	}
	d = html.UnescapeString(d)
	d = strings.Map(func(r rune) rune {
		if r == 0x200b || r == 0x200c || r == 0x200d || r == 0x2060 || r == 0xfeff {
			return -1
		}
		return r
	}, norm.NFKC.String(d))
	forms = append(forms, d)
	// Runs of base64/hex characters, decoded at every alignment.
	isB64 := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
	}
	for _, t := range []string{s, d} {
		for i := 0; i < len(t); {
			j := i
			for j < len(t) && isB64(t[j]) {
				j++
			}
			if j-i >= 8 {
				run := t[i:j]
				for a := 0; a < 4 && a < len(run); a++ {
					r := strings.NewReplacer("-", "+", "_", "/").Replace(run[a:])
					r = r[:len(r)/4*4]
					if b, err := base64.StdEncoding.DecodeString(r); err == nil {
						forms = append(forms, string(b))
					}
					if a < 2 {
						h := run[a:]
						if b, err := hex.DecodeString(h[:len(h)/2*2]); err == nil {
							forms = append(forms, string(b))
						}
					}
				}
			}
			i = j + 1
		}
	}
	return forms
}

// FuzzTaint: any identifier value of six bytes or more, dropped from its
// own field, is gone from a kept field that echoes it plain, in upper
// case, percent-encoded, base64 or hex, glued to other text.
func FuzzTaint(f *testing.F) {
	for _, s := range []string{"usr-7Q2x9KpL", "alice@example.com", "198.51.100.77", "Mozilla/5.0 (X11)", "7008984883", "ÄÖÜ-äöü-12"} {
		f.Add(s, uint8(0))
	}
	p, err := Load("../configs/policy.yaml", testKeys(f))
	if err != nil {
		f.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	f.Fuzz(func(t *testing.T, v string, form uint8) {
		// Values holding "%" or "&" are searched as written and fully
		// decoded, not half-decoded (README, taint tracking).
		if len(strings.TrimSpace(v)) < 6 || !utf8.ValidString(v) || strings.ContainsAny(v, "[]\\\"%&") || strings.ContainsFunc(v, unicode.IsControl) {
			return
		}
		encs := []func(string) string{
			func(s string) string { return s },
			strings.ToUpper,
			url.QueryEscape,
			func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
			func(s string) string { return hex.EncodeToString([]byte(s)) },
		}
		enc := int(form) % len(encs)
		if enc == 3 && !isASCIIString(v) {
			return // base64 of non-ASCII text is not looked for (README, taint tracking)
		}
		echo := "ref" + encs[enc](v) + "x"
		ev := buildEvent(map[string]string{"context.device.advertisingId": strconv.Quote(v), "properties.title": strconv.Quote(echo)})
		d, err := decide(t, p, ev, all)
		if err != nil {
			return // dead-lettered: nothing written
		}
		for _, o := range d.Outputs {
			if o.Value == nil {
				continue
			}
			var out struct {
				Properties struct{ Title string } `json:"properties"`
			}
			if err := json.Unmarshal(o.Value, &out); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(out.Properties.Title), strings.ToLower(v)) || (out.Properties.Title == echo && echo != "ref"+v+"x") {
				t.Fatalf("%s: %q echoed as %q kept as %q", o.Output.Name, v, echo, out.Properties.Title)
			}
		}
	})
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestTooManyIdentifiers: an event with more distinct identifier values
// than taint tracking searches for is dead-lettered, not passed on with
// some of them unchecked; at the limit it is written.
func TestTooManyIdentifiers(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "personalization", "analytics", "advertising")
	event := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"x%d":{"email":"id-%06d-x"}`, i, i)
		}
		return `{"type":"track","event":"Order Completed","userId":"usr-7Q2x9KpL","properties":{"title":"t"` + b.String() + `}}`
	}
	if d, err := decide(t, p, event(MaxNeedles-4), all); err != nil || d.Written() == 0 {
		t.Fatalf("below the limit: %v", err)
	}
	_, err = decide(t, p, event(MaxNeedles+1), all)
	wantInputError(t, err, ReasonTooManyIdentifiers)
}
