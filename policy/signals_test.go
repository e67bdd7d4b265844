package policy

import (
	"strings"
	"testing"
)

const signalsBase = "version: s1\npurposes: [perso, ana, ads]\npseudonym_key: k1\n"
const signalsOutputs = `outputs:
  - {name: perso, topic: c.perso, require: [perso]}
  - {name: ana, topic: c.ana, require: [ana]}
  - {name: ads, topic: c.ads, require: [ads]}
`

func compileSignalPolicy(t *testing.T, sections string) (*Policy, error) {
	t.Helper()
	spec, err := ParseSpec("p.yaml", []byte(signalsBase+sections+signalsOutputs))
	if err != nil {
		t.Fatal(err)
	}
	return Compile(spec, testKeys(t))
}

func TestPolicyRefusesLegitimateInterestWherePoliciesForbidIt(t *testing.T) {
	for _, tc := range []struct{ iab, want string }{
		{"tcf_legitimate_interest: [1]", "TCF purpose 1 may not rest on legitimate interest"},
		{"tcf_legitimate_interest: [7, 3]", "TCF purpose 3 may not rest on legitimate interest"},
		{"tcf_flexible_purposes: [2, 5]", "TCF purpose 5 may not rest on legitimate interest"},
		{"tcf_flexible_purposes: [6]", "TCF purpose 6 may not rest on legitimate interest"},
		{"tcf_legitimate_interest: [7, 8, 9, 10]", ""},
		{"tcf_flexible_purposes: [2, 7, 11]", ""},
	} {
		_, err := compileSignalPolicy(t, "iab:\n  vendor_id: 1\n  tcf_purposes: {ads: [1, 2]}\n  "+tc.iab+"\n")
		if tc.want == "" && err != nil {
			t.Errorf("%s: %v", tc.iab, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.iab, err, tc.want)
		}
	}
	for _, bad := range []string{
		"iab:\n  min_tcf_policy_version: 1\n",
		"iab:\n  disclosed_vendors_required_from: soon\n",
		"iab:\n  gpp_unsupported_sections: maybe\n",
		"signals:\n  rudderstack_strategies: {custom: xor}\n",
		"signals:\n  invalid_rudderstack: drop\n",
		"signals:\n  consent_mode: {ads: [ad_cookies]}\n",
		"signals:\n  consent_mode: {nope: [ad_storage]}\n",
	} {
		if _, err := compileSignalPolicy(t, bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func TestGoogleConsentMode(t *testing.T) {
	p, err := compileSignalPolicy(t, `signals:
  consent_mode:
    ads: [ad_storage, ad_user_data, ad_personalization]
    ana: [analytics_storage]
`)
	if err != nil {
		t.Fatal(err)
	}
	all := granted(1, "perso", "ana", "ads")
	for _, tc := range []struct{ name, cm, written, reason string }{
		{"no object", ``, "perso,ana,ads", ""},
		{"all granted", `,"consent_mode":{"ad_storage":"granted","analytics_storage":"granted","ad_user_data":"granted","ad_personalization":"granted"}`, "perso,ana,ads", ""},
		{"ad_user_data denied", `,"consent_mode":{"ad_storage":"granted","analytics_storage":"granted","ad_user_data":"denied","ad_personalization":"granted"}`, "perso,ana", ""},
		{"a type left out counts as denied", `,"consent_mode":{"ad_storage":"granted","ad_user_data":"granted","ad_personalization":"granted"}`, "perso,ads", ""},
		{"other keys ignored", `,"consent_mode":{"analytics_storage":"granted","wait_for_update":500}`, "perso,ana", ""},
		{"not granted or denied", `,"consent_mode":{"analytics_storage":true}`, "", ReasonInvalidConsentString},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decide(t, p, `{"userId":"u","context":{"locale":"de"`+tc.cm+`}}`, all)
			if tc.reason != "" {
				wantInputError(t, err, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(writtenNames(d), ","); got != tc.written {
				t.Fatalf("written %s, want %s (%s)", got, tc.written, d.Explain())
			}
		})
	}
}

func TestInvalidSignalsNameTheSignal(t *testing.T) {
	p, err := compileSignalPolicy(t, `consent_categories: {Ads: ads}
iab:
  opt_out_denies: [ads]
  gpp_paths: [context.gppString, properties.gpp]
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ctx, want string }{
		{`"gppString":"DBABLA~BAAAAAAAAQA.QA","x":1`, ""},
		{`"gppString":"DBABLA~BAAAAAAAAQA.QA"},"properties":{"gpp":"DBABLA~zz"`, "GPP string at properties.gpp: section usnat (7)"},
		{`"gppString":"DBABTA~1yNN"`, "GPP string at context.gppString: section uspv1 (6)"},
		{`"us_privacy":"1yNN"`, "US Privacy string at context.us_privacy"},
		{`"tcString":5`, "TC string at context.tcString: not a string"},
		{`"consentManagement":{"deniedConsentIds":[1]}`, "rudderstack at context.consentManagement"},
		{`"gpp_sid":"7;8","gppString":"DBABLA~BAAAAAAAAQA.QA"`, "GPP applicable sections at context.gpp_sid"},
	} {
		_, err := decide(t, p, `{"userId":"u","context":{`+tc.ctx+`}}`, granted(1, "perso", "ana", "ads"))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.ctx, err)
			}
			continue
		}
		wantInputError(t, err, ReasonInvalidConsentString)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to name %q", tc.ctx, err, tc.want)
		}
	}
}

func TestSignalSummary(t *testing.T) {
	p, err := compileSignalPolicy(t, `consent_categories: {Ads: ads, Marketing: ads, Analytics: ana}
gpc_denies: [ads]
iab:
  vendor_id: 42
  tcf_purposes: {ads: [1, 2, 7], ana: [1, 8]}
  tcf_legitimate_interest: [8]
  tcf_flexible_purposes: [2]
  opt_out_denies: [ads]
signals:
  consent_mode: {ads: [ad_storage, ad_user_data]}
`)
	if err != nil {
		t.Fatal(err)
	}
	s := p.SignalSummary()
	for _, want := range []string{
		"- perso: no signal can withhold it",
		"Segment categoryPreferences Ads, Marketing (consent: every one true)",
		"TCF vendor 42, purposes 1 on consent, 2 on consent or legitimate interest (flexible), 7 on consent;",
		"TCF vendor 42, purposes 1 on consent, 8 on legitimate interest;",
		"opt-out of sale, sharing or targeted advertising",
		"Global Privacy Control at context.gpc (opt-out)",
		"Google Consent Mode at context.consent_mode: ad_storage, ad_user_data granted (consent)",
		"TCF policy version >= 4, service-specific only, Disclosed Vendors segment required from 2026-02-28",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
