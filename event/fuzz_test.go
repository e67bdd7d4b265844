package event

import (
	"bytes"
	"encoding/json"
	"testing"
)

var fuzzSeeds = []string{
	`{"type":"track","userId":"u1","context":{"ip":"1.2.3.4","page":{"url":"x"}}}`,
	`{"a":{"b":{"c":[1,2,{"d":null}]}},"e":"\u00e9\n","f":-1.5e+3}`,
	`{"ctx":{"ip":"1","ip":"2"}}`,
	`{"ctx":{"\u0069p":"1","ip":"2"}}`,
	` {"x" : [ ] , "y" : { } } `,
	`[]`,
	`{"a":`,
}

// FuzzParse checks that Parse accepts only valid JSON objects and that an
// unedited document is reproduced byte for byte.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Doc
		if err := d.Parse(data); err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON %q", data)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("Parse accepted %q, encoding/json says %v", data, err)
		}
		var e Edit
		e.Reset(&d)
		if got, want := e.AppendTo(nil), bytes.Trim(data, " \t\r\n"); !bytes.Equal(got, want) {
			t.Fatalf("unedited output differs:\n%q\n%q", got, want)
		}
	})
}

// FuzzEdit checks that removing a path, or keeping only it, yields valid
// JSON in which no removed field survives, duplicates included.
func FuzzEdit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "context.ip", false)
		f.Add([]byte(s), "ctx.ip", true)
		f.Add([]byte(s), "a.*.c", false)
	}
	f.Fuzz(func(t *testing.T, data []byte, path string, keep bool) {
		p, err := ParsePath(path)
		if err != nil || p.HasWildcard() {
			return
		}
		var d Doc
		if err := d.Parse(data); err != nil {
			return
		}
		var e Edit
		e.Reset(&d)
		if keep {
			err = e.KeepOnly(NewKeepSet([]Path{p}), nil)
		} else {
			err = e.Each(p, func(r Ref) error { e.Remove(r); return nil })
		}
		if err != nil {
			return // duplicate keys on the path: the caller dead-letters
		}
		out := e.AppendTo(nil)
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("edited output is not a JSON object: %q (%v)", out, err)
		}
		if keep {
			for k := range m {
				if k != p[0] {
					t.Fatalf("keep_only %s left %q in %q", path, k, out)
				}
			}
			return
		}
		if present(m, p) {
			t.Fatalf("removed %s survived in %q", path, out)
		}
	})
}

func present(v any, p Path) bool {
	for _, seg := range p {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[seg]; !ok {
			return false
		}
	}
	return true
}
