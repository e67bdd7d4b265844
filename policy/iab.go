package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/LiveRamp/iabconsent"

	"github.com/consentd/consentd/event"
)

// IABSpec maps IAB consent signals carried by events to purposes. Every
// signal an event carries must grant a purpose too (strictest wins).
type IABSpec struct {
	// VendorID is the TCF vendor consentd processes for: the TC string must
	// give this vendor consent (or, for legitimate-interest purposes,
	// legitimate interest). Required when TCFPurposes is set.
	VendorID int `yaml:"vendor_id"`
	// TCFPaths hold TC strings. Default: [context.tcString, context.gdpr_consent].
	TCFPaths []string `yaml:"tcf_paths"`
	// TCFPurposes maps a purpose to the TCF purposes (1..11) that must all
	// be allowed. Purposes not listed are not restricted by the TC string.
	TCFPurposes map[string][]int `yaml:"tcf_purposes"`
	// TCFLegitimateInterest lists TCF purposes that may rest on legitimate
	// interest instead of consent. Default: none.
	TCFLegitimateInterest []int `yaml:"tcf_legitimate_interest"`
	// PreciseGeoDecimals: when a TC string does not opt in to special
	// feature 1 (precise geolocation), coordinates are rounded to this many
	// decimals in every output. Default: 2.
	PreciseGeoDecimals *int `yaml:"precise_geo_decimals"`
	// GPPPaths hold GPP strings (usnat and state sections). Default: [context.gppString].
	GPPPaths []string `yaml:"gpp_paths"`
	// USPPaths hold US Privacy strings ("1YNN"). Default: [context.us_privacy].
	USPPaths []string `yaml:"usp_paths"`
	// OptOutDenies lists the purposes an opt-out of sale, sharing or
	// targeted advertising (GPP, its GPC subsection, US Privacy) denies.
	OptOutDenies []string `yaml:"opt_out_denies"`
}

// ReasonInvalidConsentString: a TC, GPP or US Privacy string that cannot
// be read, or a TC string with a TCF policy version below 4.
const ReasonInvalidConsentString = "invalid_consent_string"

// MinTCFPolicyVersion is the oldest TCF policy accepted (TCF v2.2).
const MinTCFPolicyVersion = 4

type iabPolicy struct {
	vendor       int
	tcfPaths     []event.Path
	tcfPurposes  map[string][]int
	li           []int
	geo          *roundGeo
	gppPaths     []event.Path
	uspPaths     []event.Path
	optOutDenies []string
}

func compileIAB(s *IABSpec, purposes map[string]bool, exactPaths func(string, []string, ...string) []event.Path, fail func(string, ...any)) *iabPolicy {
	if s == nil {
		return nil
	}
	ip := &iabPolicy{vendor: s.VendorID, tcfPurposes: s.TCFPurposes, li: s.TCFLegitimateInterest, optOutDenies: s.OptOutDenies}
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
	for _, pu := range s.OptOutDenies {
		if !purposes[pu] {
			fail("iab.opt_out_denies: unknown purpose %q", pu)
		}
	}
	dec := intOr(s.PreciseGeoDecimals, 2)
	if dec < 0 || dec > 6 {
		fail("iab.precise_geo_decimals: %d: want 0..6", dec)
	}
	ip.geo = &roundGeo{fields: newFields([]event.Path{event.MustPath("context.location.latitude"), event.MustPath("context.location.longitude")}), decimals: dec}
	ip.tcfPaths = exactPaths("iab.tcf_paths", s.TCFPaths, "context.tcString", "context.gdpr_consent")
	ip.gppPaths = exactPaths("iab.gpp_paths", s.GPPPaths, "context.gppString")
	ip.uspPaths = exactPaths("iab.usp_paths", s.USPPaths, "context.us_privacy")
	return ip
}

// firstString returns the first non-empty string at one of paths.
func firstString(doc *event.Doc, paths []event.Path) (string, error) {
	for _, p := range paths {
		if !doc.MayHaveKey(p[len(p)-1]) {
			continue
		}
		s, ok, err := doc.GetString(p)
		if err != nil {
			return "", inputErr(err)
		}
		if ok && s != "" {
			return s, nil
		}
	}
	return "", nil
}

func invalidConsentString(format string, a ...any) error {
	return &InputError{Reason: ReasonInvalidConsentString, Err: fmt.Errorf(format, a...)}
}

// signals applies the IAB strings an event carries to d.
func (ip *iabPolicy) signals(doc *event.Doc, purposes []string, d *Decision, deny func(string, map[string]bool)) error {
	optOut := func(signal string) {
		granted := map[string]bool{}
		for _, pu := range purposes {
			granted[pu] = !slices.Contains(ip.optOutDenies, pu)
		}
		deny(signal, granted)
	}
	tc, err := firstString(doc, ip.tcfPaths)
	if err != nil {
		return err
	}
	if tc != "" {
		c, err := iabconsent.ParseV2(tc)
		if err != nil {
			return invalidConsentString("TC string: %v", err)
		}
		if c.TCFPolicyVersion < MinTCFPolicyVersion {
			return invalidConsentString("TC string has TCF policy version %d, below %d", c.TCFPolicyVersion, MinTCFPolicyVersion)
		}
		vendorConsent := c.VendorAllowed(ip.vendor)
		vendorLI := vendorInterest(c, ip.vendor)
		granted := map[string]bool{}
		for _, pu := range purposes {
			ids, mapped := ip.tcfPurposes[pu]
			ok := true
			for _, id := range ids {
				viaConsent := vendorConsent && c.PurposesConsent[id]
				viaLI := vendorLI && slices.Contains(ip.li, id) && c.PurposesLITransparency[id]
				ok = ok && (viaConsent || viaLI)
			}
			granted[pu] = !mapped || ok
		}
		deny("tcf", granted)
		if !c.SpecialFeaturesOptIn[1] {
			d.coarseGeo = ip.geo
		}
	}
	usp, err := firstString(doc, ip.uspPaths)
	if err != nil {
		return err
	}
	if usp != "" {
		u := strings.ToUpper(usp)
		if len(u) != 4 || u[0] != '1' || strings.Trim(u[1:], "YN-") != "" {
			return invalidConsentString("US Privacy string is not version 1 with Y, N or - flags")
		}
		if u[2] == 'Y' {
			optOut("usp")
		}
	}
	gpp, err := firstString(doc, ip.gppPaths)
	if err != nil {
		return err
	}
	if gpp != "" {
		sections, err := iabconsent.ParseGppConsent(gpp)
		if err != nil {
			return invalidConsentString("GPP string: %v", err)
		}
		for _, sec := range sections {
			m, ok := sec.(*iabconsent.MspaParsedConsent)
			if !ok {
				continue
			}
			if m.SaleOptOut == iabconsent.OptedOut || m.SharingOptOut == iabconsent.OptedOut || m.TargetedAdvertisingOptOut == iabconsent.OptedOut || m.Gpc {
				optOut("gpp")
				break
			}
		}
	}
	return nil
}

func vendorInterest(c *iabconsent.V2ParsedConsent, v int) bool {
	if c.IsInterestsRangeEncoding {
		for _, r := range c.InterestsVendorsRange {
			if v >= r.StartVendorID && v <= r.EndVendorID {
				return true
			}
		}
		return false
	}
	return c.InterestsVendors[v]
}
