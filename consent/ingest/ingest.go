// Package ingest turns consent records from a consent topic into consent
// updates. Three formats are detected per record:
//
//   - native: {"subject":"u1","purposes":{"personalization":true},
//     "version":1732280000000,"source":"cmp","expires_at":"2027-01-01T00:00:00Z"}
//   - Segment's "Segment Consent Preference Updated" track event, with
//     context.consent.categoryPreferences {"Advertising":true,...}
//   - RudderStack events with context.consentManagement
//     {"allowedConsentIds":[...],"deniedConsentIds":[...],"resolutionStrategy":"and"}
//
// Segment categories and RudderStack consent ids map to purposes through
// the policy's category map, by the same rules as consent carried by
// events (consent.SegmentPurposes, consent.RudderPurposes). A native update
// is a complete snapshot: purposes it does not grant are denied. A Segment
// or RudderStack update decides only the purposes some category maps to;
// the others are listed in Update.Keep (see Update.Merge).
//
// The package only parses: the consent topic is read by
// kafkaops.ConsentSyncer and applied through consent/changes. It must not import
// Kafka, Redis or Prometheus.
package ingest

import (
	"bytes"

	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/consentd/consentd/consent"
)

// Format names a record format.
type Format string

// The record formats.
const (
	Native      Format = "native"
	Segment     Format = "segment"
	RudderStack Format = "rudderstack"
)

// SegmentConsentEvent is the reserved Segment event name.
const SegmentConsentEvent = "Segment Consent Preference Updated"

// Update is one subject's new consent.
type Update struct {
	Subject  string
	Version  int64 // Unix milliseconds unless the native record says otherwise
	Purposes map[string]bool
	Expires  time.Time // zero when none
	// GrantedAt is when the consent was given, for formats that say so
	// (the event timestamp of Segment and RudderStack records); zero means
	// "when stored".
	GrantedAt time.Time
	Source    string
	Format    Format
	// Keep lists the purposes the record says nothing about (Segment and
	// RudderStack purposes no category or consent id maps to). Purposes
	// holds them as not granted; Merge keeps their stored value instead.
	Keep []string
}

// Merge returns the purposes to store: Purposes, with every purpose in Keep
// taking its value from prev (the subject's stored record, the zero Record
// when none), so that a CMP record never changes what it does not map.
func (u Update) Merge(prev consent.Record) map[string]bool {
	out := make(map[string]bool, len(u.Purposes)+len(u.Keep))
	for p, g := range u.Purposes {
		out[p] = g
	}
	for _, p := range u.Keep {
		out[p] = prev.Allows(p)
	}
	return out
}

// ErrInvalid wraps every rejection; the message never contains the subject.
var ErrInvalid = errors.New("invalid consent record")

// Mapping maps CMP category or consent ids to purposes.
type Mapping struct {
	Purposes   []string          // every purpose of the policy
	Categories map[string]string // category / consent id -> purpose
	// CMP holds the policy's CMP rule options (policy.Policy.CMP).
	CMP consent.CMPOptions
}

type envelope struct {
	// native
	Subject   *string          `json:"subject"`
	PurposesN map[string]*bool `json:"purposes"`
	Version   *json.Number     `json:"version"`
	Source    string           `json:"source"`
	ExpiresAt string           `json:"expires_at"`
	// events
	Type        string `json:"type"`
	Event       string `json:"event"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	Timestamp   string `json:"timestamp"`
	Original    string `json:"originalTimestamp"`
	Context     struct {
		Consent *struct {
			CategoryPreferences map[string]*bool `json:"categoryPreferences"`
		} `json:"consent"`
		ConsentManagement json.RawMessage `json:"consentManagement"`
	} `json:"context"`
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Parse reads one record. msgTime (the Kafka message time) versions event
// formats that carry no timestamp.
func Parse(value []byte, msgTime time.Time, m Mapping) (Update, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var e envelope
	if err := dec.Decode(&e); err != nil {
		return Update{}, invalid("not a JSON object: %v", err)
	}
	switch {
	case e.Subject != nil:
		return parseNative(&e, m)
	case e.Context.Consent != nil && e.Context.Consent.CategoryPreferences != nil:
		if e.Event != SegmentConsentEvent {
			return Update{}, invalid("categoryPreferences outside a %q event", SegmentConsentEvent)
		}
		return parseSegment(&e, msgTime, m)
	case e.Context.ConsentManagement != nil && string(e.Context.ConsentManagement) != "null":
		return parseRudder(&e, msgTime, m)
	}
	return Update{}, invalid("no known consent format (native subject, Segment categoryPreferences or RudderStack consentManagement)")
}

func known(m Mapping, p string) bool {
	for _, q := range m.Purposes {
		if q == p {
			return true
		}
	}
	return false
}

func parseNative(e *envelope, m Mapping) (Update, error) {
	u := Update{Subject: *e.Subject, Source: e.Source, Format: Native, Purposes: map[string]bool{}}
	if u.Subject == "" {
		return Update{}, invalid("native record with an empty subject")
	}
	if e.Version == nil {
		return Update{}, invalid("native record without a version")
	}
	v, err := e.Version.Int64()
	if err != nil || v < 0 {
		return Update{}, invalid("version must be a non-negative integer")
	}
	u.Version = v
	if e.PurposesN == nil {
		return Update{}, invalid("native record without purposes")
	}
	for p, g := range e.PurposesN {
		if g == nil {
			return Update{}, invalid("purpose %q must be true or false", p)
		}
		if !known(m, p) {
			return Update{}, invalid("unknown purpose %q", p)
		}
		u.Purposes[p] = *g
	}
	if e.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, e.ExpiresAt)
		if err != nil {
			return Update{}, invalid("expires_at is not RFC 3339")
		}
		u.Expires = t
	}
	return u, nil
}

func eventSubject(e *envelope) (string, error) {
	if e.UserID != "" {
		return e.UserID, nil
	}
	if e.AnonymousID != "" {
		return e.AnonymousID, nil
	}
	return "", invalid("event without userId or anonymousId")
}

func eventVersion(e *envelope, msgTime time.Time) (int64, error) {
	for _, s := range []string{e.Timestamp, e.Original} {
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, invalid("timestamp is not RFC 3339")
		}
		return t.UnixMilli(), nil
	}
	if msgTime.IsZero() {
		return 0, invalid("event without a timestamp")
	}
	return msgTime.UnixMilli(), nil
}

// fromDecision turns a CMP decision into an update's purposes and Keep.
func fromDecision(d consent.CMPDecision) (map[string]bool, []string) {
	out := make(map[string]bool, len(d.Granted))
	for p, g := range d.Granted {
		out[p] = g
	}
	return out, d.Unmapped
}

// eventIdentity returns an event record's subject and version.
func eventIdentity(e *envelope, msgTime time.Time) (string, int64, error) {
	subj, err := eventSubject(e)
	if err != nil {
		return "", 0, err
	}
	v, err := eventVersion(e, msgTime)
	return subj, v, err
}

func parseSegment(e *envelope, msgTime time.Time, m Mapping) (Update, error) {
	subj, v, err := eventIdentity(e, msgTime)
	if err != nil {
		return Update{}, err
	}
	cats := map[string]bool{}
	for c, g := range e.Context.Consent.CategoryPreferences {
		if g == nil {
			return Update{}, invalid("category %q must be true or false", c)
		}
		cats[c] = *g
	}
	purposes, keep := fromDecision(consent.SegmentPurposes(cats, m.Categories, m.Purposes))
	return Update{Subject: subj, Version: v, Purposes: purposes, Keep: keep, Source: "segment", Format: Segment, GrantedAt: time.UnixMilli(v)}, nil
}

func parseRudder(e *envelope, msgTime time.Time, m Mapping) (Update, error) {
	subj, v, err := eventIdentity(e, msgTime)
	if err != nil {
		return Update{}, err
	}
	rc, err := consent.ParseRudderConsent(e.Context.ConsentManagement)
	if err != nil {
		return Update{}, invalid("%v", err)
	}
	purposes, keep := fromDecision(consent.RudderPurposes(rc, m.Categories, m.Purposes, m.CMP))
	src := "rudderstack"
	if rc.Provider != "" {
		src += ":" + rc.Provider
	}
	return Update{Subject: subj, Version: v, Purposes: purposes, Keep: keep, Source: src, Format: RudderStack, GrantedAt: time.UnixMilli(v)}, nil
}

// Summary renders an update without the subject, for logs and errors.
func (u Update) Summary() string {
	ps := make([]string, 0, len(u.Purposes))
	for p, g := range u.Purposes {
		ps = append(ps, fmt.Sprintf("%s=%v", p, g))
	}
	sort.Strings(ps)
	exp := ""
	if !u.Expires.IsZero() {
		exp = " expires " + u.Expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s v%d %v%s", u.Format, u.Version, ps, exp)
}
