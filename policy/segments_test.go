package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// segPolicy is a policy with two outputs: "a" keeps type, event,
// context.locale and context.location.country verbatim and rewrites
// the rest; "b" keeps only type and event.
const segPolicy = `version: v
purposes: [p]
pseudonym_key: k1
%s
outputs:
  - name: a
    topic: ta
    require: [p]
    %s
    transforms:
      - drop_fields: [context.device]
      - keep_only: [type, event, userId, context.locale, context.location, context.ip, context.page, properties.plan, timestamp, properties.email_domain]
      - pseudonymize: {fields: [userId]}
      - truncate_ip: {}
      - round_geo: {}
      - truncate_time: {fields: [timestamp], to: hour}
      - scrub: {urls: [context.page.url]}
  - name: b
    topic: tb
    require: [p]
    %s
    transforms:
      - keep_only: [type, event]
`

func segSpec(top, a, b string) string { return fmt.Sprintf(segPolicy, top, a, b) }

func TestSegmentsCompile(t *testing.T) {
	tests := []struct {
		name         string
		top, a, b    string
		want         string // error substring; "" = compiles
		fields       []string
		byA, byB     []string
		top2, ratio2 float64
	}{
		{name: "none", want: "", fields: nil},
		{name: "policy-wide", top: "segments: {fields: [type, event]}", fields: []string{"type", "event"}, byA: []string{"type", "event"}, byB: []string{"type", "event"}},
		{name: "per output", top: "segments: {fields: [type], top: 5, flag_ratio: 2}", a: "segments: [context.location.country, properties.plan]", fields: []string{"context.location.country", "properties.plan", "type"}, byA: []string{"context.location.country", "properties.plan"}, byB: []string{"type"}, top2: 5, ratio2: 2},
		{name: "output opts out", top: "segments: {fields: [type]}", b: "segments: []", fields: []string{"type"}, byA: []string{"type"}, byB: nil},
		{name: "not kept by b", top: "segments: {fields: [context.locale]}", want: `"context.locale" cannot be a segment of output b: keep_only does not keep it`},
		{name: "dropped", a: "segments: [context.device.type]", want: `drop_fields "context.device" removes it`},
		{name: "pseudonymized subject", a: "segments: [userId]", want: `"userId" cannot be a segment: it is a subject path`},
		{name: "identifier", a: "segments: [context.ip]", want: `"context.ip" cannot be a segment: it names an identifier`},
		{name: "rounded", a: "segments: [context.location.latitude]", want: "its name \"latitude\""},
		{name: "truncated time", a: "segments: [timestamp]", want: `truncate_time "timestamp" rewrites it`},
		{name: "scrubbed url", a: "segments: [context.page.url]", want: `its name "url"`},
		{name: "email-ish name", a: "segments: [properties.email_domain]", want: `its name "email_domain"`},
		{name: "case variant of an identifier", a: "segments: [context.IP]", want: "identifier"},
		{name: "id suffix", a: "segments: [properties.planId]", want: `its name "planId"`},
		{name: "wildcard", a: "segments: [context.*]", want: "wildcards are not allowed"},
		{name: "twice", a: "segments: [type, type]", want: `"type" listed twice`},
		{name: "top out of range", top: "segments: {fields: [type], top: 500}", want: "segments.top: 500 is out of range"},
		{name: "ratio not above 1", top: "segments: {fields: [type], flag_ratio: 0.5}", want: "segments.flag_ratio: 0.5 must be above 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := segSpec(tt.top, tt.a, tt.b)
			p, err := FromBytes("seg.yaml", []byte(text), testKeys(t))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.fields == nil {
				if p.Segments != nil {
					t.Fatalf("Segments = %+v, want nil", p.Segments)
				}
				return
			}
			s := p.Segments
			var names []string
			for _, f := range s.Fields {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %v, want %v", names, tt.fields)
			}
			for o, want := range [][]string{tt.byA, tt.byB} {
				var got []string
				for _, j := range s.ByOutput[o] {
					got = append(got, s.Fields[j].Name)
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("output %d measures %v, want %v", o, got, want)
				}
			}
			if tt.top2 != 0 && (float64(s.Top) != tt.top2 || s.FlagRatio != tt.ratio2) {
				t.Fatalf("top %d ratio %v, want %v %v", s.Top, s.FlagRatio, tt.top2, tt.ratio2)
			}
			if tt.top2 == 0 && (s.Top != DefaultSegmentTop || s.FlagRatio != DefaultSegmentFlagRatio) {
				t.Fatalf("defaults: top %d ratio %v", s.Top, s.FlagRatio)
			}
		})
	}
}

func TestSegmentValue(t *testing.T) {
	sc := &scrub.Scanner{}
	long := strings.Repeat("x", MaxSegmentValueLen+1)
	tests := []struct{ doc, path, want string }{
		{`{"c":"DE"}`, "c", "DE"},
		{`{"c":"d\u00e9"}`, "c", "dé"},
		{`{"n":42}`, "n", "42"},
		{`{"b":true}`, "b", "true"},
		{`{"x":1}`, "c", SegmentNone},
		{`{"c":null}`, "c", SegmentNone},
		{`{"c":{"a":1}}`, "c", SegmentRedacted},
		{`{"c":["DE"]}`, "c", SegmentRedacted},
		{`{"c":""}`, "c", SegmentRedacted},
		{`{"c":"` + long + `"}`, "c", SegmentRedacted},
		{`{"c":"alice@example.com"}`, "c", SegmentRedacted},
		{`{"c":"alice%40example.com"}`, "c", SegmentRedacted},
		{`{"c":"+49 151 2345 6789"}`, "c", SegmentRedacted},
		{`{"c":"192.168.1.20"}`, "c", SegmentRedacted},
		{`{"c":"4111 1111 1111 1111"}`, "c", SegmentRedacted},
		{`{"c":"D\u200bE"}`, "c", SegmentRedacted},
		{`{"c":"a\nb"}`, "c", SegmentRedacted},
		{`{"c":"(other)"}`, "c", SegmentRedacted},
		{`{"c":"(none)"}`, "c", SegmentRedacted},
		{`{"a":{"c":"fr-FR"}}`, "a.c", "fr-FR"},
		{`{"a":"fr"}`, "a.c", SegmentNone},
		{`{"c":"A123456"}`, "c", SegmentRedacted},
		{`{"c":"550e8400-e29b-41d4-a716-446655440000"}`, "c", SegmentRedacted},
		{`{"c":"d41d8cd98f00b204"}`, "c", SegmentRedacted},
		{`{"c":"2026"}`, "c", "2026"},
		{`{"c":"pro-2"}`, "c", "pro-2"},
		{`{"userId":"u-7","c":"plan u-7"}`, "c", SegmentRedacted},
		{`{"anonymousId":"anon-42","c":"anon-42"}`, "c", SegmentRedacted},
		{`{"context":{"device":{"id":"dev-9"}},"c":"dev-9"}`, "c", SegmentRedacted},
		{`{"userId":"u-7","c":"u-8"}`, "c", "u-8"},
		{`{"c":"[email]"}`, "c", SegmentRedacted},
		{`{"c":"plan [id]"}`, "c", SegmentRedacted},
		{`{"c":"[pro]"}`, "c", "[pro]"},
		{`{"c":"123-45-6789"}`, "c", SegmentRedacted},
		{`{"c":"12345-67890"}`, "c", SegmentRedacted},
		{`{"c":"2026-12-07"}`, "c", SegmentRedacted},
		{`{"c":"cus_NffrFeUfNV2Hib"}`, "c", SegmentRedacted},
		{`{"c":"jdoe (at) example (dot) com"}`, "c", SegmentRedacted},
		{`{"c":"(none)\u034f"}`, "c", SegmentRedacted},
		{`{"c":"(other)\u3164"}`, "c", SegmentRedacted},
		{`{"c":"DE\u3164"}`, "c", SegmentRedacted},
		{`{"c":"DE\ufe0f"}`, "c", SegmentRedacted},
		{`{"c":"D\u0301E"}`, "c", SegmentRedacted},
		{`{"c":" DE"}`, "c", SegmentRedacted},
		{`{"c":"DE\u00a0"}`, "c", SegmentRedacted},
		{`{"c":"Product  Viewed"}`, "c", SegmentRedacted},
		{`{"c":"Product Viewed"}`, "c", "Product Viewed"},
		{`{"c":"en-AU"}`, "c", "en-AU"},
		{`{"c":"pro-2"}`, "c", "pro-2"},
		{`{"c":"Zürich"}`, "c", "Zürich"},
		{`{"c":"東京"}`, "c", "東京"},
		{`{"c":"d41d8cd98f00b204e9800998ecf8427e"}`, "c", SegmentRedacted},
	}
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var d event.Doc
		if err := d.Parse([]byte(tt.doc)); err != nil {
			t.Fatal(err)
		}
		if got := SegmentValue(&d, event.MustPath(tt.path), sc, p.EventIdentifiers(&d, nil)); got != tt.want {
			t.Errorf("SegmentValue(%s, %s) = %q, want %q", tt.doc, tt.path, got, tt.want)
		}
	}
}

func TestShippedPolicySegments(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.Segments == nil || len(p.Segments.Fields) == 0 {
		t.Fatal("the shipped policy measures no segments")
	}
	for _, f := range p.Segments.Fields {
		if err := NonPersonalPath(f.Path); err != nil {
			t.Errorf("shipped segment %s: %v", f.Name, err)
		}
	}
}
