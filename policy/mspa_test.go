package policy

import (
	"encoding/base64"
	"strings"
	"testing"
)

// mspaBase is the permissive usnat consent of Prebid.js's activity
// control tests: covered, opted in to sale, sharing and targeted
// advertising, every notice given, consent to precise geolocation.
func mspaBase() usnatValues {
	sens := make([]int, 12)
	sens[sensitiveGeo] = 2
	return usnatValues{
		fSharingNotice: {1}, fSaleNotice: {1}, fSharingOptOutNotice: {1}, fTargetedNotice: {1},
		fSensitiveOptOutNotice: {1}, fSensitiveLimitNotice: {1}, fSaleOptOut: {2}, fSharingOptOut: {2},
		fTargetedOptOut: {2}, fSensitive: sens, fChild: {0, 0}, fPersonalData: {0}, fCovered: {2},
		fOptOutMode: {0}, fServiceProvider: {0},
	}
}

// TestDecideMSPA: the cases of Prebid.js's activity control tests
// (test/spec/libraries/mspa/activityControls_spec.js) and one per rule of
// its current interpretation, each a change of mspaBase.
func TestDecideMSPA(t *testing.T) {
	tests := []struct {
		name                   string
		set                    func(v usnatValues)
		gpc                    bool
		denied, sensitive, geo bool
	}{
		{"base allows everything", func(usnatValues) {}, false, false, false, false},
		{"personal data consent without notice", func(v usnatValues) { v[fPersonalData] = []int{2} }, false, true, true, true},
		{"service-provider mode", func(v usnatValues) { v[fServiceProvider] = []int{1} }, false, true, true, true},
		{"GPC", func(usnatValues) {}, true, true, true, true},
		{"known child 13-16 without consent", func(v usnatValues) { v[fChild] = []int{1, 0} }, false, true, true, true},
		{"known child under 13", func(v usnatValues) { v[fChild] = []int{0, 2} }, false, true, true, true},
		{"known child 16-17 without consent (v2)", func(v usnatValues) { v[fChild] = []int{0, 0, 1} }, false, true, true, true},
		{"covered transaction not set", func(v usnatValues) { v[fCovered] = []int{0} }, false, true, true, true},
		{"targeted advertising opt-out", func(v usnatValues) { v[fTargetedOptOut] = []int{1} }, false, true, true, false},
		{"targeted notice not given", func(v usnatValues) { v[fTargetedNotice] = []int{2} }, false, true, true, false},
		{"targeted opt-in without notice", func(v usnatValues) { v[fTargetedNotice] = []int{0} }, false, true, true, false},
		{"sale opt-out", func(v usnatValues) { v[fSaleOptOut] = []int{1} }, false, true, true, false},
		{"sharing notice not given", func(v usnatValues) { v[fSharingNotice] = []int{2} }, false, true, true, false},
		{"sharing opt-in without sharing notice", func(v usnatValues) { v[fSharingNotice] = []int{0} }, false, true, true, false},
		{"health data opted out", func(v usnatValues) { v[fSensitive][2] = 1 }, false, false, true, false},
		{"biometric data in scope", func(v usnatValues) { v[fSensitive][6] = 1 }, false, false, true, false},
		{"biometric data consented is still denied", func(v usnatValues) { v[fSensitive][6] = 2 }, false, false, true, false},
		{"sensitive limit notice not given", func(v usnatValues) { v[fSensitiveLimitNotice] = []int{2} }, false, false, true, true},
		{"sensitive consent without notice", func(v usnatValues) {
			v[fSensitiveLimitNotice] = []int{0}
			v[fSensitive][0] = 2
		}, false, false, true, true},
		{"precise geolocation opted out", func(v usnatValues) { v[fSensitive][sensitiveGeo] = 1 }, false, false, false, true},
		{"geo consent without sensitive notice", func(v usnatValues) { v[fSensitiveOptOutNotice] = []int{0} }, false, false, false, true},
	}
	for _, tt := range tests {
		v := mspaBase()
		tt.set(v)
		version := 1
		if len(v[fChild]) == 3 {
			version = 2
		}
		d := decideMSPA(v, version, tt.gpc)
		if d.denied != tt.denied || d.sensitive != tt.sensitive || d.geo != tt.geo {
			t.Errorf("%s: denied %v sensitive %v geo %v, want %v %v %v", tt.name, d.denied, d.sensitive, d.geo, tt.denied, tt.sensitive, tt.geo)
		}
	}
}

// usnatString encodes a version 1 usnat core segment from v, as a GPP
// string with its header (section 7 only).
func usnatString(v usnatValues) string {
	bits := "000001"
	for _, f := range usnatLayout(12, 2) {
		for _, x := range v[f.name] {
			bits += [...]string{"00", "01", "10", "11"}[x]
		}
	}
	for len(bits)%8 != 0 {
		bits += "0"
	}
	b := make([]byte, len(bits)/8)
	for i := range b {
		for j := 0; j < 8; j++ {
			if bits[i*8+j] == '1' {
				b[i] |= 0x80 >> j
			}
		}
	}
	return "DBABLA~" + strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")
}

// TestMSPAThroughDecide: usnat strings whose MSPA, known-child and
// sensitive-data fields deny go through the live decision path:
// advertising is withheld, precise coordinates rounded.
func TestMSPAThroughDecide(t *testing.T) {
	p := compileIABPolicy(t)
	for _, tt := range []struct {
		name     string
		set      func(v usnatValues)
		withheld bool
		coarse   bool
	}{
		{"permissive", func(usnatValues) {}, false, false},
		{"service-provider mode", func(v usnatValues) { v[fServiceProvider] = []int{1} }, true, true},
		{"known child", func(v usnatValues) { v[fChild] = []int{0, 1} }, true, true},
		{"sale notice not given", func(v usnatValues) { v[fSaleNotice] = []int{2} }, true, false},
		{"health data opted out", func(v usnatValues) { v[fSensitive][2] = 1 }, true, false},
		{"precise geolocation opted out", func(v usnatValues) { v[fSensitive][sensitiveGeo] = 1 }, false, true},
	} {
		v := mspaBase()
		tt.set(v)
		ev := `{"userId":"u","context":{"gppString":"` + usnatString(v) + `","location":{"latitude":52.52437,"longitude":13.41053}}}`
		d, err := decide(t, p, ev, granted(1, "personalization", "analytics", "advertising"))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		adv := !strings.Contains(","+strings.Join(writtenNames(d), ",")+",", ",adv,")
		if adv != tt.withheld || d.CoarseGeo() != tt.coarse {
			t.Errorf("%s: advertising withheld %v coarse %v, want %v %v: %s", tt.name, adv, d.CoarseGeo(), tt.withheld, tt.coarse, d.Explain())
		}
	}
}

func compileIABPolicy(t *testing.T) *Policy {
	return compileSpec(t, `version: t1
purposes: [personalization, analytics, advertising]
pseudonym_key: k1
iab:
  opt_out_denies: [advertising]
outputs:
  - {name: perso, topic: c.perso, require: [personalization]}
  - {name: adv, topic: c.adv, require: [advertising]}
`)
}
