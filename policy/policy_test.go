package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
)

func testKeys(t testing.TB) *Keyring {
	t.Helper()
	k, err := NewKeyring(map[string][]byte{
		"k1": []byte("0123456789abcdef0123456789abcdef"),
		"k2": []byte("fedcba9876543210fedcba9876543210"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pseudonym(t *testing.T, k *Keyring, id, v string) string {
	t.Helper()
	b, err := k.AppendPseudonym(nil, id, []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const basePolicy = `
version: "t1"
purposes: [personalization, analytics, advertising]
pseudonym_key: k1
outputs:
`

func compileYAML(t *testing.T, outputs string) *Policy {
	t.Helper()
	return compileSpec(t, basePolicy+outputs)
}

func granted(v int64, purposes ...string) consent.Record {
	r := consent.Record{Found: true, Version: v, Granted: map[string]bool{}}
	for _, p := range purposes {
		r.Granted[p] = true
	}
	return r
}

func decide(t *testing.T, p *Policy, ev string, rec consent.Record) (*Decision, error) {
	t.Helper()
	var doc event.Doc
	if err := doc.Parse([]byte(ev)); err != nil {
		return nil, ParseError(err)
	}
	subj, _, ok, err := p.Subject(&doc)
	if err != nil {
		return nil, err
	}
	if !ok {
		t.Fatalf("no subject in %s", ev)
	}
	dc := Decider{Policy: p}
	return dc.DecideAt(&doc, subj, rec, Times{})
}

func TestDecideConsent(t *testing.T) {
	p := compileYAML(t, `
  - {name: perso, topic: c.perso, require: [personalization]}
  - {name: both, topic: c.both, require: [personalization, advertising]}
  - {name: ana, topic: c.ana, require: [analytics], when: {type: [track], event: [Order Completed]}}
`)
	const ev = `{"type":"track","event":"Order Completed","userId":"u1"}`
	tests := []struct {
		name    string
		ev      string
		rec     consent.Record
		written []string
		reasons map[string]string
	}{
		{"no record means no consent", ev, consent.Record{}, nil,
			map[string]string{"perso": "consent_denied:personalization", "both": "consent_denied:personalization", "ana": "consent_denied:analytics"}},
		{"record with nothing granted", ev, granted(3), nil,
			map[string]string{"perso": "consent_denied:personalization"}},
		{"explicit denial", ev, consent.Record{Found: true, Version: 2, Granted: map[string]bool{"personalization": false}}, nil,
			map[string]string{"perso": "consent_denied:personalization"}},
		{"one purpose", ev, granted(3, "personalization"), []string{"perso"},
			map[string]string{"both": "consent_denied:advertising", "ana": "consent_denied:analytics"}},
		{"all purposes", ev, granted(3, "personalization", "advertising", "analytics"), []string{"perso", "both", "ana"}, nil},
		{"filter by event name", `{"type":"track","event":"Signed Up","userId":"u1"}`, granted(3, "analytics"), nil,
			map[string]string{"ana": "filtered"}},
		{"filter by type", `{"type":"page","event":"Order Completed","userId":"u1"}`, granted(3, "analytics"), nil,
			map[string]string{"ana": "filtered"}},
		{"record not found ignores stray grants", ev, consent.Record{Found: false, Granted: map[string]bool{"personalization": true}}, nil,
			map[string]string{"perso": "consent_denied:personalization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, tt.ev, tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			var written []string
			for _, o := range d.Outputs {
				if o.Write {
					written = append(written, o.Output.Name)
					if len(o.Value) == 0 {
						t.Errorf("%s: written with empty value", o.Output.Name)
					}
				} else if o.Value != nil {
					t.Errorf("%s: skipped output carries a value", o.Output.Name)
				}
				if want, ok := tt.reasons[o.Output.Name]; ok && o.Reason != want {
					t.Errorf("%s: reason %q, want %q", o.Output.Name, o.Reason, want)
				}
			}
			if strings.Join(written, ",") != strings.Join(tt.written, ",") {
				t.Errorf("written to %v, want %v", written, tt.written)
			}
			if d.PolicyVersion != "t1" || d.ConsentVersion != tt.rec.Version || d.ConsentFound != tt.rec.Found {
				t.Errorf("decision versions = %q/%d/%v", d.PolicyVersion, d.ConsentVersion, d.ConsentFound)
			}
		})
	}
}

func TestTransforms(t *testing.T) {
	keys := testKeys(t)
	tests := []struct {
		name      string
		transform string
		ev        string
		want      string
		actions   string
	}{
		{"drop_fields", `[{drop_fields: [context.ip, traits.email, nope.x]}]`,
			`{"userId":"u1","context":{"ip":"1.2.3.4","locale":"de"},"traits":{"email":"e","plan":"p"}}`,
			`{"userId":"u1","context":{"locale":"de"},"traits":{"plan":"p"}}`,
			"drop_fields:context.ip,drop_fields:traits.email"},
		{"drop_fields wildcard", `[{drop_fields: ["context.*.id"]}]`,
			`{"userId":"u1","context":{"device":{"id":"d","model":"m"},"app":{"id":"a"},"ip":"x"}}`,
			`{"userId":"u1","context":{"device":{"model":"m"},"app":{},"ip":"x"}}`,
			"drop_fields:context.*.id(2)"},
		{"keep_only", `[{keep_only: [userId, context.page.path]}]`,
			`{"userId":"u1","anonymousId":"a","context":{"ip":"1","page":{"path":"/p","url":"u"}}}`,
			`{"userId":"u1","context":{"page":{"path":"/p"}}}`,
			"keep_only:context.page(1 removed),keep_only:context(1 removed),keep_only:$(1 removed)"},
		{"pseudonymize with default key", `[{pseudonymize: {fields: [userId, context.device.id, n, missing]}}]`,
			`{"userId":"u1","context":{"device":{"id":"d1"}},"n":42}`,
			`{"userId":"` + pseudonym(t, keys, "k1", "u1") + `","context":{"device":{"id":"` + pseudonym(t, keys, "k1", "d1") + `"}},"n":"` + pseudonym(t, keys, "k1", "42") + `"}`,
			"pseudonymize:userId,pseudonymize:context.device.id,pseudonymize:n"},
		{"pseudonymize with named key", `[{pseudonymize: {fields: [userId], key: k2}}]`,
			`{"userId":"u1"}`,
			`{"userId":"` + pseudonym(t, keys, "k2", "u1") + `"}`,
			"pseudonymize:userId"},
		{"pseudonymize unescapes first", `[{pseudonymize: {fields: [anonymousId]}}]`,
			`{"userId":"u1","anonymousId":"\u0061"}`,
			`{"userId":"u1","anonymousId":"` + pseudonym(t, keys, "k1", "a") + `"}`,
			"pseudonymize:anonymousId"},
		{"pseudonymize: one integer, one pseudonym", `[{pseudonymize: {fields: [a, b, c, d, e]}}]`,
			`{"userId":"u1","a":42,"b":42.0,"c":4.2e1,"d":"42","e":420E-1}`,
			`{"userId":"u1","a":"` + pseudonym(t, keys, "k1", "42") + `","b":"` + pseudonym(t, keys, "k1", "42") + `","c":"` + pseudonym(t, keys, "k1", "42") +
				`","d":"` + pseudonym(t, keys, "k1", "42") + `","e":"` + pseudonym(t, keys, "k1", "42") + `"}`,
			"pseudonymize:a,pseudonymize:b,pseudonymize:c,pseudonymize:d,pseudonymize:e"},
		{"pseudonymize: strings are taken as written", `[{pseudonymize: {fields: [a, b]}}]`,
			`{"userId":"u1","a":"42.0","b":42.5}`,
			`{"userId":"u1","a":"` + pseudonym(t, keys, "k1", "42.0") + `","b":"` + pseudonym(t, keys, "k1", "42.5") + `"}`,
			"pseudonymize:a,pseudonymize:b"},
		{"pseudonymize null is left", `[{pseudonymize: {fields: [anonymousId]}}]`,
			`{"userId":"u1","anonymousId":null}`, `{"userId":"u1","anonymousId":null}`, "none"},
		{"truncate_ip v4 default", `[{truncate_ip: {}}]`,
			`{"userId":"u1","context":{"ip":"203.0.113.77"}}`, `{"userId":"u1","context":{"ip":"203.0.113.0"}}`, "truncate_ip:context.ip"},
		{"truncate_ip v6 default", `[{truncate_ip: {}}]`,
			`{"userId":"u1","context":{"ip":"2001:db8:85a3:8d3:1319:8a2e:370:7348"}}`, `{"userId":"u1","context":{"ip":"2001:db8:85a3::"}}`, "truncate_ip:context.ip"},
		{"truncate_ip custom bits", `[{truncate_ip: {fields: [ip], ipv4_bits: 16, ipv6_bits: 32}}]`,
			`{"userId":"u1","ip":"203.0.113.77"}`, `{"userId":"u1","ip":"203.0.0.0"}`, "truncate_ip:ip"},
		{"truncate_ip v4-mapped v6 uses v4 bits", `[{truncate_ip: {}}]`,
			`{"userId":"u1","context":{"ip":"::ffff:203.0.113.77"}}`, `{"userId":"u1","context":{"ip":"203.0.113.0"}}`, "truncate_ip:context.ip"},
		{"truncate_ip empty is left", `[{truncate_ip: {}}]`,
			`{"userId":"u1","context":{"ip":""}}`, `{"userId":"u1","context":{"ip":""}}`, "none"},
		{"round_geo", `[{round_geo: {}}]`,
			`{"userId":"u1","context":{"location":{"latitude":-34.605,"longitude":-58.38159,"city":"BA"}}}`,
			`{"userId":"u1","context":{"location":{"latitude":-34.6,"longitude":-58.38,"city":"BA"}}}`,
			"round_geo:context.location.latitude,round_geo:context.location.longitude"},
		{"round_geo zero decimals", `[{round_geo: {fields: [lat], decimals: 0}}]`,
			`{"userId":"u1","lat":-0.4}`, `{"userId":"u1","lat":0}`, "round_geo:lat"},
		{"truncate_time hour", `[{truncate_time: {to: hour}}]`,
			`{"userId":"u1","timestamp":"2026-11-22T21:37:12.123+01:00"}`, `{"userId":"u1","timestamp":"2026-11-22T20:00:00Z"}`, "truncate_time:timestamp"},
		{"truncate_time day", `[{truncate_time: {to: day}}]`,
			`{"userId":"u1","timestamp":"2026-11-22T21:37:12Z"}`, `{"userId":"u1","timestamp":"2026-11-22T00:00:00Z"}`, "truncate_time:timestamp"},
		{"truncate_time minute", `[{truncate_time: {to: minute, fields: [sentAt]}}]`,
			`{"userId":"u1","sentAt":"2026-11-22T21:37:12.9Z"}`, `{"userId":"u1","sentAt":"2026-11-22T21:37:00Z"}`, "truncate_time:sentAt"},
		{"order matters: drop after keep", `[{keep_only: [userId, properties]}, {drop_fields: [properties.email]}]`,
			`{"userId":"u1","properties":{"email":"e","sku":"s"},"context":{}}`, `{"userId":"u1","properties":{"sku":"s"}}`,
			"keep_only:$(1 removed),drop_fields:properties.email"},
		{"no transforms copies the event", `[]`, `{"userId":"u1", "x": [1, 2]}`, `{"userId":"u1", "x": [1, 2]}`, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization], transforms: "+tt.transform+"}\n")
			d, err := decide(t, p, tt.ev, granted(1, "personalization"))
			if err != nil {
				t.Fatal(err)
			}
			o := d.Outputs[0]
			if !o.Write {
				t.Fatalf("not written: %s", o.Reason)
			}
			if string(o.Value) != tt.want {
				t.Errorf("value\n got %s\nwant %s", o.Value, tt.want)
			}
			if got := o.ActionsHeader(); got != tt.actions {
				t.Errorf("actions\n got %s\nwant %s", got, tt.actions)
			}
		})
	}
}

func TestDecideInputErrors(t *testing.T) {
	tests := []struct {
		name      string
		transform string
		ev        string
		reason    string
	}{
		{"duplicate key on dropped path", `[{drop_fields: [context.ip]}]`, `{"userId":"u","context":{"ip":"1.1.1.1","ip":"2.2.2.2"}}`, ReasonDuplicateKey},
		{"escaped duplicate key", `[{drop_fields: [context.ip]}]`, `{"userId":"u","context":{"ip":"1.1.1.1","\u0069p":"2.2.2.2"}}`, ReasonDuplicateKey},
		{"duplicate key under keep_only", `[{keep_only: [userId]}]`, `{"userId":"u","x":1,"x":2}`, ReasonDuplicateKey},
		{"ip not a string", `[{truncate_ip: {}}]`, `{"userId":"u","context":{"ip":1234}}`, ReasonWrongType},
		{"ip not an ip", `[{truncate_ip: {}}]`, `{"userId":"u","context":{"ip":"1.2.3"}}`, ReasonInvalidIP},
		{"ip with port", `[{truncate_ip: {}}]`, `{"userId":"u","context":{"ip":"1.2.3.4:80"}}`, ReasonInvalidIP},
		{"geo as string", `[{round_geo: {}}]`, `{"userId":"u","context":{"location":{"latitude":"52.1"}}}`, ReasonWrongType},
		{"geo overflow", `[{round_geo: {fields: [x]}}]`, `{"userId":"u","x":1e999}`, ReasonWrongType},
		{"time not rfc3339", `[{truncate_time: {to: hour}}]`, `{"userId":"u","timestamp":"yesterday"}`, ReasonInvalidTimestamp},
		{"time a number", `[{truncate_time: {to: hour}}]`, `{"userId":"u","timestamp":1732280000}`, ReasonWrongType},
		{"pseudonymize an object", `[{pseudonymize: {fields: [traits]}}]`, `{"userId":"u","traits":{"a":1}}`, ReasonWrongType},
		{"filter on non-string type", `[]`, `{"userId":"u","type":7}`, ReasonWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization], when: {type: [track]}, transforms: "+tt.transform+"}\n")
			ev := tt.ev
			if !strings.Contains(ev, `"type"`) {
				ev = strings.Replace(ev, `{`, `{"type":"track",`, 1)
			}
			_, err := decide(t, p, ev, granted(1, "personalization"))
			wantInputError(t, err, tt.reason)
			for _, secret := range []string{"1.1.1.1", "2.2.2.2", "1.2.3.4", "yesterday"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error message echoes event data %q: %v", secret, err)
				}
			}
		})
	}
}

func TestDeniedOutputsAreNotTransformed(t *testing.T) {
	// A bad IP only matters for outputs the subject consented to.
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [advertising], transforms: [{truncate_ip: {}}]}\n")
	d, err := decide(t, p, `{"userId":"u","context":{"ip":"junk"}}`, granted(1, "personalization"))
	if err != nil || d.Outputs[0].Write || d.Outputs[0].Reason != "consent_denied:advertising" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func TestSubject(t *testing.T) {
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization]}\n")
	tests := []struct {
		name, ev, subject, path, reason string
	}{
		{"userId first", `{"userId":"u","anonymousId":"a"}`, "u", "userId", ""},
		{"empty userId falls back", `{"userId":"","anonymousId":"a"}`, "a", "anonymousId", ""},
		{"null userId falls back", `{"userId":null,"anonymousId":"a"}`, "a", "anonymousId", ""},
		{"none", `{"type":"track"}`, "", "", ""},
		{"wrong type", `{"userId":17}`, "", "", ReasonInvalidSubject},
		{"duplicate userId", `{"userId":"a","userId":"b"}`, "", "", ReasonDuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc event.Doc
			if err := doc.Parse([]byte(tt.ev)); err != nil {
				wantInputError(t, ParseError(err), tt.reason)
				return
			}
			s, path, ok, err := p.Subject(&doc)
			if tt.reason != "" {
				wantInputError(t, err, tt.reason)
				return
			}
			if err != nil || s != tt.subject || path != tt.path || ok != (tt.subject != "") {
				t.Fatalf("Subject = %q %q %v %v", s, path, ok, err)
			}
		})
	}
}

func TestMessageKeyIsPseudonymizedSubject(t *testing.T) {
	keys := testKeys(t)
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization]}\n")
	d, err := decide(t, p, `{"anonymousId":"anon-1"}`, granted(9, "personalization"))
	if err != nil {
		t.Fatal(err)
	}
	key := d.Outputs[0].Key
	if string(key) != pseudonym(t, keys, "k1", "anon-1") || strings.Contains(string(key), "anon-1") {
		t.Fatalf("key = %s", key)
	}
	if !strings.HasPrefix(string(key), "k1:") || len(key) != 3+PseudonymLen {
		t.Fatalf("key format = %s", key)
	}
	if pseudonym(t, keys, "k1", "x") == pseudonym(t, keys, "k2", "x") {
		t.Fatal("pseudonyms under different keys are equal")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"no version", "purposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a]}]", "version: required"},
		{"no purposes", "version: v\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a]}]", "at least one purpose"},
		{"unknown purpose", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [b]}]", `unknown purpose "b"`},
		{"no require", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t}]", "require: at least one purpose"},
		{"no topic", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, require: [a]}]", "topic: required"},
		{"duplicate output", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a]}, {name: o, topic: u, require: [a]}]", "used twice"},
		{"no pseudonym key", "version: v\npurposes: [a]\noutputs: [{name: o, topic: t, require: [a]}]", "pseudonym_key: required"},
		{"unknown key id", "version: v\npurposes: [a]\npseudonym_key: k9\noutputs: [{name: o, topic: t, require: [a]}]", `key "k9" is not in the key file`},
		{"two transforms in one item", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{drop_fields: [x], keep_only: [y]}]}]", "exactly one"},
		{"bad path", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{drop_fields: [a..b]}]}]", "empty segment"},
		{"bad ip bits", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{truncate_ip: {ipv4_bits: 33}}]}]", "ipv4_bits 33"},
		{"bad decimals", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{round_geo: {decimals: 9}}]}]", "decimals 9"},
		{"bad time unit", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{truncate_time: {to: week}}]}]", `to "week"`},
		{"wildcard subject", "version: v\npurposes: [a]\nsubjects: ['*']\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a]}]", "wildcards are not allowed"},
		{"unknown transform key", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{hash: [x]}]}]", "test.yaml:4: outputs[0].transforms[0].hash: field hash not found"},
		{"unknown top-level key", "version: v\npurposez: [a]", "test.yaml:2: purposez: field purposez not found"},
		{"wrong type", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{round_geo: {decimals: two}}]}]", "test.yaml:4"},
		{"empty identifier", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{scrub: {identifiers: [\"_\"]}}]}]", `identifiers: "_": want a key name or a path`},
		{"bad identifier path", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], transforms: [{scrub: {identifiers: [context..ip]}}]}]", "identifiers: path \"context..ip\" has an empty segment"},
		{"bad purpose-one treatment", "version: v\npurposes: [a]\npseudonym_key: k1\niab: {tcf_purpose_one_treatment: yes}\noutputs: [{name: o, topic: t, require: [a]}]", `iab.tcf_purpose_one_treatment: "yes": want deny or allow`},
		{"retention not a duration", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], retention: 30d}]", `retention: "30d" is not a duration (e.g. 720h for 30 days)`},
		{"retention too short", "version: v\npurposes: [a]\npseudonym_key: k1\noutputs: [{name: o, topic: t, require: [a], retention: 5m}]", "retention: 5m is under an hour"},
		{"unknown sensitive-data purpose", "version: v\npurposes: [a]\npseudonym_key: k1\niab: {sensitive_data_denies: [ads]}\noutputs: [{name: o, topic: t, require: [a]}]", `iab.sensitive_data_denies: unknown purpose "ads"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec("test.yaml", []byte(tt.yaml))
			if err == nil {
				_, err = Compile(spec, testKeys(t))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestShippedPolicyCompiles(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Outputs) == 0 || !strings.Contains(p.Summary(), "output personalization") {
		t.Fatalf("summary: %s", p.Summary())
	}
}

func TestKeyring(t *testing.T) {
	const secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	tests := []struct {
		name, file, want string
	}{
		{"ok", "# comment\nk1:" + secret + "\n\nk2: " + secret, ""},
		{"no colon", "k1" + secret, "want KEYID:BASE64SECRET"},
		{"not base64", "k1:!!!!", "not base64"},
		{"short", "k1:c2hvcnQ=", "need at least 32"},
		{"duplicate", "k1:" + secret + "\nk1:" + secret, "defined twice"},
		{"empty", "# nothing\n", "no keys"},
		{"bad id", "k 1:" + secret, "only letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeyring("keys", []byte(tt.file))
			if tt.want == "" {
				if err != nil || !k.Has("k1") || !k.Has("k2") {
					t.Fatalf("ParseKeyring: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "c2hvcnQ") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestRoundCoordinate(t *testing.T) {
	tests := []struct {
		v    float64
		d    int
		want string
	}{
		{52.520008, 2, "52.52"},
		{-52.525, 2, "-52.52"}, // -52.525 is -52.52499999... in binary
		{-52.5251, 2, "-52.53"},
		{52.5251, 2, "52.53"},
		{-0.001, 2, "0"},
		{13.4, 3, "13.4"},
		{-58.381592, 1, "-58.4"},
		{179.999, 2, "180"},
		{-179.999, 2, "-180"},
		{1.5, 0, "2"},
		{-1.5, 0, "-2"},
	}
	for _, tt := range tests {
		if got := string(RoundCoordinate(tt.v, tt.d)); got != tt.want {
			t.Errorf("RoundCoordinate(%v, %d) = %s, want %s", tt.v, tt.d, got, tt.want)
		}
		if tt.v != 0 {
			if neg := string(RoundCoordinate(-tt.v, tt.d)); neg != negate(tt.want) {
				t.Errorf("rounding is not symmetric: %v -> %s but %v -> %s", tt.v, tt.want, -tt.v, neg)
			}
		}
	}
}

func negate(s string) string {
	switch {
	case s == "0":
		return s
	case strings.HasPrefix(s, "-"):
		return s[1:]
	}
	return "-" + s
}

func TestTruncateIP(t *testing.T) {
	tests := []struct {
		in     string
		v4, v6 int
		want   string
		bad    bool
	}{
		{"1.2.3.4", 24, 48, "1.2.3.0", false},
		{"1.2.3.4", 8, 48, "1.0.0.0", false},
		{"1.2.3.4", 32, 48, "1.2.3.4", false},
		{"255.255.255.255", 0, 48, "0.0.0.0", false},
		{"2001:0db8:85a3:0000:0000:8a2e:0370:7334", 24, 48, "2001:db8:85a3::", false},
		{"2001:db8::1", 24, 64, "2001:db8::", false},
		{"fe80::1%eth0", 24, 48, "fe80::", false},
		{"::ffff:10.1.2.3", 24, 48, "10.1.2.0", false},
		{" 1.2.3.4 ", 24, 48, "1.2.3.0", false},
		{"1.2.3", 24, 48, "", true},
		{"example.com", 24, 48, "", true},
		{"1.2.3.4/24", 24, 48, "", true},
	}
	for _, tt := range tests {
		got, err := TruncateIP(tt.in, tt.v4, tt.v6)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("TruncateIP(%q, %d, %d) = %q, %v; want %q (bad=%v)", tt.in, tt.v4, tt.v6, got, err, tt.want, tt.bad)
		}
	}
}

func TestConsentCategoriesMustMapToPurposes(t *testing.T) {
	spec, err := ParseSpec("p.yaml", []byte("version: v\npurposes: [a]\npseudonym_key: k1\nconsent_categories: {X: b}\noutputs: [{name: o, topic: t, require: [a]}]"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(spec, nil); err == nil || !strings.Contains(err.Error(), `"X" maps to unknown purpose "b"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestEventCarriedConsentStrictestWins(t *testing.T) {
	const outputs = `consent_categories: {Personalization: personalization, Analytics: analytics, Advertising: advertising, Marketing: advertising}
gpc_denies: [advertising]
outputs:
  - {name: perso, topic: c.perso, require: [personalization]}
  - {name: ana, topic: c.ana, require: [analytics]}
  - {name: adv, topic: c.adv, require: [advertising]}
`
	spec, err := ParseSpec("p.yaml", []byte("version: t1\npurposes: [personalization, analytics, advertising]\npseudonym_key: k1\n"+outputs))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	all := granted(4, "personalization", "analytics", "advertising")
	tests := []struct {
		name    string
		ev      string
		rec     consent.Record
		written string
		signals string
		reason  string // input error
	}{
		{"no signals: the record decides", `{"userId":"u"}`, all, "perso,ana,adv", "", ""},
		{"segment denies analytics", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":false,"Advertising":true,"Marketing":true}}}}`, all, "perso,adv", "segment", ""},
		{"segment: an unmentioned category is not granted", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":true,"Advertising":true}}}}`, all, "perso,ana", "segment", ""},
		{"segment cannot grant what the record denies", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":true,"Advertising":true,"Marketing":true}}}}`, granted(4, "analytics"), "ana", "segment", ""},
		{"segment: a purpose no category maps to is not gated", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":true,"Advertising":true,"Marketing":true,"Other":false}}}}`, all, "perso,ana,adv", "segment", ""},
		{"segment: empty preferences deny every mapped purpose", `{"userId":"u","context":{"consent":{"categoryPreferences":{}}}}`, all, "", "segment", ""},
		{"segment: consent object without preferences is no signal", `{"userId":"u","context":{"consent":{}}}`, all, "perso,ana,adv", "", ""},
		{"rudderstack and: a denied id withholds its purpose", `{"userId":"u","context":{"consentManagement":{"allowedConsentIds":["Personalization","Advertising"],"deniedConsentIds":["Marketing"]}}}`, all, "perso,ana", "rudderstack", ""},
		{"rudderstack or: not every id denied", `{"userId":"u","context":{"consentManagement":{"deniedConsentIds":["Marketing"],"resolutionStrategy":"or"}}}`, all, "perso,ana,adv", "rudderstack", ""},
		{"rudderstack or: every id denied", `{"userId":"u","context":{"consentManagement":{"deniedConsentIds":["Marketing","Advertising"],"resolutionStrategy":"or"}}}`, all, "perso,ana", "rudderstack", ""},
		{"rudderstack: only denied ids (older SDKs)", `{"userId":"u","context":{"consentManagement":{"deniedConsentIds":["Analytics"]}}}`, all, "perso,adv", "rudderstack", ""},
		{"rudderstack: allowedConsentIds object form", `{"userId":"u","context":{"consentManagement":{"allowedConsentIds":{"Personalization":"Perso"},"deniedConsentIds":["Advertising"]}}}`, all, "perso,ana", "rudderstack", ""},
		{"gpc opts out of advertising", `{"userId":"u","context":{"gpc":true}}`, all, "perso,ana", "gpc", ""},
		{"gpc false changes nothing", `{"userId":"u","context":{"gpc":false}}`, all, "perso,ana,adv", "", ""},
		{"segment and gpc together", `{"userId":"u","context":{"gpc":1,"consent":{"categoryPreferences":{"Personalization":false,"Analytics":true,"Advertising":true,"Marketing":true}}}}`, all, "ana", "segment+gpc", ""},
		{"categoryPreferences not booleans", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Analytics":"yes"}}}}`, all, "", "", ReasonInvalidConsentString},
		{"categoryPreferences not an object", `{"userId":"u","context":{"consent":{"categoryPreferences":[true]}}}`, all, "", "", ReasonInvalidConsentString},
		{"duplicate category", `{"userId":"u","context":{"consent":{"categoryPreferences":{"Analytics":false,"Analytics":true}}}}`, all, "", "", ReasonDuplicateKey},
		{"consent ids not strings", `{"userId":"u","context":{"consentManagement":{"allowedConsentIds":[1]}}}`, all, "", "", ReasonInvalidConsentString},
		{"denied ids not an array", `{"userId":"u","context":{"consentManagement":{"deniedConsentIds":"Analytics"}}}`, all, "", "", ReasonInvalidConsentString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, tt.ev, tt.rec)
			if tt.reason != "" {
				wantInputError(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := writtenNames(d)
			if strings.Join(w, ",") != tt.written || strings.Join(d.EventSignals, "+") != tt.signals {
				t.Fatalf("written %v signals %v (%s), want %s / %s", w, d.EventSignals, d.Explain(), tt.written, tt.signals)
			}
		})
	}

	// Without a category map, event-carried consent cannot be interpreted
	// and is not applied (policy check says so).
	plain := compileYAML(t, "  - {name: o, topic: c.o, require: [analytics]}\n")
	d, err := decide(t, plain, `{"userId":"u","context":{"consent":{"categoryPreferences":{"Analytics":false}}}}`, all)
	if err != nil || !d.Outputs[0].Write || !strings.Contains(plain.Summary(), "NOT honoured") {
		t.Fatalf("without consent_categories: %v %+v", err, d)
	}
}

func TestPreConsentEvents(t *testing.T) {
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [analytics]}\n")
	grantedAt := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixMilli()
	rec := consent.Record{Found: true, Version: 5, Granted: map[string]bool{"analytics": true}, GrantedAt: map[string]int64{"analytics": grantedAt}}
	tests := []struct {
		name, ev, reason string
		rec              consent.Record
	}{
		{"after the grant", `{"userId":"u","timestamp":"2026-11-22T12:00:00.001Z"}`, "", rec},
		{"at the grant", `{"userId":"u","timestamp":"2026-11-22T12:00:00Z"}`, "", rec},
		{"before the grant", `{"userId":"u","timestamp":"2026-11-22T11:59:59.999Z"}`, "pre_consent:analytics", rec},
		{"other zone, before", `{"userId":"u","timestamp":"2026-11-22T12:30:00+01:00"}`, "pre_consent:analytics", rec},
		{"originalTimestamp", `{"userId":"u","originalTimestamp":"2026-11-22T13:00:00Z"}`, "", rec},
		{"no timestamp", `{"userId":"u"}`, "pre_consent:analytics", rec},
		{"unparseable timestamp", `{"userId":"u","timestamp":"noon"}`, "pre_consent:analytics", rec},
		{"grant time unknown", `{"userId":"u"}`, "", granted(5, "analytics")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, tt.ev, tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outputs[0].Reason != tt.reason || d.Outputs[0].Write != (tt.reason == "") {
				t.Fatalf("reason %q write %v, want %q", d.Outputs[0].Reason, d.Outputs[0].Write, tt.reason)
			}
		})
	}
	spec, _ := ParseSpec("p.yaml", []byte(basePolicy+"  - {name: o, topic: c.o, require: [analytics]}\nallow_pre_consent_events: true\n"))
	allow, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := decide(t, allow, `{"userId":"u","timestamp":"2020-01-01T00:00:00Z"}`, rec); !d.Outputs[0].Write {
		t.Fatal("allow_pre_consent_events: true still drops early events")
	}
}

func TestPreConsentByRecordTime(t *testing.T) {
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [analytics]}\n")
	grant := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rec := consent.Record{Found: true, Version: 5, Granted: map[string]bool{"analytics": true}, GrantedAt: map[string]int64{"analytics": grant.UnixMilli()}}
	after := grant.Add(time.Minute)
	tests := []struct {
		name, ev, reason string
		at               Times
		rec              consent.Record
	}{
		{"recorded after the grant", `{"userId":"u","timestamp":"2026-11-22T12:00:30Z"}`, "", Times{Record: after, Now: after}, rec},
		{"recorded before the grant, stamped after", `{"userId":"u","timestamp":"2026-11-22T12:00:30Z"}`, "pre_consent:analytics", Times{Record: grant.Add(-time.Millisecond), Now: after}, rec},
		{"recorded before the grant, stamped 2099", `{"userId":"u","timestamp":"2099-01-01T00:00:00Z"}`, "pre_consent:analytics", Times{Record: grant.Add(-time.Hour), Now: after}, rec},
		{"recorded at the grant", `{"userId":"u","timestamp":"2026-11-22T12:00:00Z"}`, "", Times{Record: grant, Now: after}, rec},
		{"stamped in the future beyond the skew", `{"userId":"u","timestamp":"2026-11-22T12:06:01Z"}`, "pre_consent:analytics", Times{Record: after, Now: after}, rec},
		{"stamped in the future within the skew", `{"userId":"u","timestamp":"2026-11-22T12:05:59Z"}`, "", Times{Record: after, Now: after}, rec},
		{"stamped 2099, no record time", `{"userId":"u","timestamp":"2099-01-01T00:00:00Z"}`, "pre_consent:analytics", Times{Now: after}, rec},
		{"unparseable timestamp, originalTimestamp after", `{"userId":"u","timestamp":"22/11/2026 12:30","originalTimestamp":"2026-11-22T12:00:30Z"}`, "", Times{Record: after, Now: after}, rec},
		{"unparseable only", `{"userId":"u","timestamp":"22/11/2026 12:30"}`, "pre_consent:analytics", Times{Record: after, Now: after}, rec},
		{"future timestamp, originalTimestamp after", `{"userId":"u","timestamp":"2099-01-01T00:00:00Z","originalTimestamp":"2026-11-22T12:00:30Z"}`, "", Times{Record: after, Now: after}, rec},
		{"grant time unknown", `{"userId":"u"}`, "", Times{Record: grant.Add(-time.Hour), Now: after}, granted(5, "analytics")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc event.Doc
			if err := doc.Parse([]byte(tt.ev)); err != nil {
				t.Fatal(err)
			}
			d, err := (&Decider{Policy: p}).DecideAt(&doc, "u", tt.rec, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outputs[0].Reason != tt.reason || d.Outputs[0].Write != (tt.reason == "") {
				t.Fatalf("reason %q write %v, want %q", d.Outputs[0].Reason, d.Outputs[0].Write, tt.reason)
			}
		})
	}
	spec, _ := ParseSpec("p.yaml", []byte(basePolicy+"  - {name: o, topic: c.o, require: [analytics]}\nmax_clock_skew: 1s\n"))
	tight, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc event.Doc
	_ = doc.Parse([]byte(`{"userId":"u","timestamp":"2026-11-22T12:01:02Z"}`))
	if d, _ := (&Decider{Policy: tight}).DecideAt(&doc, "u", rec, Times{Record: after, Now: after}); d.Outputs[0].Write {
		t.Fatal("max_clock_skew: 1s let a timestamp 2s ahead count")
	}
	spec, _ = ParseSpec("p.yaml", []byte(basePolicy+"  - {name: o, topic: c.o, require: [analytics]}\nmax_clock_skew: soon\n"))
	if _, err := Compile(spec, testKeys(t)); err == nil || !strings.Contains(err.Error(), "max_clock_skew") {
		t.Fatalf("invalid max_clock_skew: %v", err)
	}
}

func TestExpiredRecordAtDecisionTime(t *testing.T) {
	p := compileYAML(t, "  - {name: o, topic: c.o, require: [analytics]}\n")
	exp := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rec := granted(5, "analytics")
	rec.Expires = exp
	var doc event.Doc
	_ = doc.Parse([]byte(`{"userId":"u"}`))
	for _, tt := range []struct {
		name  string
		now   time.Time
		write bool
	}{{"before", exp.Add(-time.Millisecond), true}, {"at", exp, false}, {"after", exp.Add(time.Hour), false}} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := (&Decider{Policy: p}).DecideAt(&doc, "u", rec, Times{Now: tt.now})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outputs[0].Write != tt.write || (!tt.write && (d.ConsentFound || d.Outputs[0].Reason != "consent_denied:analytics")) {
				t.Fatalf("write %v reason %q found %v, want write %v", d.Outputs[0].Write, d.Outputs[0].Reason, d.ConsentFound, tt.write)
			}
		})
	}
}

func TestEscapedSignalKeysAreNotSkipped(t *testing.T) {
	spec, err := ParseSpec("p.yaml", []byte("version: t1\npurposes: [analytics]\npseudonym_key: k1\ngpc_denies: [analytics]\noutputs: [{name: o, topic: t, require: [analytics]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := decide(t, p, `{"userId":"u","context":{"\u0067pc":true}}`, granted(1, "analytics"))
	if err != nil || d.Outputs[0].Write {
		t.Fatalf("an escaped gpc key slipped past: %v %+v", err, d.Outputs[0])
	}
}

// IAB vectors with their documented decodings (TCF: LiveRamp/iabconsent
// fixtures of the IAB TC string format; GPP: decodings published with the
// iab_gpp crate's test data).
const (
	// TCF v2.2, policy version 4: purpose 1 consent and LI, special
	// feature 1 opted in, vendor 1 consent and LI.
	tcfV22 = "COvzTO5OvzTO5B7ABCENAPEYAIAAAIAAAIqIAAoAAoAA.QAAo.IAAo"
	// Policy version 5: purpose 1 consent, purposes 2 and 7 LI, vendor 1.
	tcfV5LI = "COvzTO5OvzTO5B7ABCENAPFYAIAAAEIAAIqIAAoAAoAA.QAAo.IAAo"
	// TCF v2.0, policy version 2: must be rejected.
	tcfV20 = "COvzTO5OvzTO5BRAAAENAPCoALIAADgAAAAAAewAwABAAlAB6ABBFADBQAQA9hAAAcAA"
	// tcfV22 with special feature 1 (precise geolocation) withheld: bit 140
	// of the core segment cleared ('Y' 011000 -> 'Q' 010000 at character 23).
	tcfV22NoGeo = "COvzTO5OvzTO5B7ABCENAPEQAIAAAIAAAIqIAAoAAoAA.QAAo.IAAo"
	// GPP usct: sale and targeted advertising opted out, GPC set.
	gppUSCTOptOut = "DBABVg~BVVVVVVg.YA"
	// GPP usca: did not opt out, but the GPC subsection is set.
	gppUSCAGPC = "DBABBg~BVqqqqpY.YA"
	// GPP usva: everything not applicable.
	gppUSVANA = "DBABRg~BAAAABA"
)

func TestIABSignals(t *testing.T) {
	p := compileSpec(t, `version: t1
purposes: [personalization, analytics, advertising]
pseudonym_key: k1
iab:
  vendor_id: 1
  tcf_purposes: {personalization: [1], analytics: [1, 7], advertising: [1, 2]}
  tcf_legitimate_interest: [7]
  precise_geo_decimals: 1
  opt_out_denies: [advertising]
  # the published fixtures below are global-scope strings without a
  # Disclosed Vendors segment (conformance tests cover both checks)
  require_service_specific: false
  disclosed_vendors_required_from: never
outputs:
  - {name: perso, topic: c.perso, require: [personalization]}
  - {name: ana, topic: c.ana, require: [analytics]}
  - {name: adv, topic: c.adv, require: [advertising]}
`)
	all := granted(1, "personalization", "analytics", "advertising")
	ev := func(ctx string) string {
		return `{"userId":"u","context":{` + ctx + `,"location":{"latitude":52.5251,"longitude":-13.3691}}}`
	}
	tests := []struct {
		name, ctx, written, signals, reason string
		coarse                              bool
	}{
		{"no strings", `"locale":"de"`, "perso,ana,adv", "", "", false},
		{"tcf v2.2: only purpose 1 allowed", `"tcString":"` + tcfV22 + `"`, "perso", "tcf", "", false},
		{"tcf without precise geolocation coarsens coordinates", `"tcString":"` + tcfV22NoGeo + `"`, "perso", "tcf", "", true},
		{"tcf LI for purpose 7, consent for 1", `"gdpr_consent":"` + tcfV5LI + `"`, "perso,ana", "tcf", "", false},
		{"tcf policy version 2 rejected", `"tcString":"` + tcfV20 + `"`, "", "", ReasonInvalidConsentString, false},
		{"tcf garbage", `"tcString":"not-a-tc-string"`, "", "", ReasonInvalidConsentString, false},
		{"usp opted out of sale (third character Y)", `"us_privacy":"1YYN"`, "perso,ana", "usp", "", false},
		{"usp notice given, not opted out", `"us_privacy":"1YNN"`, "perso,ana,adv", "usp", "", false},
		{"usp lowercase is unreadable", `"us_privacy":"1yyn"`, "", "", ReasonInvalidConsentString, false},
		{"usp not applicable", `"us_privacy":"1---"`, "perso,ana,adv", "usp", "", false},
		{"two TC strings: the second withholds purpose 1", `"gdpr_consent":"` + tcfV22 + `","tcString":"CQdjfYAQdjfYAAKABAENBkFoAEIAAAAAAAAAAAAAAAAA.IAAo.YAAAAAAAAAAA"`, "", "tcf", "", false},
		{"usp bad version", `"us_privacy":"2YNN"`, "", "", ReasonInvalidConsentString, false},
		{"gpp usct opted out", `"gppString":"` + gppUSCTOptOut + `"`, "perso,ana", "gpp", "", true}, // every category opted out, precise geolocation too (MSPA)
		{"gpp usca with gpc", `"gppString":"` + gppUSCAGPC + `"`, "perso,ana", "gpp", "", true},     // GPC denies precise geolocation too (MSPA)
		{"gpp usva not applicable", `"gppString":"` + gppUSVANA + `"`, "perso,ana,adv", "gpp", "", false},
		{"gpp garbage", `"gppString":"DBAB~"`, "", "", ReasonInvalidConsentString, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, ev(tt.ctx), all)
			if tt.reason != "" {
				wantInputError(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var w []string
			for _, o := range d.Outputs {
				if o.Write {
					w = append(w, o.Output.Name)
					// Coordinates stay as sent unless the TC string withholds
					// special feature 1 (precise geolocation).
					precise := strings.Contains(string(o.Value), `"latitude":52.5251,"longitude":-13.3691`)
					coarse := strings.Contains(string(o.Value), `"latitude":52.5,"longitude":-13.4`) && strings.Contains(o.ActionsHeader(), "tcf_round_geo:context.location.latitude")
					if precise == tt.coarse || coarse != tt.coarse {
						t.Errorf("%s: precise %v coarse %v, want coarse %v: %s (%s)", o.Output.Name, precise, coarse, tt.coarse, o.Value, o.ActionsHeader())
					}
				}
			}
			if strings.Join(w, ",") != tt.written || strings.Join(d.EventSignals, "+") != tt.signals {
				t.Fatalf("written %v signals %v, want %s / %s (%s)", w, d.EventSignals, tt.written, tt.signals, d.Explain())
			}
		})
	}
}

// wantInputError fails unless err is an *InputError with reason.
func wantInputError(t *testing.T, err error, reason string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) || ie.Reason != reason {
		t.Fatalf("err = %v, want InputError %s", err, reason)
	}
}

// writtenNames lists the outputs a decision writes, in policy order.
// compileSpec compiles a whole policy written in YAML.
func compileSpec(t *testing.T, yaml string) *Policy {
	t.Helper()
	spec, err := ParseSpec("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writtenNames(d *Decision) []string {
	var w []string
	for _, o := range d.Outputs {
		if o.Write {
			w = append(w, o.Output.Name)
		}
	}
	return w
}
