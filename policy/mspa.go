package policy

import (
	"maps"
	"slices"
)

// This file decides the MSPA and notice fields of GPP US sections the way
// Prebid.js's activity controls do (libraries/mspa/activityControls, its
// usnat interpretation, and modules/gppControl_usstates for the state
// sections it normalizes to usnat): the national section (7) and the
// California, Virginia, Colorado, Utah and Connecticut sections (8 to 12)
// are read field by field; the other state sections are decided on their
// opt-outs and their MSPA fields, which every US section ends with.

// usField names a field of a US section's core segment and how many
// two-bit values it holds (1 for a scalar).
type usField struct {
	name string
	n    int
}

// The usnat field names (IAB GPP, Sections/US-National).
const (
	fSharingNotice         = "SharingNotice"
	fSaleNotice            = "SaleOptOutNotice"
	fSharingOptOutNotice   = "SharingOptOutNotice"
	fTargetedNotice        = "TargetedAdvertisingOptOutNotice"
	fSensitiveOptOutNotice = "SensitiveDataProcessingOptOutNotice"
	fSensitiveLimitNotice  = "SensitiveDataLimitUseNotice"
	fSaleOptOut            = "SaleOptOut"
	fSharingOptOut         = "SharingOptOut"
	fTargetedOptOut        = "TargetedAdvertisingOptOut"
	fSensitive             = "SensitiveDataProcessing"
	fChild                 = "KnownChildSensitiveDataConsents"
	fPersonalData          = "PersonalDataConsents"
	fCovered               = "MspaCoveredTransaction"
	fOptOutMode            = "MspaOptOutOptionMode"
	fServiceProvider       = "MspaServiceProviderMode"
)

func usnatLayout(sensitive, child int) []usField {
	return []usField{{fSharingNotice, 1}, {fSaleNotice, 1}, {fSharingOptOutNotice, 1}, {fTargetedNotice, 1},
		{fSensitiveOptOutNotice, 1}, {fSensitiveLimitNotice, 1}, {fSaleOptOut, 1}, {fSharingOptOut, 1},
		{fTargetedOptOut, 1}, {fSensitive, sensitive}, {fChild, child}, {fPersonalData, 1}, {fCovered, 1},
		{fOptOutMode, 1}, {fServiceProvider, 1}}
}

// usLayouts are the core segments read field by field (iabgpp-es v3.2).
var usLayouts = map[int][]usField{
	8: {{fSaleNotice, 1}, {fSharingOptOutNotice, 1}, {fSensitiveLimitNotice, 1}, {fSaleOptOut, 1}, {fSharingOptOut, 1},
		{fSensitive, 9}, {fChild, 2}, {fPersonalData, 1}, {fCovered, 1}, {fOptOutMode, 1}, {fServiceProvider, 1}},
	9: {{fSharingNotice, 1}, {fSaleNotice, 1}, {fTargetedNotice, 1}, {fSaleOptOut, 1}, {fTargetedOptOut, 1},
		{fSensitive, 8}, {fChild, 1}, {fCovered, 1}, {fOptOutMode, 1}, {fServiceProvider, 1}},
	10: {{fSharingNotice, 1}, {fSaleNotice, 1}, {fTargetedNotice, 1}, {fSaleOptOut, 1}, {fTargetedOptOut, 1},
		{fSensitive, 7}, {fChild, 1}, {fCovered, 1}, {fOptOutMode, 1}, {fServiceProvider, 1}},
	11: {{fSharingNotice, 1}, {fSaleNotice, 1}, {fTargetedNotice, 1}, {fSensitiveOptOutNotice, 1}, {fSaleOptOut, 1},
		{fTargetedOptOut, 1}, {fSensitive, 8}, {fChild, 1}, {fCovered, 1}, {fOptOutMode, 1}, {fServiceProvider, 1}},
	12: {{fSharingNotice, 1}, {fSaleNotice, 1}, {fTargetedNotice, 1}, {fSaleOptOut, 1}, {fTargetedOptOut, 1},
		{fSensitive, 8}, {fChild, 3}, {fCovered, 1}, {fOptOutMode, 1}, {fServiceProvider, 1}},
}

// usnatValues is a US section read as usnat: each field's values, absent
// fields nil (they decide nothing).
type usnatValues map[string][]int

func (v usnatValues) scalar(name string) int {
	if f := v[name]; len(f) == 1 {
		return f[0]
	}
	return -1
}

// at returns element i of a list field, -1 when absent.
func (v usnatValues) at(name string, i int) int {
	if f := v[name]; i < len(f) {
		return f[i]
	}
	return -1
}

// readUSFields splits the two-bit values of a core segment by layout.
func readUSFields(layout []usField, vals []int) usnatValues {
	out := usnatValues{}
	k := 0
	for _, f := range layout {
		if k+f.n > len(vals) {
			break
		}
		out[f.name] = vals[k : k+f.n]
		k += f.n
	}
	return out
}

// normalizeState turns a state section (8 to 12) into usnat fields as
// Prebid.js's gppControl_usstates does: sensitive-data categories moved to
// their usnat positions (12 of them: the version 1 layout), known-child
// consents widened.
func normalizeState(id int, v usnatValues) usnatValues {
	moves := map[int]map[int][]int{ // 1-based, as the reference writes them
		8:  {1: {9}, 2: {10}, 3: {8}, 4: {1, 2}, 5: {12}, 8: {3}, 9: {4}},
		11: {3: {4}, 4: {5}, 5: {3}},
	}[id]
	sens := make([]int, 12)
	for i := range sens {
		sens[i] = -1
	}
	done := map[int]bool{}
	for i, val := range v[fSensitive] {
		dests, moved := moves[i+1]
		if !moved {
			dests = []int{i + 1}
		}
		for _, d := range dests {
			if d-1 < len(sens) && !done[d-1] {
				sens[d-1] = val
				if moved {
					done[d-1] = true
				}
			}
		}
	}
	out := maps.Clone(v)
	out[fSensitive] = sens
	cc := v[fChild]
	switch {
	case !slices.ContainsFunc(cc, func(c int) bool { return c != 0 }):
		out[fChild] = []int{0, 0}
	case id == 12 && len(cc) == 3 && cc[1] == 2 && cc[2] == 2:
		out[fChild] = []int{2, 1}
	default:
		out[fChild] = []int{1, 1}
	}
	return out
}

// mspaDecision is what the MSPA and notice fields of one section say.
type mspaDecision struct {
	// denied: no sale, sharing or targeted advertising (Prebid's
	// isConsentDenied: opted out, a notice not given, an opt-in the CMP
	// claims without the notice, service-provider mode, no covered
	// transaction flag, a known child without consent, GPC).
	denied bool
	// sensitive: sensitive data may not be used (isTransmitUfpdConsentDenied).
	sensitive bool
	// geo: precise geolocation may not be used (isTransmitGeoConsentDenied).
	geo bool
}

// sensitiveGeo is the usnat index of precise geolocation among the
// sensitive-data categories.
const sensitiveGeo = 7

// notInScope are the sensitive-data categories that may not be used at
// all (usnat indexes): genetic, biometric, government id, financial, union
// membership, communications and, version 2, crime victim and transgender
// status. The others need consent; geolocation is decided apart.
var notInScope = map[int]bool{5: true, 6: true, 8: true, 9: true, 11: true, 13: true, 15: true}

// optOutScopes pairs each opt-out with its notice.
var optOutScopes = [][2]string{{fSaleOptOut, fSaleNotice}, {fSharingOptOut, fSharingOptOutNotice}, {fTargetedOptOut, fTargetedNotice}}

// decideMSPA applies the rules to a section read as usnat. gpc is its
// GPC subsection.
func decideMSPA(v usnatValues, version int, gpc bool) mspaDecision {
	basic := v.scalar(fServiceProvider) == 1 || gpc ||
		v.scalar(fPersonalData) == 2 || // consent claimed without notice
		v.at(fChild, 0) == 1 || v.at(fChild, 2) == 1 || // a known child without consent
		v.at(fChild, 1) > 0 || // a known child under 13
		v.scalar(fCovered) == 0
	if basic {
		return mspaDecision{denied: true, sensitive: true, geo: true}
	}
	var d mspaDecision
	for _, s := range optOutScopes {
		oo, notice := v.scalar(s[0]), v.scalar(s[1])
		// Opted out, notice not given, or an opt-in without the notice.
		d.denied = d.denied || oo == 1 || notice == 2 || oo == 2 && notice == 0
	}
	sn := v.scalar(fSharingNotice)
	d.denied = d.denied || sn == 2 || v.scalar(fSharingOptOut) == 2 && sn == 0
	noticeIs := func(x int) bool {
		return v.scalar(fSensitiveOptOutNotice) == x || v.scalar(fSensitiveLimitNotice) == x
	}
	card := 12
	if version >= 2 {
		card = 16
	}
	sens := func(i int) int { return v.at(fSensitive, i) }
	d.sensitive = d.denied || noticeIs(2)
	for i := 0; i < card && !d.sensitive; i++ {
		switch {
		case i == sensitiveGeo:
		case notInScope[i] && sens(i) > 0:
			d.sensitive = true
		case !notInScope[i] && sens(i) == 1:
			d.sensitive = true
		case noticeIs(0) && sens(i) == 2:
			d.sensitive = true
		}
	}
	geo := sens(sensitiveGeo)
	d.geo = geo == 1 || noticeIs(2) || (noticeIs(0) && geo == 2)
	return d
}
