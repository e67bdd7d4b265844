package event

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFoldKey(t *testing.T) {
	for in, want := range map[string]string{
		"userId":         "userid",
		"UserID":         "userid",
		" userId\t":      "userid",
		"ｕｓｅｒＩｄ":         "userid",
		"user\u200bId":   "userid",
		"e\u00admail":    "email",
		"\u00a0email":    "email",
		"𝐞𝐦𝐚𝐢𝐥":          "email",
		"Straße":         "strasse",
		"ﬁle":            "file",
		"email\ufe0f":    "email",
		"\u2060ip\ufeff": "ip",
		"ıp":             "ıp",
	} {
		if got := FoldKey(in); got != want {
			t.Errorf("FoldKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	g := NewKeyGuard([]Path{MustPath("userId"), MustPath("context.ip"), MustPath("context.*.id")})
	for doc, bad := range map[string]bool{
		`{"userId":"u","context":{"ip":"1","device":{"id":"d"}}}`: false,
		`{"USERID":"u"}`:                     true,
		`{"context":{"Ip":"1"}}`:             true,
		`{"context":{"device":{"ID":"d"}}}`:  true,
		`{"context":{"device":{"Id2":"d"}}}`: false,
		`{"other":{"IP":"1"}}`:               false,
		`{"context":"IP"}`:                   false,
	} {
		err := mustParse(t, doc).CheckKeys(g)
		if bad != errors.Is(err, ErrConfusableKey) {
			t.Errorf("CheckKeys(%s) = %v, want confusable %v", doc, err, bad)
		}
	}
}

// FuzzFoldKey checks that folding is idempotent and that a document that
// passes CheckKeys has, at guarded levels, only keys that are either a
// named segment or fold to none.
func FuzzFoldKey(f *testing.F) {
	for _, s := range []string{"userId", "ｕｓｅｒＩｄ", "user\u200bId ", "Straße", "\u0130", "ﬃ", "\u1e9e", "e\u0301"} {
		f.Add(s)
	}
	g := NewKeyGuard([]Path{MustPath("userId"), MustPath("context.ip")})
	f.Fuzz(func(t *testing.T, key string) {
		k := FoldKey(key)
		if FoldKey(k) != k {
			t.Fatalf("FoldKey not idempotent: %q -> %q -> %q", key, k, FoldKey(k))
		}
		doc := []byte(`{"context":{` + strconvQuote(key) + `:1}}`)
		var d Doc
		if d.Parse(doc) != nil {
			return
		}
		err := d.CheckKeys(g)
		if (key != "ip" && k == "ip") != (err != nil) {
			t.Fatalf("CheckKeys(%q folded %q) = %v", key, k, err)
		}
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
