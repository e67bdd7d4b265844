// Package policy turns a declarative policy file into decisions: for one
// event and one subject's consent, which clean outputs receive the event and
// what each of them receives.
//
// The package is pure: no Kafka, no Redis, no clock. Decider.DecideAt is
// given the parsed event, the consent record and the times it decides at,
// and returns a Decision that records the policy version, the consent
// version, and for every output whether it was written and which
// transform changed which field.
//
// Owns: the policy file, its compilation and every decision. Must not
// import Kafka, Redis, Prometheus or zap (no I/O, no logging).
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/consentd/consentd/internal/lib/yamlx"
)

// Spec is the policy file as written (configs/policy.yaml).
type Spec struct {
	// Version identifies this policy in every decision and on every clean
	// message (header consentd-policy-version). Required.
	Version string `yaml:"version"`
	// Purposes lists every purpose an output may require. Required.
	Purposes []string `yaml:"purposes"`
	// Subjects lists, in order, the paths where an event's subject id is
	// looked for; the first non-empty string wins.
	// Default: [userId, anonymousId].
	Subjects []string `yaml:"subjects"`
	// PseudonymKey is the key id used to pseudonymize the subject into the
	// clean message key, and by pseudonymize transforms that name no key.
	// Required.
	PseudonymKey string `yaml:"pseudonym_key"`
	// Pseudonymization configures how pseudonyms are derived.
	Pseudonymization PseudonymizationSpec `yaml:"pseudonymization"`
	// ConsentCategories maps CMP category names (Segment
	// categoryPreferences) and consent ids (RudderStack consentManagement)
	// to purposes, for consent records read from the consent topic. A
	// purpose is granted only when every category mapped to it is.
	// Default: none (only native records can grant).
	ConsentCategories map[string]string `yaml:"consent_categories"`
	// GPCPaths are where events record a Global Privacy Control signal
	// (Sec-GPC: 1); true there denies the GPCDenies purposes.
	// Default: [context.gpc].
	GPCPaths []string `yaml:"gpc_paths"`
	// GPCDenies lists the purposes a GPC signal opts out of (sale and
	// sharing, typically advertising). Default: none.
	GPCDenies []string `yaml:"gpc_denies"`
	// AllowPreConsentEvents lets a grant legitimize events collected
	// before it. When false, an event whose timestamp (or
	// originalTimestamp) is earlier than the purpose's grant time, or that
	// has no timestamp, is not written for that purpose (reason
	// pre_consent:<purpose>). Grant times are known for consent written by
	// consentd (consent topic, CLI, API). Default: false.
	AllowPreConsentEvents bool `yaml:"allow_pre_consent_events"`
	// MaxClockSkew is how far in the future (past the Kafka record time
	// of the raw event, and past the decision time) an event's own
	// timestamp may lie; a timestamp further ahead counts as missing for
	// the pre-consent rule. A Go duration. Default: 5m.
	MaxClockSkew string `yaml:"max_clock_skew"`
	// IAB maps IAB TCF, GPP and US Privacy strings carried by events to
	// purposes. Default: none (such strings are not read).
	IAB *IABSpec `yaml:"iab"`
	// RequireKeepOnly makes an output without a keep_only transform an
	// error. Without it, such an output is a warning (Policy.Warnings): a
	// deny-list passes whatever a tracker puts where the policy does not
	// look. Default: false.
	RequireKeepOnly bool `yaml:"require_keep_only"`
	// Signals holds the options of consent carried by events where
	// consentd deliberately differs from a reference, and Google Consent
	// Mode. Default: the references' behaviour, strict where documented.
	Signals *SignalsSpec `yaml:"signals"`
	// Outputs are the clean topics. At least one.
	Outputs []OutputSpec `yaml:"outputs"`
	// Segments measures how consent changes each output's mix of
	// segments (country, locale, event name...). Default: not measured.
	Segments *SegmentsSpec `yaml:"segments"`
}

// OutputSpec is one clean output.
type OutputSpec struct {
	// Name labels the output in metrics and decisions. Required, unique.
	Name string `yaml:"name"`
	// Topic is the clean Kafka topic. Required.
	Topic string `yaml:"topic"`
	// Require lists purposes that must all be granted. Required, non-empty:
	// an output without a purpose would bypass consent.
	Require []string `yaml:"require"`
	// When restricts the output to some event types/names. Default: all.
	When *FilterSpec `yaml:"when"`
	// Segments are this output's segment fields (see SegmentsSpec),
	// instead of segments.fields; [] measures none. Default:
	// segments.fields.
	Segments []string `yaml:"segments"`
	// Transforms run in order on the event before it is written.
	Transforms []TransformSpec `yaml:"transforms"`
	// Retention is how long the clean topic keeps this output's events:
	// the purpose's data-retention rule, as the topic's retention.ms
	// (consentd topics create sets it, topics check reports a topic that
	// differs). A Go duration, at least 1h; "" leaves the topic's own.
	// Default: "".
	Retention string `yaml:"retention"`

	// Kind is "" for a clean output, or "aggregate" for differentially
	// private counts of the events another output did not write (see
	// AggregateSpec; its fields below apply to aggregates only).
	// Default: "" (clean).
	Kind          string `yaml:"kind"`
	AggregateSpec `yaml:",inline"`
}

// FilterSpec selects events by their "type" and "event" fields. An empty
// list matches everything; both lists must match.
type FilterSpec struct {
	Type  []string `yaml:"type"`
	Event []string `yaml:"event"`
}

// TransformSpec is one transform; exactly one field is set.
type TransformSpec struct {
	// DropFields removes the listed paths ("*" matches any key at one level).
	DropFields []string `yaml:"drop_fields"`
	// KeepOnly removes everything not on or below the listed paths.
	KeepOnly []string `yaml:"keep_only"`
	// Pseudonymize replaces values with keyed HMAC-SHA256 pseudonyms.
	Pseudonymize *PseudonymizeSpec `yaml:"pseudonymize"`
	// TruncateIP zeroes the host bits of IP addresses.
	TruncateIP *TruncateIPSpec `yaml:"truncate_ip"`
	// RoundGeo rounds coordinates to a number of decimals.
	RoundGeo *RoundGeoSpec `yaml:"round_geo"`
	// TruncateTime truncates RFC 3339 timestamps to a minute, hour or day.
	TruncateTime *TruncateTimeSpec `yaml:"truncate_time"`
	// Scrub replaces personal data found in the text of kept fields, keys
	// included, and reduces URLs (see ScrubSpec).
	Scrub *ScrubSpec `yaml:"scrub"`
}

// PseudonymizationSpec configures pseudonym derivation for every output.
type PseudonymizationSpec struct {
	// PerOutput derives a distinct secret per output from each key
	// (HKDF-SHA256 of the key's secret with the output's name, see
	// Keyring.Derive), for the clean message key and every pseudonymize
	// transform of that output: one subject gets unrelated pseudonyms on
	// two outputs, so clean topics cannot be joined by key or by
	// pseudonymized fields. Retractions follow it. Renaming an output
	// changes its pseudonyms. Default: false (one pseudonym per subject
	// and key across outputs).
	PerOutput bool `yaml:"per_output"`
}

// PseudonymizeSpec configures pseudonymize.
type PseudonymizeSpec struct {
	// Fields to pseudonymize. Required.
	Fields []string `yaml:"fields"`
	// Key is the key id. Default: the policy's pseudonym_key.
	Key string `yaml:"key"`
}

// TruncateIPSpec configures truncate_ip.
type TruncateIPSpec struct {
	// Fields holding IP addresses. Default: [context.ip].
	Fields []string `yaml:"fields"`
	// IPv4Bits is the IPv4 prefix kept. Default: 24.
	IPv4Bits *int `yaml:"ipv4_bits"`
	// IPv6Bits is the IPv6 prefix kept. Default: 48.
	IPv6Bits *int `yaml:"ipv6_bits"`
}

// RoundGeoSpec configures round_geo.
type RoundGeoSpec struct {
	// Fields holding coordinates.
	// Default: [context.location.latitude, context.location.longitude].
	Fields []string `yaml:"fields"`
	// Decimals kept, 0 to 6. Default: 2.
	Decimals *int `yaml:"decimals"`
}

// TruncateTimeSpec configures truncate_time.
type TruncateTimeSpec struct {
	// Fields holding RFC 3339 timestamps. Default: [timestamp].
	Fields []string `yaml:"fields"`
	// To is minute, hour or day (UTC). Required.
	To string `yaml:"to"`
}

// ParseSpec strictly decodes a policy file's contents; name is used in
// error messages.
func ParseSpec(name string, data []byte) (*Spec, error) {
	var s Spec
	if err := yamlx.Decode(name, data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Load reads, parses and compiles the policy file at path. keys may be nil,
// in which case key ids are not checked (see Compile).
func Load(path string, keys *Keyring) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return FromBytes(path, data, keys)
}

// FromBytes parses and compiles the policy text data (name is for
// messages), with its Digest.
func FromBytes(name string, data []byte, keys *Keyring) (*Policy, error) {
	spec, err := ParseSpec(name, data)
	if err != nil {
		return nil, err
	}
	p, err := Compile(spec, keys)
	if err != nil {
		return nil, locate(name, data, err)
	}
	p.Digest = Digest(data)
	return p, nil
}

// Digest returns the digest of a policy's text as it appears on every
// clean message (header consentd-policy-sha256): "sha256:" and the hex
// SHA-256 of the file's bytes, exactly as stored. Anyone holding the file
// can check it: sha256sum policy.yaml.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
