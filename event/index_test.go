package event

import (
	"encoding/json"
	"testing"
)

// allKeys returns every key of every object in the JSON text, inside
// arrays too, as encoding/json reads them.
func allKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("parsed JSON encoding/json refuses: %v", err)
	}
	var keys []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				keys = append(keys, k)
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return keys
}

// FuzzIndex: MayHaveKey never says no for a key the document has, at any
// depth, arrays included; Kept agrees with WalkOriginal's kept for every
// member after removals and replacements; Ref.Index is below Members and
// unique.
func FuzzIndex(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "ctx", "a.b")
		f.Add([]byte(s), "context.page", "*")
	}
	f.Add([]byte(`{"a":{"b":{"c":1,"d":[{"deep":{"k":2}}]},"e":"x"},"f":{"g":{"h":3}}}`), "a.b", "f.g.h")
	f.Add([]byte(`{"x\u0041":1,"k":[{"in array":true}],"":0}`), "k", "xA")
	f.Fuzz(func(t *testing.T, data []byte, removeAt, replaceAt string) {
		var d Doc
		if d.Parse(data) != nil {
			return
		}
		for _, k := range allKeys(t, data) {
			if !d.MayHaveKey(k) {
				t.Fatalf("MayHaveKey(%q) is false in %s", k, data)
			}
		}
		var e Edit
		e.Reset(&d)
		if p, err := ParsePath(removeAt); err == nil {
			_ = e.Each(p, func(r Ref) error { e.Remove(r); return nil })
		}
		if p, err := ParsePath(replaceAt); err == nil {
			_ = e.Each(p, func(r Ref) error { e.Replace(r, []byte(`0`)); return nil })
		}
		seen := map[int]bool{}
		e.WalkOriginal(func(_ int, r Ref, key []byte, _ Value, kept bool) {
			if got := e.Kept(r); got != kept {
				t.Fatalf("Kept(%q) = %t, WalkOriginal says %t (removed %q, replaced %q) in %s", key, got, kept, removeAt, replaceAt, data)
			}
			if i := r.Index(); i < 0 || i >= d.Members() || seen[i] {
				t.Fatalf("Ref.Index %d: out of [0,%d) or seen twice", i, d.Members())
			}
			seen[r.Index()] = true
		})
		if len(seen) != d.Members() {
			t.Fatalf("WalkOriginal visited %d members of %d", len(seen), d.Members())
		}
	})
}

func TestMayHaveKeyRulesOut(t *testing.T) {
	var d Doc
	doc := []byte(`{"type":"track","userId":"u1","properties":{"title":"categoryPreferences consentManagement"},"context":{"page":{"url":"x"}},"list":[{"nested":1}]}`)
	if err := d.Parse(doc); err != nil {
		t.Fatal(err)
	}
	// Names in values only are not keys; most absent names are ruled
	// out (the filter may let a few through, never miss a present one).
	absent := []string{"categoryPreferences", "consentManagement", "gpc", "__tcfapi", "gpp", "us_privacy", "integrations", "traits", "ip", "email"}
	ruledOut := 0
	for _, k := range absent {
		if !d.MayHaveKey(k) {
			ruledOut++
		}
	}
	if ruledOut < len(absent)-2 {
		t.Errorf("MayHaveKey ruled out %d of %d absent names", ruledOut, len(absent))
	}
	for _, k := range []string{"type", "userId", "title", "page", "url", "list", "nested"} {
		if !d.MayHaveKey(k) {
			t.Errorf("MayHaveKey(%q) = false", k)
		}
	}
	if err := d.Parse([]byte(`{"a\u0062":1}`)); err != nil {
		t.Fatal(err)
	}
	if !d.MayHaveKey("zz") {
		t.Error("an escaped key anywhere: MayHaveKey must say maybe")
	}
}

func TestGetText(t *testing.T) {
	var d Doc
	if err := d.Parse([]byte(`{"a":"x\"y","b":"plain","c":1,"d":null}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want string
		found, err bool
	}{{"a", `x"y`, true, false}, {"b", "plain", true, false}, {"c", "", false, true}, {"d", "", false, false}, {"e", "", false, false}} {
		b, found, err := d.GetText(MustPath(c.path))
		s, sfound, serr := d.GetString(MustPath(c.path))
		if string(b) != c.want || found != c.found || (err != nil) != c.err || s != c.want || sfound != found || (serr != nil) != c.err {
			t.Errorf("%s: GetText %q %t %v, GetString %q %t %v", c.path, b, found, err, s, sfound, serr)
		}
	}
}
