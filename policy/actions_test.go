package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestActionsNameNoInputKeys feeds keys that are personal data, and very
// many keys, through every path-based transform: the actions header and
// the explanation must name policy paths and counts only, and stay small.
func TestActionsNameNoInputKeys(t *testing.T) {
	many := func(n int, f string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"`+f+`":%d`, i, i)
		}
		return b.String()
	}
	tests := []struct {
		name      string
		transform string
		ev        string
		actions   string
		secrets   []string
		kept      bool // the keys stay in the value (the transform does not remove them)
	}{
		{"email as a key under keep_only", `[{keep_only: [userId, properties.sku]}]`,
			`{"userId":"u1","properties":{"alice@example.com":true,"sku":"s"}}`,
			"keep_only:properties(1 removed)", []string{"alice"}, false},
		{"escaped email key", `[{keep_only: [userId]}]`,
			`{"userId":"u1","\u0062ob@example.com":1}`,
			"keep_only:$(1 removed)", []string{"bob"}, false},
		{"email keys matched by a wildcard drop", `[{drop_fields: ["traits.*.email"]}]`,
			`{"userId":"u1","traits":{"carol@example.com":{"email":"x"},"dave@example.com":{"email":"y"}}}`,
			"drop_fields:traits.*.email(2)", []string{"carol", "dave"}, true},
		{"wildcard under keep_only", `[{keep_only: [userId, "context.*.id"]}]`,
			`{"userId":"u1","context":{"erin@example.com":{"id":1,"frank@example.com":2},"device":{"id":"d","x":1}}}`,
			"keep_only:context.*(2 removed)", []string{"frank"}, false},
		{"wildcard pseudonymize", `[{pseudonymize: {fields: ["ids.*"]}}]`,
			`{"userId":"u1","ids":{"gina@example.com":"a","hank@example.com":"b"}}`,
			"pseudonymize:ids.*(2)", []string{"gina", "hank"}, true},
		{"40 000 keys at the top level", `[{keep_only: [userId]}]`,
			`{"userId":"u1",` + many(40000, "user%d@example.com") + `}`,
			"keep_only:$(40000 removed)", []string{"user1@", "example.com"}, false},
		{"40 000 wildcard matches", `[{drop_fields: ["p.*"]}]`,
			`{"userId":"u1","p":{` + many(40000, "ivy%d@example.com") + `}}`,
			"drop_fields:p.*(40000)", []string{"ivy"}, false},
		{"repeated and interleaved actions merge", `[{keep_only: [userId, a.k, b.k]}]`,
			`{"userId":"u1","a":{"k":1,"x@y":1,"z@y":2},"b":{"k":1,"w@y":1},"c@y":1}`,
			"keep_only:a(2 removed),keep_only:b(1 removed),keep_only:$(1 removed)", []string{"@y"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization], transforms: "+tt.transform+"}\n")
			d, err := decide(t, p, tt.ev, granted(1, "personalization"))
			if err != nil {
				t.Fatal(err)
			}
			o := d.Outputs[0]
			h := o.ActionsHeader()
			if h != tt.actions {
				t.Errorf("actions\n got %.300s\nwant %s", h, tt.actions)
			}
			if len(h) > MaxActionsHeader {
				t.Errorf("header of %d bytes", len(h))
			}
			ex := d.Explain()
			for _, s := range tt.secrets {
				if strings.Contains(h, s) || strings.Contains(ex, s) {
					t.Errorf("input key %q reaches the header or explanation: %.200s / %.200s", s, h, ex)
				}
				if !tt.kept && strings.Contains(string(o.Value), s) {
					t.Errorf("removed key %q is still in the value", s)
				}
			}
		})
	}
}

func TestActionsHeaderIsBounded(t *testing.T) {
	var acts []Action
	for i := range 500 {
		acts = append(acts, Action{Op: "drop_fields", Path: fmt.Sprintf("a.very.long.policy.path.number.%03d", i)})
	}
	o := OutputDecision{Actions: acts}
	h := o.ActionsHeader()
	if len(h) > MaxActionsHeader || !strings.HasSuffix(h, " more") {
		t.Fatalf("header of %d bytes: ...%s", len(h), h[max(0, len(h)-40):])
	}
	var more int
	fmt.Sscanf(h[strings.LastIndexByte(h, '+'):], "+%d more", &more)
	if shown := strings.Count(h, "drop_fields:"); shown+more != 500 {
		t.Fatalf("%d shown + %d more, want 500", shown, more)
	}
	if (&OutputDecision{}).ActionsHeader() != "none" {
		t.Fatal("no actions must render none")
	}
}
