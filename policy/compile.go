package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
)

// Policy is a compiled, validated policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	// reasons holds the skip reasons of the outputs' purposes (reason).
	reasons map[reasonKey]string

	Version string
	// Digest identifies the exact policy text that compiled into this
	// Policy (see Digest); "" when it was compiled from a Spec alone.
	Digest       string
	Purposes     []string
	Subjects     []event.Path
	PseudonymKey string
	// PerOutputPseudonyms: each output pseudonymizes under its own derived
	// keys (Spec.Pseudonymization.PerOutput).
	PerOutputPseudonyms bool
	Outputs             []*Output
	// ConsentCategories maps CMP categories and consent ids to purposes.
	ConsentCategories map[string]string
	GPCPaths          []event.Path
	GPCDenies         []string
	AllowPreConsent   bool
	// MaxClockSkew bounds how far ahead of the record time an event's
	// timestamp may be (see Spec.MaxClockSkew).
	MaxClockSkew time.Duration
	// CMP holds the CMP rule options (policy signals section), for
	// consent-topic ingest (ingest.Mapping.CMP) as for events.
	CMP     consent.CMPOptions
	iab     *iabPolicy
	signals *signalPolicy
	keys    *Keyring
	guard   *event.KeyGuard // see confusable.go
	// Segments is the representation measurement; nil when the policy
	// measures none.
	Segments *Segments
	// Aggregates are the outputs of kind aggregate, apart from the clean
	// Outputs: differentially private counts of what an output did not
	// write (see aggregate.go).
	Aggregates []*Aggregate
	// Warnings are problems that do not stop the policy from running: an
	// output without keep_only (an error with require_keep_only), without
	// scrub, or without truncate_time (its clean record timestamps are the
	// raw ones). consentd policy check prints them.
	Warnings []string
}

// Output is one compiled clean output.
type Output struct {
	Name       string
	Topic      string
	Require    []string
	Types      []string
	Events     []string
	Transforms []Transform
	// Retention is the clean topic's retention (Spec: retention); 0
	// leaves the topic's own.
	Retention time.Duration
	// keys pseudonymize for this output: the policy's keyring, or one
	// derived from it for the output (PerOutputPseudonyms).
	keys *Keyring
	// recordUnit truncates the clean record timestamp: the coarsest
	// truncate_time unit of the output's transforms, 0 for none.
	recordUnit time.Duration
}

// Compile validates spec and builds a Policy. Every problem found is
// reported, joined. keys may be nil only to check a policy without its key
// file (consentd policy check): DecideAt then fails on the first pseudonym.
func Compile(spec *Spec, keys *Keyring) (*Policy, error) {
	spec, aggs, fileIndex := splitOutputs(spec)
	c := &compiler{spec: spec, fileIndex: fileIndex, keys: keys, p: &Policy{Version: spec.Version, PseudonymKey: spec.PseudonymKey, PerOutputPseudonyms: spec.Pseudonymization.PerOutput, keys: keys}}
	c.purposes()
	c.consentSignals()
	c.timing()
	c.subjects()
	if len(spec.Outputs) == 0 {
		c.fail("outputs: at least one output is required")
	}
	for i := range spec.Outputs {
		c.output(i)
	}
	c.outputKeys()
	c.segments()
	c.aggregates(aggs)
	c.joinLint()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	c.p.guard = c.p.keyGuard()
	c.p.reasons = map[reasonKey]string{}
	for _, o := range c.p.Outputs {
		for _, pu := range o.Require {
			for _, prefix := range []string{ReasonConsentDeniedPrefix, ReasonPreConsentPrefix} {
				c.p.reasons[reasonKey{prefix, pu}] = prefix + pu
			}
		}
	}
	return c.p, nil
}

// reasonKey names a skip reason made of a prefix and a purpose.
type reasonKey struct{ prefix, purpose string }

// reason returns prefix+purpose, built once per policy.
func (p *Policy) reason(prefix, purpose string) string {
	if r, ok := p.reasons[reasonKey{prefix, purpose}]; ok {
		return r
	}
	return prefix + purpose
}

// compiler holds one Compile's state: every problem is collected, so
// that the author sees them all at once.
type compiler struct {
	spec  *Spec
	keys  *Keyring
	p     *Policy
	known map[string]bool // declared purposes
	names map[string]bool // output names seen
	// fileIndex maps the index of a clean output to its index in the
	// file, when aggregate outputs were set apart (nil: the same).
	fileIndex []int
	errs      []error
}

func (c *compiler) fail(format string, a ...any) { c.errs = append(c.errs, fmt.Errorf(format, a...)) }

// purposes checks the version, the purposes and the CMP categories that
// map onto them.
func (c *compiler) purposes() {
	spec, p := c.spec, c.p
	if strings.TrimSpace(spec.Version) == "" {
		c.fail("version: required")
	}
	c.known = map[string]bool{}
	for _, pu := range spec.Purposes {
		if err := validName(pu); err != nil {
			c.fail("purposes: %w", err)
			continue
		}
		if c.known[pu] {
			c.fail("purposes: %q listed twice", pu)
		}
		c.known[pu] = true
		p.Purposes = append(p.Purposes, pu)
	}
	if len(spec.Purposes) == 0 {
		c.fail("purposes: at least one purpose is required")
	}
	for cat, pu := range spec.ConsentCategories {
		if !c.known[pu] {
			c.fail("consent_categories: %q maps to unknown purpose %q", cat, pu)
		}
	}
	p.ConsentCategories = spec.ConsentCategories
}

// exactPaths parses paths without wildcards, defaulting to def.
func (c *compiler) exactPaths(field string, list []string, def ...string) []event.Path {
	if len(list) == 0 {
		list = def
	}
	var out []event.Path
	for _, s := range list {
		path, err := event.ParsePath(s)
		if err == nil && path.HasWildcard() {
			err = errors.New("wildcards are not allowed")
		}
		if err != nil {
			c.fail("%s: %q: %w", field, s, err)
			continue
		}
		out = append(out, path)
	}
	return out
}

// consentSignals compiles the signals an event carries: GPC, IAB
// strings and the CMP payloads.
func (c *compiler) consentSignals() {
	spec, p := c.spec, c.p
	p.GPCPaths = c.exactPaths("gpc_paths", spec.GPCPaths, "context.gpc")
	p.iab = compileIAB(spec.IAB, c.known, c.exactPaths, c.fail)
	p.signals, p.CMP = compileSignals(spec.Signals, c.known, c.exactPaths, c.fail)
	for _, pu := range spec.GPCDenies {
		if !c.known[pu] {
			c.fail("gpc_denies: unknown purpose %q", pu)
		}
	}
	p.GPCDenies = spec.GPCDenies
}

// timing compiles the pre-consent rule and the clock skew bound.
func (c *compiler) timing() {
	spec, p := c.spec, c.p
	p.AllowPreConsent = spec.AllowPreConsentEvents
	p.MaxClockSkew = DefaultMaxClockSkew
	if spec.MaxClockSkew != "" {
		if d, err := time.ParseDuration(spec.MaxClockSkew); err != nil || d < 0 {
			c.fail("max_clock_skew: %q is not a non-negative duration", spec.MaxClockSkew)
		} else {
			p.MaxClockSkew = d
		}
	}
}

// subjects compiles the subject paths and checks the pseudonym key.
func (c *compiler) subjects() {
	spec := c.spec
	c.p.Subjects = c.exactPaths("subjects", spec.Subjects, "userId", "anonymousId")
	if spec.PseudonymKey == "" {
		c.fail("pseudonym_key: required (the clean message key is the pseudonymized subject)")
		return
	}
	c.checkKey("pseudonym_key", spec.PseudonymKey)
	if _, retired := c.keys.retiredKey(spec.PseudonymKey); retired {
		c.fail("pseudonym_key: key %q is marked retired in the key file; retire the previous key, not the current one", spec.PseudonymKey)
	}
}

// outputKeys gives every output its keyring: the policy's, or one derived
// from it under the output's name.
func (c *compiler) outputKeys() {
	for _, o := range c.p.Outputs {
		o.keys = c.keys
		if !c.p.PerOutputPseudonyms || c.keys == nil {
			continue
		}
		k, err := c.keys.Derive("output " + o.Name)
		if err != nil {
			c.fail("pseudonymization.per_output: %w", err)
			continue
		}
		o.keys = k
	}
}

// eventUnique are fields that tell one event apart: two outputs keeping
// one of them verbatim can be joined record by record, per-output
// pseudonyms or not.
var eventUnique = []string{"messageId", "timestamp", "originalTimestamp", "sentAt", "receivedAt", "context.requestId", "event_id"}

// joinLint warns, with per-output pseudonyms, about fields that still join
// outputs: an event-unique field two outputs keep verbatim.
func (c *compiler) joinLint() {
	if !c.p.PerOutputPseudonyms {
		return
	}
	for _, f := range eventUnique {
		p := event.MustPath(f)
		var keep []string
		for _, o := range c.p.Outputs {
			if keepsVerbatim(o, p) {
				keep = append(keep, o.Name)
			}
		}
		if len(keep) > 1 {
			c.p.Warnings = append(c.p.Warnings, fmt.Sprintf("pseudonymization.per_output: outputs %s keep %s verbatim, so a reader of more than one can join their records by it; pseudonymize it (per output), truncate it or leave it out", strings.Join(keep, ", "), f))
		}
	}
}

// keepsVerbatim reports whether o passes the value at p on unchanged when
// the event has one: no keep_only leaves it out, no drop_fields,
// pseudonymize, truncate_time or truncate_ip names it or a parent.
func keepsVerbatim(o *Output, p event.Path) bool {
	covers := func(ps []event.Path) bool {
		return slices.ContainsFunc(ps, func(q event.Path) bool {
			if len(q) > len(p) {
				return false
			}
			for i := range q {
				if q[i] != "*" && q[i] != p[i] {
					return false
				}
			}
			return true
		})
	}
	for _, t := range o.Transforms {
		switch t := t.(type) {
		case *keepOnly:
			if !covers(t.paths) {
				return false
			}
		case *dropFields, *pseudonymize, *truncateTime, *truncateIP:
			if covers(t.(interface{ named() []event.Path }).named()) {
				return false
			}
		}
	}
	return true
}

// checkKey checks a key id, and that the key file has it when one is
// given.
func (c *compiler) checkKey(where, id string) {
	if err := validKeyID(id); err != nil {
		c.fail("%s: %w", where, err)
	} else if c.keys != nil && !c.keys.Has(id) {
		c.fail("%s: key %q is not in the key file", where, id)
	}
}

// claimName checks an output's name, unique among clean and aggregate
// outputs.
func (c *compiler) claimName(where, name string) {
	if err := validName(name); err != nil {
		c.fail("%s: name: %w", where, err)
	} else if c.names[name] {
		c.fail("%s: name %q used twice", where, name)
	}
	if c.names == nil {
		c.names = map[string]bool{}
	}
	c.names[name] = true
}

// output compiles spec.Outputs[i] and lints it.
func (c *compiler) output(i int) {
	os := c.spec.Outputs[i]
	n := i
	if c.fileIndex != nil {
		n = c.fileIndex[i]
	}
	where := fmt.Sprintf("outputs[%d]", n)
	if os.Name != "" {
		where = fmt.Sprintf("outputs[%d] (%s)", n, os.Name)
	}
	o := &Output{Name: os.Name, Topic: os.Topic}
	c.claimName(where, os.Name)
	if strings.TrimSpace(os.Topic) == "" {
		c.fail("%s: topic: required", where)
	}
	if len(os.Require) == 0 {
		c.fail("%s: require: at least one purpose is required", where)
	}
	for _, r := range os.Require {
		if !c.known[r] {
			c.fail("%s: require: unknown purpose %q (declare it under purposes)", where, r)
		}
		o.Require = append(o.Require, r)
	}
	if os.When != nil {
		o.Types = os.When.Type
		o.Events = os.When.Event
	}
	if os.Retention != "" {
		d, err := time.ParseDuration(os.Retention)
		switch {
		case err != nil:
			c.fail("%s: retention: %q is not a duration (e.g. 720h for 30 days)", where, os.Retention)
		case d < time.Hour:
			c.fail("%s: retention: %s is under an hour; a clean topic keeps events at least that long", where, os.Retention)
		default:
			o.Retention = d
		}
	}
	for j, ts := range os.Transforms {
		t, err := compileTransform(ts, c.spec.PseudonymKey, c.checkKey, fmt.Sprintf("%s: transforms[%d]", where, j))
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: transforms[%d]: %w", where, j, err))
			continue
		}
		o.Transforms = append(o.Transforms, t)
		if tt, ok := t.(*truncateTime); ok && tt.unit > o.recordUnit {
			o.recordUnit = tt.unit
		}
	}
	c.taint(o)
	c.p.Outputs = append(c.p.Outputs, o)
	c.lint(where, o)
}

// taint gives the output's scrub transforms the fields whose values the
// output removes or rewrites: the policy's subjects and what drop_fields,
// pseudonymize and truncate_ip name.
func (c *compiler) taint(o *Output) {
	var src []event.Path
	src = append(src, c.p.Subjects...)
	for _, t := range o.Transforms {
		switch t := t.(type) {
		case *dropFields:
			src = append(src, t.paths...)
		case *pseudonymize:
			src = append(src, t.paths...)
		case *truncateIP:
			src = append(src, t.paths...)
		}
	}
	for _, t := range o.Transforms {
		if st, ok := t.(*scrubT); ok {
			st.track(src...)
		}
	}
}

// lint reports what an output lets through: without keep_only (an error
// with require_keep_only), without scrub, without truncate_time.
func (c *compiler) lint(where string, o *Output) {
	var keepOnlyT, scrubbed bool
	for _, t := range o.Transforms {
		switch t.(type) {
		case *keepOnly:
			keepOnlyT = true
		case *scrubT:
			scrubbed = true
		}
	}
	p := c.p
	switch {
	case !keepOnlyT && c.spec.RequireKeepOnly:
		c.fail("%s: no keep_only transform (require_keep_only: every output must allow-list its fields)", where)
	case !keepOnlyT:
		p.Warnings = append(p.Warnings, where+": no keep_only: every field the policy does not name is passed on")
	}
	if !scrubbed {
		p.Warnings = append(p.Warnings, where+": no scrub: personal data inside kept fields (URLs, free text, keys) is passed on")
	}
	if o.recordUnit == 0 {
		p.Warnings = append(p.Warnings, where+": no truncate_time: clean messages carry the raw record timestamp")
	}
}

func validName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", s)
		}
	}
	return nil
}

func paths(list []string, def ...string) ([]event.Path, error) {
	if len(list) == 0 {
		list = def
	}
	if len(list) == 0 {
		return nil, errors.New("fields: at least one path is required")
	}
	out := make([]event.Path, 0, len(list))
	for _, s := range list {
		p, err := event.ParsePath(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// The fields of truncate_ip, round_geo and truncate_time when they name
// none (TransformSpec).
var (
	defaultIPFields   = []string{"context.ip"}
	defaultGeoFields  = []string{"context.location.latitude", "context.location.longitude"}
	defaultTimeFields = []string{"timestamp"}
)

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func compileTransform(ts TransformSpec, defKey string, checkKey func(where, id string), where string) (Transform, error) {
	set := 0
	for _, b := range []bool{ts.DropFields != nil, ts.KeepOnly != nil, ts.Pseudonymize != nil, ts.TruncateIP != nil, ts.RoundGeo != nil, ts.TruncateTime != nil, ts.Scrub != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("want exactly one of drop_fields, keep_only, pseudonymize, truncate_ip, round_geo, truncate_time, scrub; got %d", set)
	}
	switch {
	case ts.DropFields != nil:
		ps, err := paths(ts.DropFields)
		if err != nil {
			return nil, fmt.Errorf("drop_fields: %w", err)
		}
		return &dropFields{newFields(ps)}, nil
	case ts.KeepOnly != nil:
		ps, err := paths(ts.KeepOnly)
		if err != nil {
			return nil, fmt.Errorf("keep_only: %w", err)
		}
		return &keepOnly{paths: ps, set: event.NewKeepSet(ps)}, nil
	case ts.Pseudonymize != nil:
		ps, err := paths(ts.Pseudonymize.Fields)
		if err != nil {
			return nil, fmt.Errorf("pseudonymize: %w", err)
		}
		key := ts.Pseudonymize.Key
		if key == "" {
			key = defKey
		}
		checkKey(where+": pseudonymize", key)
		return &pseudonymize{fields: newFields(ps), key: key}, nil
	case ts.TruncateIP != nil:
		ps, err := paths(ts.TruncateIP.Fields, defaultIPFields...)
		if err != nil {
			return nil, fmt.Errorf("truncate_ip: %w", err)
		}
		v4, v6 := intOr(ts.TruncateIP.IPv4Bits, 24), intOr(ts.TruncateIP.IPv6Bits, 48)
		if v4 < 0 || v4 > 32 {
			return nil, fmt.Errorf("truncate_ip: ipv4_bits %d: want 0..32", v4)
		}
		if v6 < 0 || v6 > 128 {
			return nil, fmt.Errorf("truncate_ip: ipv6_bits %d: want 0..128", v6)
		}
		return &truncateIP{fields: newFields(ps), v4: v4, v6: v6}, nil
	case ts.Scrub != nil:
		return compileScrub(ts.Scrub)
	case ts.RoundGeo != nil:
		ps, err := paths(ts.RoundGeo.Fields, defaultGeoFields...)
		if err != nil {
			return nil, fmt.Errorf("round_geo: %w", err)
		}
		dec := intOr(ts.RoundGeo.Decimals, 2)
		if dec < 0 || dec > 6 {
			return nil, fmt.Errorf("round_geo: decimals %d: want 0..6", dec)
		}
		return &roundGeo{fields: newFields(ps), decimals: dec}, nil
	default:
		ps, err := paths(ts.TruncateTime.Fields, defaultTimeFields...)
		if err != nil {
			return nil, fmt.Errorf("truncate_time: %w", err)
		}
		unit, ok := timeUnits[ts.TruncateTime.To]
		if !ok {
			return nil, fmt.Errorf("truncate_time: to %q: want minute, hour or day", ts.TruncateTime.To)
		}
		return &truncateTime{fields: newFields(ps), unit: unit, name: ts.TruncateTime.To}, nil
	}
}

// Summary describes the policy for humans (consentd policy check).
func (p *Policy) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %q: %d purposes (%s), %d outputs, message key pseudonymized with key %q\n",
		p.Version, len(p.Purposes), strings.Join(p.Purposes, ", "), len(p.Outputs), p.PseudonymKey)
	if p.PerOutputPseudonyms {
		b.WriteString("pseudonyms per output: each output's keys are derived from the key file (HKDF), so clean topics cannot be joined by key or pseudonymized fields\n")
	} else if len(p.Outputs) > 1 {
		b.WriteString("pseudonyms shared: one subject has the same key and pseudonyms on every output (pseudonymization.per_output: false)\n")
	}
	subj := make([]string, len(p.Subjects))
	for i, s := range p.Subjects {
		subj[i] = s.String()
	}
	fmt.Fprintf(&b, "subject from: %s\n", strings.Join(subj, ", then "))
	if len(p.ConsentCategories) > 0 {
		fmt.Fprintf(&b, "consent carried by events (Segment categoryPreferences, RudderStack consentManagement) is honoured: %d categories mapped\n", len(p.ConsentCategories))
	} else {
		b.WriteString("consent carried by events is NOT honoured (no consent_categories)\n")
	}
	if len(p.GPCDenies) > 0 {
		fmt.Fprintf(&b, "Global Privacy Control denies: %s\n", strings.Join(p.GPCDenies, ", "))
	}
	for _, o := range p.Outputs {
		fmt.Fprintf(&b, "- output %s -> topic %s, requires %s", o.Name, o.Topic, strings.Join(o.Require, " + "))
		if len(o.Types) > 0 {
			fmt.Fprintf(&b, ", type in [%s]", strings.Join(o.Types, ", "))
		}
		if len(o.Events) > 0 {
			fmt.Fprintf(&b, ", event in [%s]", strings.Join(o.Events, ", "))
		}
		if o.Retention > 0 {
			fmt.Fprintf(&b, ", kept %s (retention.ms)", o.Retention)
		}
		b.WriteString("\n")
		for i, t := range o.Transforms {
			fmt.Fprintf(&b, "    %d. %s\n", i+1, t)
		}
	}
	if s := p.Segments; s != nil {
		fmt.Fprintf(&b, "segments measured (consentd_segment_events_total; top %d values per field, flagged past %.2fx):\n", s.Top, s.FlagRatio)
		for j, o := range p.Outputs {
			var names []string
			for _, f := range s.ByOutput[j] {
				names = append(names, s.Fields[f].Name)
			}
			if len(names) == 0 {
				names = []string{"none"}
			}
			fmt.Fprintf(&b, "  %s: %s\n", o.Name, strings.Join(names, ", "))
		}
	}
	for _, a := range p.Aggregates {
		fmt.Fprintf(&b, "- %s\n", a)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}
