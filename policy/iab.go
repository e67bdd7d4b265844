package policy

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/LiveRamp/iabconsent"

	"github.com/consentd/consentd/event"
)

// IABSpec maps IAB consent signals carried by events to purposes. Every
// signal an event carries must grant a purpose too (strictest wins).
type IABSpec struct {
	// VendorID is the TCF vendor consentd processes for. Required when
	// TCFPurposes is set.
	VendorID int `yaml:"vendor_id"`
	// TCFPaths hold TC strings; a string at every path is honoured.
	// Default: [context.tcString, context.gdpr_consent].
	TCFPaths []string `yaml:"tcf_paths"`
	// TCFPurposes maps a purpose to the TCF purposes (1..11) that must all
	// be allowed for VendorID. Purposes not listed are not restricted by
	// TC strings.
	TCFPurposes map[string][]int `yaml:"tcf_purposes"`
	// TCFLegitimateInterest lists the TCF purposes the vendor declares
	// under legitimate interest (GVL legIntPurposes): only the vendor's
	// and the purpose's legitimate-interest signals establish them. Not
	// allowed: 1 and 3..6 (TCF Policies v4). Default: none (consent).
	TCFLegitimateInterest []int `yaml:"tcf_legitimate_interest"`
	// TCFFlexiblePurposes lists the TCF purposes the vendor declares as
	// flexible (GVL flexiblePurposes): consent or legitimate interest
	// establishes them, unless a publisher restriction requires one.
	// Not allowed: 1 and 3..6. Default: none.
	TCFFlexiblePurposes []int `yaml:"tcf_flexible_purposes"`
	// TCFPurposeOneTreatment decides TCF purpose 1 (store and/or access
	// information on a device) when a TC string sets PurposeOneTreatment:
	// the publisher's jurisdiction (PublisherCC) does not require consent
	// for it, so the CMP did not ask. "deny": purpose 1 still needs its
	// consent bit, which such a string leaves 0. "allow": purpose 1 is
	// established for a disclosed vendor whatever the consent bits and
	// publisher restrictions say, as Prebid Server does by default
	// (purpose_one_treatment enabled, access_allowed). Default: deny.
	TCFPurposeOneTreatment string `yaml:"tcf_purpose_one_treatment"`
	// MinTCFPolicyVersion: TC strings with an older TCF policy version are
	// invalid. Default: 4 (TCF v2.2); 2 accepts TCF v2.0 strings.
	MinTCFPolicyVersion *int `yaml:"min_tcf_policy_version"`
	// RequireServiceSpecific: a TC string with IsServiceSpecific=0 (global
	// scope, deprecated since TCF v2.2) is invalid. Default: true.
	RequireServiceSpecific *bool `yaml:"require_service_specific"`
	// DisclosedVendorsRequiredFrom: a TC string last updated on or after
	// this date (YYYY-MM-DD) without a Disclosed Vendors segment is
	// invalid (TCF v2.3). "never" turns the check off. A string that has
	// the segment gives the vendor no legal basis unless it lists the
	// vendor, whatever the date. Default: 2026-02-28.
	DisclosedVendorsRequiredFrom string `yaml:"disclosed_vendors_required_from"`
	// PreciseGeoDecimals: when a TC string does not opt in to special
	// feature 1 (precise geolocation), coordinates are rounded to this many
	// decimals in every output. Default: 2.
	PreciseGeoDecimals *int `yaml:"precise_geo_decimals"`
	// GPPPaths hold GPP strings. Default: [context.gppString].
	GPPPaths []string `yaml:"gpp_paths"`
	// GPPSIDPaths hold the GPP applicable sections (gpp_sid: an array of
	// section ids or a string "7,8" / "7_8"); when present, only the listed
	// sections of the event's GPP strings apply. Default: [context.gpp_sid].
	GPPSIDPaths []string `yaml:"gpp_sid_paths"`
	// GPPUnsupportedSections: what a GPP section consentd does not decide
	// (TCF Canada, 5, and ids the specification does not define) does:
	// "reject" (the event is dead-lettered) or "ignore". Default: reject.
	GPPUnsupportedSections string `yaml:"gpp_unsupported_sections"`
	// USPPaths hold US Privacy strings ("1YNN"). Default: [context.us_privacy].
	USPPaths []string `yaml:"usp_paths"`
	// OptOutDenies lists the purposes an opt-out of sale, sharing or
	// targeted advertising (GPP US sections and their GPC subsection, US
	// Privacy) denies.
	OptOutDenies []string `yaml:"opt_out_denies"`
	// SensitiveDataDenies lists the purposes that may not run when a GPP
	// US section withholds sensitive data (a notice not given, an opt-out
	// of a category that needs consent, a category that may not be in
	// scope at all; Prebid.js's transmitUfpd rule). Default: the
	// opt_out_denies purposes.
	SensitiveDataDenies []string `yaml:"sensitive_data_denies"`
	// StrictDecoding: a GPP US section holding a reserved two-bit value
	// (3) or an unknown version is invalid; the IAB's decoders read them.
	// Default: true.
	StrictDecoding *bool `yaml:"strict_decoding"`
}

// ReasonInvalidConsentString: a consent signal (TC, GPP, US Privacy string,
// Segment, RudderStack or Consent Mode object) that cannot be read or is
// invalid under the policy; the error names the signal and its path.
const ReasonInvalidConsentString = "invalid_consent_string"

// MinTCFPolicyVersion is the default oldest TCF policy accepted (v2.2).
const MinTCFPolicyVersion = 4

// DefaultDisclosedVendorsRequiredFrom is when TCF v2.3 made the Disclosed
// Vendors segment mandatory.
const DefaultDisclosedVendorsRequiredFrom = "2026-02-28"

// tcfNoLI lists the TCF purposes that may not rest on legitimate interest
// (TCF Policies v4: purpose 1, and 3 to 6).
var tcfNoLI = []int{1, 3, 4, 5, 6}

type iabPolicy struct {
	vendor          int
	tcfPaths        []event.Path
	tcfPurposes     map[string][]int
	li, flex        []int
	p1Allow         bool // tcf_purpose_one_treatment: allow
	minVersion      int
	serviceSpecific bool
	dvFrom          time.Time // zero: never required
	geo             *roundGeo
	gppPaths        []event.Path
	gppSIDPaths     []event.Path
	gppIgnoreOther  bool
	uspPaths        []event.Path
	optOutDenies    []string
	sensitiveDenies []string
	strict          bool
}

func compileIAB(s *IABSpec, purposes map[string]bool, exactPaths func(string, []string, ...string) []event.Path, fail func(string, ...any)) *iabPolicy {
	if s == nil {
		return nil
	}
	ip := &iabPolicy{vendor: s.VendorID, tcfPurposes: s.TCFPurposes, li: s.TCFLegitimateInterest, flex: s.TCFFlexiblePurposes, optOutDenies: s.OptOutDenies}
	if len(s.TCFPurposes) > 0 && s.VendorID <= 0 {
		fail("iab.vendor_id: required (a positive TCF vendor id) with tcf_purposes")
	}
	for pu, ids := range s.TCFPurposes {
		if !purposes[pu] {
			fail("iab.tcf_purposes: unknown purpose %q", pu)
		}
		for _, id := range ids {
			if id < 1 || id > 24 {
				fail("iab.tcf_purposes: %s: TCF purpose %d out of range 1..24", pu, id)
			}
		}
	}
	for field, list := range map[string][]int{"tcf_legitimate_interest": s.TCFLegitimateInterest, "tcf_flexible_purposes": s.TCFFlexiblePurposes} {
		for _, id := range list {
			if id < 1 || id > 24 {
				fail("iab.%s: TCF purpose %d out of range 1..24", field, id)
			} else if slices.Contains(tcfNoLI, id) {
				fail("iab.%s: TCF purpose %d may not rest on legitimate interest (TCF Policies: purposes 1 and 3 to 6 need consent)", field, id)
			}
		}
	}
	for _, pu := range s.OptOutDenies {
		if !purposes[pu] {
			fail("iab.opt_out_denies: unknown purpose %q", pu)
		}
	}
	ip.sensitiveDenies = s.SensitiveDataDenies
	if ip.sensitiveDenies == nil {
		ip.sensitiveDenies = s.OptOutDenies
	}
	for _, pu := range s.SensitiveDataDenies {
		if !purposes[pu] {
			fail("iab.sensitive_data_denies: unknown purpose %q", pu)
		}
	}
	ip.minVersion = intOr(s.MinTCFPolicyVersion, MinTCFPolicyVersion)
	if ip.minVersion < 2 || ip.minVersion > 63 {
		fail("iab.min_tcf_policy_version: %d: want 2..63", ip.minVersion)
	}
	ip.serviceSpecific = s.RequireServiceSpecific == nil || *s.RequireServiceSpecific
	ip.strict = s.StrictDecoding == nil || *s.StrictDecoding
	switch dv := s.DisclosedVendorsRequiredFrom; dv {
	case "never":
	default:
		if dv == "" {
			dv = DefaultDisclosedVendorsRequiredFrom
		}
		t, err := time.Parse(time.DateOnly, dv)
		if err != nil {
			fail("iab.disclosed_vendors_required_from: %q: want YYYY-MM-DD or never", dv)
		}
		ip.dvFrom = t
	}
	switch s.TCFPurposeOneTreatment {
	case "", "deny":
	case "allow":
		ip.p1Allow = true
	default:
		fail("iab.tcf_purpose_one_treatment: %q: want deny or allow", s.TCFPurposeOneTreatment)
	}
	switch s.GPPUnsupportedSections {
	case "", "reject":
	case "ignore":
		ip.gppIgnoreOther = true
	default:
		fail("iab.gpp_unsupported_sections: %q: want reject or ignore", s.GPPUnsupportedSections)
	}
	dec := intOr(s.PreciseGeoDecimals, 2)
	if dec < 0 || dec > 6 {
		fail("iab.precise_geo_decimals: %d: want 0..6", dec)
	}
	ip.geo = &roundGeo{fields: newFields([]event.Path{event.MustPath("context.location.latitude"), event.MustPath("context.location.longitude")}), decimals: dec}
	ip.tcfPaths = exactPaths("iab.tcf_paths", s.TCFPaths, "context.tcString", "context.gdpr_consent")
	ip.gppPaths = exactPaths("iab.gpp_paths", s.GPPPaths, "context.gppString")
	ip.gppSIDPaths = exactPaths("iab.gpp_sid_paths", s.GPPSIDPaths, "context.gpp_sid")
	ip.uspPaths = exactPaths("iab.usp_paths", s.USPPaths, "context.us_privacy")
	return ip
}

// eachString calls fn with every non-empty string at one of paths, and
// its path. A non-string value is an unreadable signal.
func eachString(doc *event.Doc, paths []event.Path, signal string, fn func(s, path string) error) error {
	for _, p := range paths {
		if !doc.MayHaveKey(p[len(p)-1]) {
			continue
		}
		v, ok, err := doc.Get(p)
		if err != nil {
			return inputErr(err)
		}
		if !ok || v.Kind == event.Null {
			continue
		}
		if v.Kind != event.String {
			return invalidConsentString("%s at %s: not a string", signal, p)
		}
		if s := v.Str(); s != "" {
			if err := fn(s, p.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

func invalidConsentString(format string, a ...any) error {
	return &InputError{Reason: ReasonInvalidConsentString, Err: fmt.Errorf(format, a...)}
}

// signalSink receives what the event's signals say.
type signalSink struct {
	// withhold records each signal found, and the purposes it denies,
	// in d.
	p *Policy
	d *Decision
	// coarseGeo is set when a TC string withholds special feature 1.
	coarseGeo bool
	// optedIn: a US Privacy string or GPP US section explicitly records
	// "did not opt out"; gpc: a GPP GPC subsection is set.
	optedIn, gpc bool
}

// signals applies the IAB strings an event carries.
func (ip *iabPolicy) signals(doc *event.Doc, sink *signalSink) error {
	err := eachString(doc, ip.tcfPaths, "TC string", func(s, path string) error {
		c, err := ip.parseTC(s)
		if err != nil {
			return invalidConsentString("TC string at %s: %v", path, err)
		}
		return ip.applyTCF(c, "tcf", "TC string at "+path, sink)
	})
	if err != nil {
		return err
	}
	err = eachString(doc, ip.uspPaths, "US Privacy string", func(s, path string) error {
		return ip.applyUSP(s, "usp", "US Privacy string at "+path, sink)
	})
	if err != nil {
		return err
	}
	var sids []int
	var haveSID bool
	for _, p := range ip.gppSIDPaths {
		if !doc.MayHaveKey(p[len(p)-1]) {
			continue
		}
		v, ok, err := doc.Get(p)
		if err != nil {
			return inputErr(err)
		}
		if !ok || v.Kind == event.Null {
			continue
		}
		ids, err := parseGPPSID(v)
		if err != nil {
			return invalidConsentString("GPP applicable sections at %s: %v", p, err)
		}
		haveSID = true
		sids = append(sids, ids...)
	}
	return eachString(doc, ip.gppPaths, "GPP string", func(s, path string) error {
		return ip.applyGPP(s, path, haveSID, sids, sink)
	})
}

// tcLIBits is the offset of the legitimate-interest bit of TCF purpose 1
// in the core segment of a TC string.
const tcLIBits = 6 + 36 + 36 + 12 + 12 + 6 + 12 + 12 + 6 + 1 + 1 + 12 + 24

// parseTC decodes a TC string. Since TCF v2.2 the legitimate-interest bits
// of purposes 3 to 6 must be 0 and the decoder refuses a string that sets
// them; without strict decoding they are read as 0, as the IAB's decoder
// ignores them (legitimate interest never establishes those purposes).
func (ip *iabPolicy) parseTC(s string) (*iabconsent.V2ParsedConsent, error) {
	if !ip.strict {
		core, rest, _ := strings.Cut(s, ".")
		if b, n, err := decodeBits(core); err == nil && n >= tcLIBits+6 {
			for p := 3; p <= 6; p++ {
				bit := tcLIBits + p - 1
				b[bit/8] &^= 0x80 >> (bit % 8)
			}
			enc := base64.RawURLEncoding.EncodeToString(b)[:len(core)]
			if rest != "" {
				enc += "." + rest
			}
			s = enc
		}
	}
	return iabconsent.ParseV2(s)
}

// applyTCF decides a parsed TC string (from a TCF path or a GPP section).
func (ip *iabPolicy) applyTCF(c *iabconsent.V2ParsedConsent, signal, where string, sink *signalSink) error {
	if c.CMPID < 2 {
		// CMP ids 0 and 1 are never assigned; the IAB's decoder
		// (iabtcf-es) refuses such strings.
		return invalidConsentString("%s: CMP id %d is not a registered CMP", where, c.CMPID)
	}
	if c.TCFPolicyVersion < ip.minVersion {
		return invalidConsentString("%s: TCF policy version %d is below %d", where, c.TCFPolicyVersion, ip.minVersion)
	}
	if ip.serviceSpecific && !c.IsServiceSpecific {
		return invalidConsentString("%s: not service-specific (IsServiceSpecific=0)", where)
	}
	if c.OOBDisclosedVendors == nil && !ip.dvFrom.IsZero() && !c.LastUpdated.Before(ip.dvFrom) {
		return invalidConsentString("%s: no Disclosed Vendors segment (required since %s)", where, ip.dvFrom.Format(time.DateOnly))
	}
	disclosed := c.OOBDisclosedVendors == nil || vendorIn(ip.vendor, c.OOBDisclosedVendors.Vendors, c.OOBDisclosedVendors.IsRangeEncoding, c.OOBDisclosedVendors.VendorEntries)
	vendorConsent := c.VendorAllowed(ip.vendor)
	vendorLI := vendorIn(ip.vendor, c.InterestsVendors, c.IsInterestsRangeEncoding, c.InterestsVendorsRange)
	allowed := map[int]bool{}
	for _, ids := range ip.tcfPurposes {
		for _, id := range ids {
			allowed[id] = disclosed && (ip.tcfPurposeAllowed(c, id, vendorConsent, vendorLI) ||
				id == 1 && c.PurposeOneTreatment && ip.p1Allow)
		}
	}
	sink.withhold(signal, func(pu string) bool {
		for _, id := range ip.tcfPurposes[pu] {
			if !allowed[id] {
				return false
			}
		}
		return true
	})
	if !c.SpecialFeaturesOptIn[1] {
		sink.coarseGeo = true
	}
	return nil
}

// tcfPurposeAllowed is the legal-basis check of the TCF Implementation
// Guidelines as prebid-server's full enforcement applies it: a publisher
// restriction of type 0 forbids the purpose, type 1 requires consent, type
// 2 legitimate interest; otherwise the vendor's declared basis decides
// (flexible purposes: either).
func (ip *iabPolicy) tcfPurposeAllowed(c *iabconsent.V2ParsedConsent, id int, vendorConsent, vendorLI bool) bool {
	flex := slices.Contains(ip.flex, id)
	declLI := slices.Contains(ip.li, id)
	declConsent := !declLI || flex
	consentOK := (declConsent || flex) && c.PurposesConsent[id] && vendorConsent
	liOK := (declLI || flex) && !slices.Contains(tcfNoLI, id) && c.PurposesLITransparency[id] && vendorLI
	restriction := -1
	for _, r := range c.PubRestrictionEntries {
		if r.PurposeID == id && vendorIn(ip.vendor, nil, true, r.RestrictionsRange) {
			if restriction == -1 || int(r.RestrictionType) == int(iabconsent.PurposeFlatlyNotAllowed) {
				restriction = int(r.RestrictionType)
			}
		}
	}
	switch restriction {
	case int(iabconsent.PurposeFlatlyNotAllowed):
		return false
	case int(iabconsent.RequireConsent):
		return consentOK
	case int(iabconsent.RequireLegitimateInterest):
		return liOK
	}
	return consentOK || liOK
}

func vendorIn(v int, bits map[int]bool, isRange bool, ranges []*iabconsent.RangeEntry) bool {
	if !isRange {
		return bits[v]
	}
	for _, r := range ranges {
		if v >= r.StartVendorID && v <= r.EndVendorID {
			return true
		}
	}
	return false
}

// applyUSP decides a US Privacy string: version 1 then three characters,
// each Y, N or - (upper case). The third says whether the user opted out
// of sale.
func (ip *iabPolicy) applyUSP(s, signal, where string, sink *signalSink) error {
	if len(s) != 4 || s[0] != '1' || strings.Trim(s[1:], "YN-") != "" {
		return invalidConsentString("%s: not version 1 with Y, N or - flags", where)
	}
	switch s[2] {
	case 'Y':
		sink.withhold(signal, ip.optOut)
	case 'N':
		sink.optedIn = true
		sink.withhold(signal, allowAll)
	default:
		sink.withhold(signal, allowAll)
	}
	return nil
}

func allowAll(string) bool { return true }

func (ip *iabPolicy) optOut(pu string) bool { return !slices.Contains(ip.optOutDenies, pu) }

func (ip *iabPolicy) sensitiveOK(pu string) bool { return !slices.Contains(ip.sensitiveDenies, pu) }

// parseGPPSID reads gpp_sid: an array of integers, or a string of
// integers separated by ',' or '_'.
func parseGPPSID(v event.Value) ([]int, error) {
	var parts []string
	switch v.Kind {
	case event.Array:
		raw := strings.TrimSpace(string(v.Raw))
		raw = strings.TrimSpace(raw[1 : len(raw)-1])
		if raw != "" {
			parts = strings.Split(raw, ",")
		}
	case event.String:
		s := strings.TrimSpace(v.Str())
		if s != "" {
			parts = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '_' })
		}
	case event.Number:
		parts = []string{string(v.Raw)}
	default:
		return nil, fmt.Errorf("want an array of section ids or a string")
	}
	ids := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%q is not a section id", strings.TrimSpace(p))
		}
		ids = append(ids, n)
	}
	return ids, nil
}
