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
		if hasDuplicateKey(t, data) {
			t.Fatalf("Parse accepted duplicate keys in %q", data)
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
			t.Fatalf("edit of a parsed document failed: %v", err)
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

// hasDuplicateKey reports, with encoding/json's tokenizer, whether some
// object in data repeats a key.
func hasDuplicateKey(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj    bool
		keys   map[string]bool
		wanted bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wanted {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.wanted = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, wanted: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wanted = true
		}
	}
}
