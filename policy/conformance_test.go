package policy_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/ingest"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/testing/conformance"
	"github.com/consentd/consentd/policy"
)

func TestConformance(t *testing.T) {
	vectors := conformance.Load(t)
	if len(vectors) < 100 {
		t.Fatalf("%d vectors, want at least 100", len(vectors))
	}
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for name, v := range vectors {
		counts[v.Kind]++
		for _, run := range v.Runs {
			t.Run(name+"/"+run.Name, func(t *testing.T) {
				text := v.PolicyText(run)
				spec, err := policy.ParseSpec(name, []byte(text))
				if err != nil {
					t.Fatal(err)
				}
				p, err := policy.Compile(spec, keys)
				if err != nil {
					t.Fatalf("%v\n%s", err, text)
				}
				d, err := decideEvent(p, v.Event, v.Purposes)
				if run.Expect.Invalid {
					var ie *policy.InputError
					if !errors.As(err, &ie) || ie.Reason != policy.ReasonInvalidConsentString {
						t.Fatalf("err = %v, want %s (reference: %s; %s)", err, policy.ReasonInvalidConsentString, v.Reference, v.Source.Note)
					}
				} else {
					if err != nil {
						t.Fatalf("%v (reference decodes it: %s)", err, v.Reference)
					}
					var withheld []string
					for _, o := range d.Outputs {
						if !o.Write {
							withheld = append(withheld, o.Output.Name)
						}
					}
					if strings.Join(withheld, ",") != strings.Join(run.Expect.Withheld, ",") {
						t.Fatalf("withheld %v, reference %v (%s)", withheld, run.Expect.Withheld, d.Explain())
					}
					if c := run.Expect.CoarseGeo; c != nil && *c != d.CoarseGeo() {
						t.Fatalf("coarse geolocation %v, reference %v", d.CoarseGeo(), *c)
					}
				}
				if st := run.Expect.Stored; st != nil {
					u, err := ingest.Parse(v.Record, time.UnixMilli(1), ingest.Mapping{Purposes: p.Purposes, Categories: p.ConsentCategories, CMP: p.CMP})
					if err != nil {
						t.Fatalf("consent record: %v", err)
					}
					var g []string
					for _, pu := range p.Purposes {
						if u.Merge(consent.Record{})[pu] {
							g = append(g, pu)
						}
					}
					keep := slices.Clone(u.Keep)
					if strings.Join(g, ",") != strings.Join(st.Granted, ",") || strings.Join(keep, ",") != strings.Join(st.Keep, ",") {
						t.Fatalf("stored granted %v keep %v, reference granted %v keep %v", g, keep, st.Granted, st.Keep)
					}
				}
			})
		}
	}
	t.Logf("vectors per kind: %v", counts)
}

// decideEvent decides raw for a subject whose stored record grants every
// purpose, as the pipeline does.
func decideEvent(p *policy.Policy, raw []byte, purposes []string) (*policy.Decision, error) {
	var doc event.Doc
	if err := doc.Parse(raw); err != nil {
		return nil, policy.ParseError(err)
	}
	subj, _, ok, err := p.Subject(&doc)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no subject")
	}
	rec := consent.Record{Found: true, Version: 1, Granted: map[string]bool{}}
	for _, pu := range purposes {
		rec.Granted[pu] = true
	}
	dc := &policy.Decider{Policy: p}
	return dc.DecideAt(&doc, subj, rec, policy.Times{})
}

// TestConformanceDifferencesAreDocumented: every option a vector names as
// the reason consentd's default differs from the reference is a row of
// the README's table of deliberate differences.
func TestConformanceDifferencesAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]int{}
	for name, v := range conformance.Load(t) {
		for _, run := range v.Runs {
			if len(run.Options) == 0 {
				continue
			}
			for _, o := range run.Options {
				if !strings.Contains(o, ".") {
					o = "iab." + o
				}
				named[o]++
				if !strings.Contains(string(readme), "| `"+o+"` |") {
					t.Errorf("%s/%s: option %s is not in the README's table of deliberate differences", name, run.Name, o)
				}
			}
		}
	}
	if named["iab.tcf_purpose_one_treatment"] == 0 {
		t.Error("no vector exercises tcf_purpose_one_treatment")
	}
	t.Logf("differences by option: %v", named)
}
