package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustParse(t *testing.T, s string) *Doc {
	t.Helper()
	var d Doc
	if err := d.Parse([]byte(s)); err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return &d
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrSyntax},
		{"whitespace only", `   `, ErrSyntax},
		{"array", `[1,2]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"number", `12`, ErrNotObject},
		{"truncated", `{"a":1`, ErrSyntax},
		{"trailing comma", `{"a":1,}`, ErrSyntax},
		{"trailing data", `{"a":1} {}`, ErrSyntax},
		{"unquoted key", `{a:1}`, ErrSyntax},
		{"single quotes", `{'a':1}`, ErrSyntax},
		{"leading zero", `{"a":01}`, ErrSyntax},
		{"bare minus", `{"a":-}`, ErrSyntax},
		{"dot without digits", `{"a":1.}`, ErrSyntax},
		{"exponent without digits", `{"a":1e}`, ErrSyntax},
		{"bad literal", `{"a":tru}`, ErrSyntax},
		{"bad escape", `{"a":"\x"}`, ErrSyntax},
		{"short unicode escape", `{"a":"\u12"}`, ErrSyntax},
		{"control char", "{\"a\":\"x\ny\"}", ErrSyntax},
		{"invalid utf8", "{\"a\":\"\xff\"}", ErrSyntax},
		{"unterminated string", `{"a":"abc`, ErrSyntax},
		{"array missing comma", `{"a":[1 2]}`, ErrSyntax},
		{"too deep", strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1), ErrTooDeep},
		{"too deep in arrays", `{"a":` + strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1) + `}`, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Doc
			err := d.Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestGet(t *testing.T) {
	d := mustParse(t, `{"userId":"u1","n":12.5,"ctx":{"ip":"1.2.3.4","deep":{"x":null}},"esc":"a\"b\u00e9","list":[{"userId":"no"}],"u\u0049d":"escaped-key"}`)
	tests := []struct {
		path      string
		wantFound bool
		wantKind  Kind
		wantStr   string
	}{
		{"userId", true, String, "u1"},
		{"n", true, Number, "12.5"},
		{"ctx.ip", true, String, "1.2.3.4"},
		{"ctx.deep.x", true, Null, "null"},
		{"ctx.deep", true, Object, `{"x":null}`},
		{"esc", true, String, `a"bé`},
		{"uId", true, String, "escaped-key"},
		{"ctx.missing", false, Invalid, ""},
		{"userId.more", false, Invalid, ""},
		{"list.userId", false, Invalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			v, found, err := d.Get(MustPath(tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound || v.Kind != tt.wantKind || (found && v.Str() != tt.wantStr) {
				t.Fatalf("Get(%s) = (%v %q, %v), want (%v %q, %v)", tt.path, v.Kind, v.Str(), found, tt.wantKind, tt.wantStr, tt.wantFound)
			}
		})
	}
}

func TestParseRejectsDuplicateAndInvalidKeys(t *testing.T) {
	many := func(n int, dupAt int) string {
		var b strings.Builder
		b.WriteString(`{"p":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			k := i
			if i == dupAt {
				k = 7
			}
			fmt.Fprintf(&b, `"k%d":1`, k)
		}
		b.WriteString(`}}`)
		return b.String()
	}
	tests := []struct {
		name string
		doc  string
		want error // nil: accepted
	}{
		{"plain duplicate", `{"ctx":{"ip":"1.1.1.1","ip":"2.2.2.2"}}`, ErrDuplicateKey},
		{"escaped duplicate", `{"ctx":{"ip":"1.1.1.1","\u0069p":"2.2.2.2"}}`, ErrDuplicateKey},
		{"escaped slash duplicate", `{"a/b":1,"a\/b":2}`, ErrDuplicateKey},
		{"duplicate parent", `{"ctx":{"ip":"1.1.1.1"},"ctx":{"ip":"2.2.2.2"}}`, ErrDuplicateKey},
		{"duplicate in an untouched object", `{"ctx":{"ip":"1"},"props":{"user":{"email":"x","email":"y"}}}`, ErrDuplicateKey},
		{"duplicate in an object inside an array", `{"items":[{"sku":"a"},{"email":"x","email":"y"}]}`, ErrDuplicateKey},
		{"duplicate deep in arrays", `{"a":[[{"b":[{"c":1,"c":2}]}]]}`, ErrDuplicateKey},
		{"duplicate among 40 keys", many(40, 39), ErrDuplicateKey},
		{"duplicate among 40 000 keys", many(40000, 39999), ErrDuplicateKey},
		{"40 000 distinct keys", many(40000, -1), nil},
		{"same key in sibling objects is fine", `{"a":{"id":1},"b":{"id":1},"c":[{"id":1},{"id":2}]}`, nil},
		{"case differs: not a duplicate", `{"email":1,"Email":2}`, nil},
		{"lone low surrogate", `{"\udc00email":"x"}`, ErrInvalidKey},
		{"lone high surrogate", `{"email\ud800":"x"}`, ErrInvalidKey},
		{"high surrogate then letter", `{"\ud800a":"x"}`, ErrInvalidKey},
		{"two high surrogates", `{"\ud800\ud800":"x"}`, ErrInvalidKey},
		{"paired surrogates are fine", `{"\ud83d\ude00":"x"}`, nil},
		{"escaped NUL", `{"email\u0000":"x"}`, ErrInvalidKey},
		{"escaped newline", `{"email\n":"x"}`, ErrInvalidKey},
		{"escaped tab", `{"\temail":"x"}`, ErrInvalidKey},
		{"escaped DEL", `{"e\u007fmail":"x"}`, ErrInvalidKey},
		{"raw DEL", "{\"e\x7fmail\":\"x\"}", ErrInvalidKey},
		{"escaped C1 control", `{"e\u0085mail":"x"}`, ErrInvalidKey},
		{"raw C1 control", "{\"e\u0085mail\":\"x\"}", ErrInvalidKey},
		{"invalid key inside an array", `{"a":[{"\udfff":1}]}`, ErrInvalidKey},
		{"NUL in a value is data, not a key", `{"a":"x\u0000y","b":"\udc00"}`, nil},
		{"non-ASCII keys are fine", `{"prénom":"x","名前":"y","\u00e9":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Doc
			err := d.Parse([]byte(tt.doc))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%.60s) = %v, want %v", tt.doc, err, tt.want)
			}
			if strings.Contains(err.Error(), "email") {
				t.Fatalf("error echoes a key: %v", err)
			}
		})
	}
}

func edit(t *testing.T, doc string, fn func(e *Edit) error) string {
	t.Helper()
	d := mustParse(t, doc)
	var e Edit
	e.Reset(d)
	if err := fn(&e); err != nil {
		t.Fatal(err)
	}
	out := e.AppendTo(nil)
	if !json.Valid(out) {
		t.Fatalf("output is not valid JSON: %s", out)
	}
	return string(out)
}

func remove(p string) func(e *Edit) error {
	return func(e *Edit) error {
		return e.Each(MustPath(p), func(r Ref) error { e.Remove(r); return nil })
	}
}

func TestEdit(t *testing.T) {
	const doc = `{"a": 1, "ctx": {"ip": "1.2.3.4", "ua": "x", "page": {"url": "u", "path": "/p"}}, "props": {"k": [1, {"ip": 2}]}, "z": true}`
	tests := []struct {
		name string
		fn   func(e *Edit) error
		want string
	}{
		{"no edit copies verbatim", func(*Edit) error { return nil }, doc},
		{"remove leaf", remove("ctx.ip"), `{"a":1,"ctx":{"ua": "x","page": {"url": "u", "path": "/p"}},"props": {"k": [1, {"ip": 2}]},"z":true}`},
		{"remove first", remove("a"), `{"ctx": {"ip": "1.2.3.4", "ua": "x", "page": {"url": "u", "path": "/p"}},"props": {"k": [1, {"ip": 2}]},"z":true}`},
		{"remove last", remove("z"), `{"a":1,"ctx": {"ip": "1.2.3.4", "ua": "x", "page": {"url": "u", "path": "/p"}},"props": {"k": [1, {"ip": 2}]}}`},
		{"remove missing is a no-op", remove("ctx.nope"), doc},
		{"wildcard", remove("ctx.*"), `{"a":1,"ctx":{},"props": {"k": [1, {"ip": 2}]},"z":true}`},
		{"wildcard middle", remove("ctx.*.url"), `{"a":1,"ctx":{"ip": "1.2.3.4","ua": "x","page":{"path": "/p"}},"props": {"k": [1, {"ip": 2}]},"z":true}`},
		{"replace", func(e *Edit) error {
			return e.Each(MustPath("ctx.page.url"), func(r Ref) error { e.Replace(r, []byte(`"X"`)); return nil })
		}, `{"a":1,"ctx":{"ip": "1.2.3.4","ua": "x","page":{"url":"X","path": "/p"}},"props": {"k": [1, {"ip": 2}]},"z":true}`},
		{"keep only", func(e *Edit) error {
			return e.KeepOnly(NewKeepSet([]Path{MustPath("a"), MustPath("ctx.page.path"), MustPath("props")}), nil)
		}, `{"a":1,"ctx":{"page":{"path": "/p"}},"props": {"k": [1, {"ip": 2}]}}`},
		{"keep only wildcard", func(e *Edit) error {
			return e.KeepOnly(NewKeepSet([]Path{MustPath("ctx.*")}), nil)
		}, `{"ctx": {"ip": "1.2.3.4", "ua": "x", "page": {"url": "u", "path": "/p"}}}`},
		{"keep only wildcard merged with a named path", func(e *Edit) error {
			return e.KeepOnly(NewKeepSet([]Path{MustPath("ctx.*.url"), MustPath("ctx.page.path"), MustPath("ctx.ip")}), nil)
		}, `{"ctx":{"ip": "1.2.3.4","page":{"url": "u", "path": "/p"}}}`},
		{"keep only whole wildcard wins over a deeper path", func(e *Edit) error {
			return e.KeepOnly(NewKeepSet([]Path{MustPath("*"), MustPath("ctx.ip")}), nil)
		}, doc},
		{"keep only through a non-object removes it", func(e *Edit) error {
			return e.KeepOnly(NewKeepSet([]Path{MustPath("a.b")}), nil)
		}, `{}`},
		{"removed member is not matched again", func(e *Edit) error {
			if err := remove("ctx")(e); err != nil {
				return err
			}
			n := 0
			err := e.Each(MustPath("ctx.ip"), func(Ref) error { n++; return nil })
			if n != 0 {
				t.Errorf("matched %d removed members", n)
			}
			return err
		}, `{"a":1,"props": {"k": [1, {"ip": 2}]},"z":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := edit(t, doc, tt.fn); compact(t, got) != compact(t, tt.want) {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("compact %s: %v", s, err)
	}
	return b.String()
}

func TestUntouchedSubtreesAreCopiedVerbatim(t *testing.T) {
	const doc = `{"a" : 1, "ctx": {"ip": "1.2.3.4"}, "props": {"k": [1, {"ip": 2}],  "s": "\u00e9"}}`
	if got := edit(t, doc, func(*Edit) error { return nil }); got != doc {
		t.Fatalf("unedited document changed:\n%s", got)
	}
	got := edit(t, doc, remove("ctx.ip"))
	if !strings.Contains(got, `"props":{"k": [1, {"ip": 2}],  "s": "\u00e9"}`) {
		t.Fatalf("untouched subtree not verbatim: %s", got)
	}
}

func TestEditIsIndependentPerOutput(t *testing.T) {
	d := mustParse(t, `{"a":1,"b":2}`)
	var e Edit
	e.Reset(d)
	_ = e.Each(MustPath("a"), func(r Ref) error { e.Remove(r); return nil })
	if got := string(e.AppendTo(nil)); got != `{"b":2}` {
		t.Fatalf("first edit: %s", got)
	}
	e.Reset(d)
	if got := string(e.AppendTo(nil)); got != `{"a":1,"b":2}` {
		t.Fatalf("after Reset: %s", got)
	}
}

func TestKeepOnlyReportsPolicyPathsAndCounts(t *testing.T) {
	d := mustParse(t, `{"alice@example.com":true,"keep":1,"ctx":{"dev":{"id":"d","bob@example.com":2},"app":{"id":"a","x":3}},"\u0063arol@x":4}`)
	var e Edit
	e.Reset(d)
	var got []string
	err := e.KeepOnly(NewKeepSet([]Path{MustPath("keep"), MustPath("ctx.*.id")}), func(path string, n int) {
		got = append(got, fmt.Sprintf("%s=%d", path, n))
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "ctx.*=1 ctx.*=1 =2" {
		t.Fatalf("reported %q", s)
	}
	if out := string(e.AppendTo(nil)); out != `{"keep":1,"ctx":{"dev":{"id":"d"},"app":{"id":"a"}}}` {
		t.Fatalf("kept %s", out)
	}
}

func TestParsePath(t *testing.T) {
	for _, bad := range []string{"", ".", "a..b", "a.", "a*", "a.b*"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) succeeded", bad)
		}
	}
	if p, err := ParsePath("context.*.ip"); err != nil || len(p) != 3 || !p.HasWildcard() {
		t.Errorf("ParsePath(context.*.ip) = %v, %v", p, err)
	}
}

func TestMayHaveKey(t *testing.T) {
	d := mustParse(t, `{"a":{"gpc":true},"s":"mentions gpc"}`)
	if !d.MayHaveKey("gpc") || d.MayHaveKey("consent") || d.MayHaveKey("mentions") {
		t.Fatal("MayHaveKey on plain keys")
	}
	// An escaped key anywhere disables the shortcut: "\u0067pc" is "gpc".
	e := mustParse(t, `{"a":{"\u0067pc":true}}`)
	if !e.MayHaveKey("gpc") || !e.MayHaveKey("anything") {
		t.Fatal("MayHaveKey must answer true when keys are escaped")
	}
}
