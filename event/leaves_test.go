package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// refLeaves lists the leaves of the JSON value raw as EachLeaf documents
// them, from encoding/json's token stream: "k1/k2=kind:text" each, the
// object keys on the way, "-" for none.
func refLeaves(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		obj    bool
		key    string
		hasKey bool
		expect bool // object: the next string is a key
	}
	var stack []frame
	var out []string
	nearest := func() string {
		var ks []string
		for _, f := range stack {
			if f.obj && f.hasKey {
				ks = append(ks, f.key)
			}
		}
		if len(ks) == 0 {
			return "-"
		}
		return strings.Join(ks, "/")
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expect = true
				}
				continue
			}
			top := &stack[len(stack)-1]
			top.key, top.hasKey, top.expect = tok.(string), true, false
			continue
		}
		leaf := ""
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{obj: true, expect: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			leaf = "string:" + v
		case json.Number:
			leaf = "number:" + v.String()
		case bool:
			leaf = fmt.Sprintf("bool:%v", v)
		case nil:
			leaf = "null:null"
		}
		if leaf != "" {
			out = append(out, nearest()+"="+leaf)
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].expect = true
		}
	}
}

func leaves(v Value) []string {
	var out []string
	v.EachLeaf(func(keys [][]byte, l Value) {
		k := "-"
		if len(keys) > 0 {
			k = string(bytes.Join(keys, []byte("/")))
		}
		out = append(out, k+"="+l.Kind.String()+":"+l.Str())
	})
	return out
}

func checkLeaves(t *testing.T, data []byte) {
	var d Doc
	if err := d.Parse(data); err != nil {
		return
	}
	for i := range d.members {
		v := d.valueAt(&d.nodes[d.members[i].val])
		if v.Kind != Array && v.Kind != Object {
			continue
		}
		got, want := leaves(v), refLeaves(t, v.Raw)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("leaves of %s:\ngot  %q\nwant %q", v.Raw, got, want)
		}
	}
}

func TestEachLeaf(t *testing.T) {
	for _, doc := range []string{
		`{"externalId":[{"id":"b-1","type":"brazeExternalId"},{"id":42,"type":"x"}]}`,
		`{"contexts":[{"schema":"iglu:x","data":{"domain_userid":"d-9","n":[1,[2,"three"]]}}]}`,
		`{"a":[ "x" , 1.5e3 , true , false , null , [ ] , { } , {"k\u0069y":"v\"q"} ]}`,
		`{"o":{"p":{"q":["r"]},"s":[{"t":{}}]}}`,
		`{"e":[],"f":{}}`,
	} {
		checkLeaves(t, []byte(doc))
	}
	var d Doc
	if err := d.Parse([]byte(`{"x":[{"id":"a"},"b"]}`)); err != nil {
		t.Fatal(err)
	}
	v, _, _ := d.Get(MustPath("x"))
	if got := leaves(v); strings.Join(got, ",") != "id=string:a,-=string:b" {
		t.Fatalf("leaves = %q", got)
	}
	if err := d.Parse([]byte(`{"x":[{"a":{"b":["c",{"d":1}]}}]}`)); err != nil {
		t.Fatal(err)
	}
	v, _, _ = d.Get(MustPath("x"))
	if got := leaves(v); strings.Join(got, ",") != "a/b=string:c,a/b/d=number:1" {
		t.Fatalf("leaves = %q", got)
	}
	if got := leaves(Value{Kind: String, Raw: []byte(`"s"`)}); got != nil {
		t.Fatalf("a string has leaves %q", got)
	}
}

// FuzzEachLeaf checks EachLeaf against encoding/json's token stream on
// every array and object member of any document Parse accepts.
func FuzzEachLeaf(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"externalId":[{"id":"b-1","type":"brazeExternalId"}],"c":{"d":[{"e\n":"\u00e9"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkLeaves(t, data) })
}
