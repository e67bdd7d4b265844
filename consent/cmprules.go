package consent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// This file holds the one implementation of the CMP consent rules shared by
// event-carried consent (package policy) and consent-topic records (package
// consent/ingest), so that both decide a category or consent id exactly as
// the tracker that defined it does.

// CMPOptions are the documented choices where consentd may deliberately
// differ from a CMP's own rule. The zero value follows the references
// (Segment's consent documentation, rudder-server's consent filter).
type CMPOptions struct {
	// RudderRequireAllowed makes a RudderStack purpose also require its
	// consent ids in allowedConsentIds ("and": every mapped id, "or": at
	// least one). rudder-server decides on deniedConsentIds only, so an
	// event carrying neither list allows everything. Default false (as
	// rudder-server).
	RudderRequireAllowed bool
	// RudderStrategies fixes the resolution strategy ("and" or "or") per
	// provider, where rudder-server takes it from the destination rather
	// than from the event: provider "custom" (the destination's
	// consentManagement strategy; "and" when not listed here), legacy
	// oneTrustCookieCategories ("and") and ketchConsentPurposes ("or")
	// under provider "", "oneTrust" or "ketch". Providers not listed use
	// the event's resolutionStrategy.
	RudderStrategies map[string]string
}

// Validate checks the options.
func (o CMPOptions) Validate() error {
	for p, s := range o.RudderStrategies {
		if s != "and" && s != "or" {
			return fmt.Errorf("rudderstack resolution strategy %q for provider %q: want and or or", s, p)
		}
	}
	return nil
}

// CMPDecision is what one CMP signal says about every purpose.
type CMPDecision struct {
	// Granted holds, for every purpose the signal decides (a purpose at
	// least one category or consent id maps to), whether it is granted.
	Granted map[string]bool
	// Unmapped lists, in policy order, the purposes no category maps to:
	// the signal says nothing about them (Segment and RudderStack do not
	// gate destinations without a category).
	Unmapped []string
}

// Allows reports whether the signal lets purpose through: granted, or not
// decided by the signal at all.
func (d CMPDecision) Allows(purpose string) bool {
	g, decided := d.Granted[purpose]
	return g || !decided
}

// mappedIDs returns, per purpose, the categories (consent ids) mapping to
// it, sorted.
func mappedIDs(categories map[string]string, purpose string) []string {
	var ids []string
	for c, p := range categories {
		if p == purpose {
			ids = append(ids, c)
		}
	}
	slices.Sort(ids)
	return ids
}

// SegmentPurposes applies Segment's consent rule to categoryPreferences:
// a purpose (Segment: a destination) mapped to categories is granted only
// when every one of them is true; a mapped category missing from the
// preferences counts as false (an empty object denies every mapped
// purpose); a purpose no category maps to is not decided. Preferences for
// categories that map to no purpose are ignored.
func SegmentPurposes(prefs map[string]bool, categories map[string]string, purposes []string) CMPDecision {
	d := CMPDecision{Granted: make(map[string]bool, len(purposes))}
	for _, p := range purposes {
		ids := mappedIDs(categories, p)
		if len(ids) == 0 {
			d.Unmapped = append(d.Unmapped, p)
			continue
		}
		ok := true
		for _, id := range ids {
			ok = ok && prefs[id]
		}
		d.Granted[p] = ok
	}
	return d
}

// RudderConsent is RudderStack's context.consentManagement.
type RudderConsent struct {
	Provider           string
	ResolutionStrategy string
	// Denied holds deniedConsentIds (empty strings dropped, as
	// rudder-server does).
	Denied []string
	// Allowed holds allowedConsentIds: the array's strings, or the keys of
	// the object form some SDKs send.
	Allowed []string
}

// ErrInvalidCMPConsent reports a consent object whose fields have the wrong
// JSON type.
var ErrInvalidCMPConsent = errors.New("invalid consent object")

// ParseRudderConsent reads a consentManagement object. deniedConsentIds
// must be an array of strings; allowedConsentIds may be an array of strings
// or an object (its keys are the ids); resolutionStrategy and provider must
// be strings. rudder-server ignores a malformed object (nothing is
// filtered); consentd rejects it (see the README).
func ParseRudderConsent(raw []byte) (RudderConsent, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return RudderConsent{}, fmt.Errorf("%w: consentManagement must be an object", ErrInvalidCMPConsent)
	}
	var rc RudderConsent
	str := func(k string, dst *string) error {
		v, ok := m[k]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: consentManagement.%s must be a string", ErrInvalidCMPConsent, k)
		}
		return nil
	}
	if err := str("provider", &rc.Provider); err != nil {
		return rc, err
	}
	if err := str("resolutionStrategy", &rc.ResolutionStrategy); err != nil {
		return rc, err
	}
	if v, ok := m["deniedConsentIds"]; ok && string(v) != "null" {
		var ids []string
		if err := json.Unmarshal(v, &ids); err != nil {
			return rc, fmt.Errorf("%w: consentManagement.deniedConsentIds must be an array of strings", ErrInvalidCMPConsent)
		}
		for _, id := range ids {
			if id != "" {
				rc.Denied = append(rc.Denied, id)
			}
		}
	}
	if v, ok := m["allowedConsentIds"]; ok && string(v) != "null" {
		var ids []string
		if err := json.Unmarshal(v, &ids); err != nil {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(v, &obj); err != nil {
				return rc, fmt.Errorf("%w: consentManagement.allowedConsentIds must be an array of strings or an object", ErrInvalidCMPConsent)
			}
			for id := range obj {
				ids = append(ids, id)
			}
			slices.Sort(ids)
		}
		for _, id := range ids {
			if id != "" {
				rc.Allowed = append(rc.Allowed, id)
			}
		}
	}
	return rc, nil
}

// Strategy returns the resolution strategy rudder-server applies: the one
// opts fixes for the provider, else "and" for provider "custom", else the
// event's; "or" only when it says so, "and" otherwise (rudder-server's
// default branch).
func (rc RudderConsent) Strategy(opts CMPOptions) string {
	s, fixed := opts.RudderStrategies[rc.Provider]
	if !fixed {
		s = rc.ResolutionStrategy
		if rc.Provider == "custom" {
			s = "and"
		}
	}
	if s == "or" {
		return "or"
	}
	return "and"
}

// RudderPurposes applies rudder-server's consent filter: a purpose (a
// destination) mapped to consent ids is withheld, with strategy "and",
// when any of its ids is in deniedConsentIds, and with "or" when all of
// them are. A purpose no id maps to is not decided. With
// opts.RudderRequireAllowed the ids must also be in allowedConsentIds
// (all of them for "and", one for "or").
func RudderPurposes(rc RudderConsent, categories map[string]string, purposes []string, opts CMPOptions) CMPDecision {
	d := CMPDecision{Granted: make(map[string]bool, len(purposes))}
	or := rc.Strategy(opts) == "or"
	for _, p := range purposes {
		ids := mappedIDs(categories, p)
		if len(ids) == 0 {
			d.Unmapped = append(d.Unmapped, p)
			continue
		}
		denied, allowed := 0, 0 // allowed: allowed and not denied
		for _, id := range ids {
			if slices.Contains(rc.Denied, id) {
				denied++
			} else if slices.Contains(rc.Allowed, id) {
				allowed++
			}
		}
		var ok bool
		if or {
			ok = denied < len(ids)
			if opts.RudderRequireAllowed {
				ok = ok && allowed > 0
			}
		} else {
			ok = denied == 0
			if opts.RudderRequireAllowed {
				ok = ok && allowed == len(ids)
			}
		}
		d.Granted[p] = ok
	}
	return d
}
