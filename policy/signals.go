package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
)

// SignalsSpec holds the documented options where consentd deliberately
// differs from a signal's reference implementation, and the Google Consent
// Mode mapping. Every field is optional.
type SignalsSpec struct {
	// RudderStackRequireAllowed: a purpose fed by RudderStack consent ids
	// also needs them in allowedConsentIds ("and": all, "or": one).
	// rudder-server decides on deniedConsentIds only. Default: false.
	RudderStackRequireAllowed bool `yaml:"rudderstack_require_allowed"`
	// RudderStackStrategies fixes the resolution strategy (and, or) per
	// RudderStack provider, as rudder-server reads it from the
	// destination's configuration for provider "custom" and for legacy
	// OneTrust ("and") and Ketch ("or") destinations. Providers not listed
	// use the event's resolutionStrategy, except custom: and.
	// Default: none.
	RudderStackStrategies map[string]string `yaml:"rudderstack_strategies"`
	// InvalidRudderStack: what a malformed context.consentManagement does
	// to an event: "reject" (dead-lettered, invalid_consent_string) or
	// "ignore" (as rudder-server: no consent id is denied). Consent-topic
	// records are always rejected. Default: reject.
	InvalidRudderStack string `yaml:"invalid_rudderstack"`
	// GPCOverridesOptIn: a Global Privacy Control signal (gpc_paths, or a
	// GPP GPC subsection) denies even when a US Privacy string or GPP US
	// section on the same event records that the user did not opt out, as
	// California requires. false ignores GPC on such events. Default: true.
	GPCOverridesOptIn *bool `yaml:"gpc_overrides_opt_in"`
	// ConsentModePaths hold Google Consent Mode v2 objects
	// ({"ad_storage":"granted","analytics_storage":"denied",...}).
	// Default: [context.consent_mode] when ConsentMode is set.
	ConsentModePaths []string `yaml:"consent_mode_paths"`
	// ConsentMode maps a purpose to the Consent Mode types (ad_storage,
	// analytics_storage, ad_user_data, ad_personalization) that must all
	// be "granted"; a type the object omits counts as denied. Purposes not
	// listed are not restricted by Consent Mode. Default: none (not read).
	ConsentMode map[string][]string `yaml:"consent_mode"`
}

// ConsentModeTypes are the Google Consent Mode v2 types consentd reads.
var ConsentModeTypes = []string{"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"}

type signalPolicy struct {
	gpcOverrides    bool
	ignoreBadRudder bool
	gcmPaths        []event.Path
	gcm             map[string][]string
}

func compileSignals(s *SignalsSpec, purposes map[string]bool, exactPaths func(string, []string, ...string) []event.Path, fail func(string, ...any)) (*signalPolicy, consent.CMPOptions) {
	sp := &signalPolicy{gpcOverrides: true}
	if s == nil {
		return sp, consent.CMPOptions{}
	}
	opts := consent.CMPOptions{RudderRequireAllowed: s.RudderStackRequireAllowed, RudderStrategies: s.RudderStackStrategies}
	if err := opts.Validate(); err != nil {
		fail("signals.rudderstack_strategies: %v", err)
	}
	switch s.InvalidRudderStack {
	case "", "reject":
	case "ignore":
		sp.ignoreBadRudder = true
	default:
		fail("signals.invalid_rudderstack: %q: want reject or ignore", s.InvalidRudderStack)
	}
	if s.GPCOverridesOptIn != nil {
		sp.gpcOverrides = *s.GPCOverridesOptIn
	}
	for pu, types := range s.ConsentMode {
		if !purposes[pu] {
			fail("signals.consent_mode: unknown purpose %q", pu)
		}
		for _, t := range types {
			if !slices.Contains(ConsentModeTypes, t) {
				fail("signals.consent_mode: %s: unknown Consent Mode type %q (want one of %v)", pu, t, ConsentModeTypes)
			}
		}
	}
	if len(s.ConsentMode) > 0 {
		sp.gcm = s.ConsentMode
		sp.gcmPaths = exactPaths("signals.consent_mode_paths", s.ConsentModePaths, "context.consent_mode")
	}
	return sp, opts
}

var (
	pathSegmentConsent = event.MustPath("context.consent.categoryPreferences")
	pathRudderConsent  = event.MustPath("context.consentManagement")
)

// eventConsent records in sink.d the purposes the event's own consent signals
// deny. A purpose must be granted by both the stored record and every
// signal the event carries (strictest wins). An unreadable or invalid
// signal is an *InputError with reason invalid_consent_string.
func (p *Policy) eventConsent(doc *event.Doc, sink *signalSink) error {
	d := sink.d
	if len(p.ConsentCategories) > 0 && doc.MayHaveKey("categoryPreferences") {
		if err := p.segmentConsent(doc, sink); err != nil {
			return err
		}
	}
	if len(p.ConsentCategories) > 0 && doc.MayHaveKey("consentManagement") {
		if err := p.rudderConsent(doc, sink); err != nil {
			return err
		}
	}
	if p.iab != nil {
		if err := p.iab.signals(doc, sink); err != nil {
			return err
		}
		if sink.coarseGeo {
			d.coarseGeo = p.iab.geo
		}
	}
	sig := p.signals
	if sig == nil {
		sig = &signalPolicy{gpcOverrides: true}
	}
	if err := sig.consentMode(doc, sink); err != nil {
		return err
	}
	gpcHonoured := sig.gpcOverrides || !sink.optedIn
	if sink.gpc && gpcHonoured && p.iab != nil {
		sink.withhold("gpp", p.iab.optOut)
	}
	for _, gp := range p.GPCPaths {
		if !doc.MayHaveKey(gp[len(gp)-1]) {
			continue
		}
		v, ok, err := doc.Get(gp)
		if err != nil {
			return inputErr(err)
		}
		// GPC specification: the Sec-GPC field value is exactly "1"
		// (any other value counts as no signal), navigator.globalPrivacyControl
		// is true.
		if ok && (string(v.Raw) == "true" || string(v.Raw) == "1" || (v.Kind == event.String && v.Str() == "1")) {
			if !gpcHonoured {
				sink.withhold("gpc", allowAll)
				continue
			}
			sink.withhold("gpc", func(pu string) bool { return !slices.Contains(p.GPCDenies, pu) })
		}
	}
	return nil
}

// segmentConsent applies context.consent.categoryPreferences.
func (p *Policy) segmentConsent(doc *event.Doc, sink *signalSink) error {
	prefs := map[string]bool{}
	found, err := doc.EachMember(pathSegmentConsent, func(k string, v event.Value) error {
		if v.Kind != event.Bool {
			return fmt.Errorf("%w: segment categoryPreferences.%s: want true or false", consent.ErrInvalidCMPConsent, k)
		}
		prefs[k] = v.Raw[0] == 't'
		return nil
	})
	if err != nil {
		return signalErr(err)
	}
	if found {
		sink.withhold("segment", consent.SegmentPurposes(prefs, p.ConsentCategories, p.Purposes).Allows)
	}
	return nil
}

// rudderConsent applies context.consentManagement.
func (p *Policy) rudderConsent(doc *event.Doc, sink *signalSink) error {
	v, found, err := doc.Get(pathRudderConsent)
	if err != nil {
		return inputErr(err)
	}
	if !found || v.Kind == event.Null {
		return nil
	}
	rc, err := consent.ParseRudderConsent(v.Raw)
	if err != nil {
		if p.signals != nil && p.signals.ignoreBadRudder {
			sink.withhold("rudderstack", allowAll)
			return nil
		}
		return invalidConsentString("rudderstack at %s: %v", pathRudderConsent, err)
	}
	sink.withhold("rudderstack", consent.RudderPurposes(rc, p.ConsentCategories, p.Purposes, p.CMP).Allows)
	return nil
}

// consentMode applies Google Consent Mode v2 objects.
func (sp *signalPolicy) consentMode(doc *event.Doc, sink *signalSink) error {
	for _, path := range sp.gcmPaths {
		if !doc.MayHaveKey(path[len(path)-1]) {
			continue
		}
		state := map[string]bool{}
		found, err := doc.EachMember(path, func(k string, v event.Value) error {
			if !slices.Contains(ConsentModeTypes, k) {
				return nil
			}
			switch {
			case v.Kind == event.String && v.Str() == "granted":
				state[k] = true
			case v.Kind == event.String && v.Str() == "denied":
			default:
				return fmt.Errorf("%w: consent mode %s at %s: want \"granted\" or \"denied\"", consent.ErrInvalidCMPConsent, k, path)
			}
			return nil
		})
		if err != nil {
			return signalErr(err)
		}
		if found {
			sink.withhold("consent_mode", func(pu string) bool {
				for _, t := range sp.gcm[pu] {
					if !state[t] {
						return false
					}
				}
				return true
			})
		}
	}
	return nil
}

// signalErr classifies an error met while reading a consent object: a
// wrong-typed member is an invalid consent signal, anything else an input
// error as usual.
func signalErr(err error) error {
	if errors.Is(err, consent.ErrInvalidCMPConsent) || errors.Is(err, event.ErrWrongType) {
		return &InputError{Reason: ReasonInvalidConsentString, Err: err}
	}
	return inputErr(err)
}

// withhold records a signal found on the event and the purposes it lets
// through: the others are denied whatever the stored record says.
func (s *signalSink) withhold(signal string, allows func(purpose string) bool) {
	d := s.d
	if !slices.Contains(d.EventSignals, signal) {
		d.EventSignals = append(d.EventSignals, signal)
	}
	for _, pu := range s.p.Purposes {
		if !allows(pu) && !slices.Contains(d.EventDenied, pu) {
			d.EventDenied = append(d.EventDenied, pu)
		}
	}
}

// CoarseGeo reports whether a TC string on the event withholds special
// feature 1 (precise geolocation), so that coordinates are rounded in
// every output.
func (d *Decision) CoarseGeo() bool { return d.coarseGeo != nil }
