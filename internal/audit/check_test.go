package audit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func shipped(t *testing.T) *Policy {
	t.Helper()
	b, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPolicy(b, "sha256:x")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsentdsOwnOutputPasses: every clean value the shipped policy's
// golden cases expect (what consentd writes, configs/policy-tests) passes
// the audit: the auditor's detectors find nothing consentd lets through.
func TestConsentdsOwnOutputPasses(t *testing.T) {
	p := shipped(t)
	byName := map[string]*Output{}
	for _, o := range p.Outputs {
		byName[o.Name] = o
	}
	c := &Checker{Policy: p, KeyIDs: []string{"k1"}, IDs: []string{"user-1001", "anon-77f1", "jane@example.com"}}
	files, _ := filepath.Glob("../../configs/policy-tests/*.yaml")
	checked := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var tc struct {
			Expect struct {
				Outputs map[string]struct {
					Written bool
					Value   string
				}
			}
		}
		if err := yaml.Unmarshal(b, &tc); err != nil {
			t.Fatal(err)
		}
		for name, o := range tc.Expect.Outputs {
			if !o.Written {
				continue
			}
			checked++
			if fs := c.Value(byName[name], []byte(o.Value), time.Time{}); len(fs) > 0 {
				t.Errorf("%s, output %s: %+v in %s", filepath.Base(f), name, fs, o.Value)
			}
		}
	}
	if checked < 15 {
		t.Fatalf("checked %d clean values", checked)
	}
}

// TestFindsWhatThePolicyForbids: each violation a writer could make is
// found, at its path, and a compliant value is not.
func TestFindsWhatThePolicyForbids(t *testing.T) {
	p := shipped(t)
	var perso, ana *Output
	for _, o := range p.Outputs {
		switch o.Name {
		case "personalization":
			perso = o
		case "analytics":
			ana = o
		}
	}
	c := &Checker{Policy: p, KeyIDs: []string{"k1"}, IDs: []string{"user-1001"}}
	const ok = `{"type":"track","event":"Order Completed","userId":"k1:a0282e1be24ff52addff87ece1c3f5d2","timestamp":"2026-06-01T11:00:00Z","context":{"page":{"path":"/checkout"},"location":{"country":"DE"}},"properties":{"product_id":"sku-1","revenue":49.5,"title":"Sneaker"}}`
	for _, tc := range []struct {
		name  string
		out   *Output
		value string
		rt    time.Time
		want  []string // kind@path
	}{
		{"compliant", ana, ok, time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC), nil},
		{"e-mail in a kept field", ana, strings.Replace(ok, `"Sneaker"`, `"mail bob.smith@example.org"`, 1), time.Time{}, []string{"email@properties.title"}},
		{"phone in a kept field", ana, strings.Replace(ok, `"Sneaker"`, `"call +49 30 1234 5678"`, 1), time.Time{}, []string{"phone@properties.title"}},
		{"card in a kept field", ana, strings.Replace(ok, `"Sneaker"`, `"4111-1111-1111-1111"`, 1), time.Time{}, []string{"card@properties.title"}},
		{"card as a number", ana, strings.Replace(ok, `49.5`, `4111111111111111`, 1), time.Time{}, []string{"card@properties.revenue"}},
		{"IP in a kept field", ana, strings.Replace(ok, `"Sneaker"`, `"from 198.51.100.23"`, 1), time.Time{}, []string{"ip_address@properties.title"}},
		{"known raw id", ana, strings.Replace(ok, `"Sneaker"`, `"for User-1001 only"`, 1), time.Time{}, []string{"known_subject_id@properties.title"}},
		{"unpseudonymized id", ana, strings.Replace(ok, `"k1:a0282e1be24ff52addff87ece1c3f5d2"`, `"user-1001"`, 1), time.Time{}, []string{"not_pseudonymized@userId"}},
		{"pseudonym of an unknown key", ana, strings.Replace(ok, `"k1:`, `"k9:`, 1), time.Time{}, []string{"not_pseudonymized@userId"}},
		{"field outside keep_only", ana, strings.Replace(ok, `"country":"DE"`, `"country":"DE","city":"Berlin"`, 1), time.Time{}, []string{"field_not_allowed@context.location.city"}},
		{"untruncated body time", ana, strings.Replace(ok, `11:00:00Z`, `11:04:07Z`, 1), time.Time{}, []string{"time_not_truncated@timestamp"}},
		{"untruncated record time", ana, ok, time.Date(2026, 6, 1, 11, 4, 7, 0, time.UTC), []string{"record_time_not_truncated@"}},
		{"IP with host bits", perso, `{"type":"track","context":{"ip":"203.0.113.77"}}`, time.Time{}, []string{"ip_host_bits@context.ip"}},
		{"truncated IP", perso, `{"type":"track","context":{"ip":"203.0.113.0"}}`, time.Time{}, nil},
		{"IPv6 with host bits", perso, `{"type":"track","context":{"ip":"2001:db8:abcd:12::1"}}`, time.Time{}, []string{"ip_host_bits@context.ip"}},
		{"unrounded coordinate", perso, `{"type":"track","context":{"location":{"latitude":52.520008,"longitude":13.4}}}`, time.Time{}, []string{"coordinate_not_rounded@context.location.latitude"}},
		{"not JSON", ana, `{"type":`, time.Time{}, []string{"unreadable_value@"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range c.Value(tc.out, []byte(tc.value), tc.rt) {
				got = append(got, f.Kind+"@"+f.Path)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
		})
	}
}
