package policy

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// SegmentsSpec configures the representation measurement: for fields
// that say which segment an event belongs to (country, locale, device
// type, plan, event name), consentd counts per output the events it was
// eligible for (stage raw) and those it wrote (stage clean), so that an
// ML team sees how consent filtering changes the mix it trains on
// (consentd_segment_events_total, consentd report representation).
type SegmentsSpec struct {
	// Fields are the segment fields of every output that names none of
	// its own (OutputSpec.Segments). Each must be non-personal and kept
	// verbatim by every output it applies to, or the policy does not
	// compile (see NonPersonalPath). Default: none (nothing measured).
	Fields []string `yaml:"fields"`
	// Top bounds the distinct values counted per field: the first Top
	// values seen get a label of their own, later ones are counted as
	// "(other)". Default: 20; at most 200.
	Top int `yaml:"top"`
	// FlagRatio is how far a value's share of the clean events may
	// differ from its share of the raw ones (either way, as a ratio)
	// before the report flags it. Default: 1.25; must be above 1.
	FlagRatio float64 `yaml:"flag_ratio"`
}

// Segments is the compiled representation measurement.
type Segments struct {
	// Fields are the distinct segment fields of every output, in the
	// order first named.
	Fields []SegmentField
	// ByOutput lists, per output (policy order), the indexes into
	// Fields it measures.
	ByOutput [][]int
	// Top and FlagRatio: see SegmentsSpec.
	Top       int
	FlagRatio float64
}

// SegmentField is one segment field.
type SegmentField struct {
	Name string
	Path event.Path
}

// Segment defaults and bounds.
const (
	DefaultSegmentTop       = 20
	MaxSegmentTop           = 200
	DefaultSegmentFlagRatio = 1.25
	// MaxSegmentValueLen bounds a segment value; a longer one is
	// SegmentRedacted (a country, locale or plan is short; a long text
	// is content, not a segment).
	MaxSegmentValueLen = 64
)

// Segment values that stand for several values.
const (
	// SegmentNone: the event has no value at the field (or null).
	SegmentNone = "(none)"
	// SegmentRedacted: the value is not shown: not a string, number or
	// boolean, longer than MaxSegmentValueLen, with control characters,
	// or holding what scrub finds (an e-mail, phone, card, IP).
	SegmentRedacted = "(redacted)"
	// SegmentOther: a value past the first Top of its field.
	SegmentOther = "(other)"
)

// segments compiles the policy's segment fields and each output's,
// refusing any that is personal or that an output does not keep as it
// is. It runs after the outputs are compiled.
func (c *compiler) segments() {
	spec := c.spec
	s := &Segments{Top: DefaultSegmentTop, FlagRatio: DefaultSegmentFlagRatio}
	var def []string
	if spec.Segments != nil {
		def = spec.Segments.Fields
		if spec.Segments.Top != 0 {
			s.Top = spec.Segments.Top
		}
		if spec.Segments.FlagRatio != 0 {
			s.FlagRatio = spec.Segments.FlagRatio
		}
		if s.Top < 1 || s.Top > MaxSegmentTop {
			c.fail("segments.top: %d is out of range 1..%d", s.Top, MaxSegmentTop)
		}
		if !(s.FlagRatio > 1) || s.FlagRatio > 100 {
			c.fail("segments.flag_ratio: %v must be above 1 (1.25 flags a value whose share changes by a quarter) and at most 100", s.FlagRatio)
		}
	}
	index := map[string]int{}
	measured := false
	for i := range spec.Outputs {
		os := &spec.Outputs[i]
		fields, where := def, "segments.fields"
		if os.Segments != nil {
			fields, where = os.Segments, fmt.Sprintf("outputs[%s].segments", os.Name)
		}
		var mine []int
		seen := map[string]bool{}
		for _, f := range fields {
			if seen[f] {
				c.fail("%s: %q listed twice", where, f)
				continue
			}
			seen[f] = true
			path, err := event.ParsePath(f)
			if err == nil && path.HasWildcard() {
				err = fmt.Errorf("wildcards are not allowed")
			}
			if err != nil {
				c.fail("%s: %q: %w", where, f, err)
				continue
			}
			if err := c.NonPersonalPath(path); err != nil {
				c.fail("%s: %q cannot be a segment: %w", where, f, err)
				continue
			}
			if err := keptVerbatim(os, path); err != nil {
				c.fail("%s: %q cannot be a segment of output %s: %w (name the output's own segments with outputs[].segments)", where, f, os.Name, err)
				continue
			}
			j, ok := index[f]
			if !ok {
				j = len(s.Fields)
				index[f] = j
				s.Fields = append(s.Fields, SegmentField{Name: f, Path: path})
			}
			mine = append(mine, j)
			measured = true
		}
		s.ByOutput = append(s.ByOutput, mine)
	}
	if measured {
		c.p.Segments = s
	}
}

// NonPersonalPath refuses a path that names an identifier: a subject
// path, a field scrub treats as an identifier by default (ids, e-mail,
// phone, IP, device and advertising ids, click ids, user agent), or one
// whose last key says it holds one of them. A segment or aggregate
// dimension must describe a group of people, never one person.
func (c *compiler) NonPersonalPath(path event.Path) error {
	for _, s := range c.p.Subjects {
		if pathEqualFold(s, path) {
			return fmt.Errorf("it is a subject path (policy subjects)")
		}
	}
	return NonPersonalPath(path)
}

// NonPersonalPath is the check of compiler.NonPersonalPath without the
// policy's subject paths.
func NonPersonalPath(path event.Path) error {
	last := path[len(path)-1]
	full := path.String()
	for _, id := range DefaultIdentifiers {
		if strings.EqualFold(id, full) || (!strings.Contains(id, ".") && strings.EqualFold(id, last)) {
			return fmt.Errorf("it names an identifier (%s)", id)
		}
	}
	if personalKeyName(last) {
		return fmt.Errorf("its name %q says it holds personal data or an identifier", last)
	}
	return nil
}

// personalKeyName reports whether a key's name says its value is about
// one person: an id (userId, user_id, uuid), contact data, a name, a
// precise place, a secret or a URL.
func personalKeyName(key string) bool {
	lower := strings.ToLower(key)
	norm := strings.NewReplacer("_", "", "-", "", " ", "").Replace(lower)
	switch norm {
	case "id", "uid", "uuid", "guid", "ip", "name", "dob", "ssn", "zip", "url", "uri", "href", "referrer", "referer", "token", "secret", "iban", "vat":
		return true
	}
	for _, w := range []string{"email", "phone", "mobile", "password", "ipaddress", "useragent", "birth", "street", "postcode", "postalcode", "zipcode", "latitude", "longitude", "firstname", "lastname", "fullname", "username", "displayname", "address", "fingerprint", "cookie", "session", "token", "passport", "license", "creditcard", "cardnumber", "account"} {
		if strings.Contains(norm, w) {
			return true
		}
	}
	for _, suffix := range []string{"Id", "ID", "_id", "-id", "Ip", "IP", "_ip", "-ip", "Url", "URL", "_url", "-url", "Uid", "UID", "_uid"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

func pathEqualFold(a, b event.Path) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// keptVerbatim reports why output os does not write the value at path
// unchanged: a drop_fields removes it, a keep_only leaves it out, or a
// transform rewrites it (pseudonymize, truncate_ip, round_geo,
// truncate_time, a scrub URL or identifier field). nil means a written
// event carries the raw value there (scrub may still replace personal
// data in it: such values are SegmentRedacted).
func keptVerbatim(os *OutputSpec, path event.Path) error {
	for _, t := range os.Transforms {
		switch {
		case t.DropFields != nil:
			for _, f := range t.DropFields {
				if covers(f, path) {
					return fmt.Errorf("drop_fields %q removes it", f)
				}
			}
		case t.KeepOnly != nil:
			kept := false
			for _, f := range t.KeepOnly {
				if covers(f, path) {
					kept = true
					break
				}
			}
			if !kept {
				return fmt.Errorf("keep_only does not keep it")
			}
		case t.Pseudonymize != nil:
			if f, ok := coveredBy(t.Pseudonymize.Fields, path); ok {
				return fmt.Errorf("pseudonymize %q rewrites it", f)
			}
		case t.TruncateIP != nil:
			if f, ok := coveredBy(orDefault(t.TruncateIP.Fields, defaultIPFields...), path); ok {
				return fmt.Errorf("truncate_ip %q rewrites it", f)
			}
		case t.RoundGeo != nil:
			if f, ok := coveredBy(orDefault(t.RoundGeo.Fields, defaultGeoFields...), path); ok {
				return fmt.Errorf("round_geo %q rewrites it", f)
			}
		case t.TruncateTime != nil:
			if f, ok := coveredBy(orDefault(t.TruncateTime.Fields, defaultTimeFields...), path); ok {
				return fmt.Errorf("truncate_time %q rewrites it", f)
			}
		case t.Scrub != nil:
			if f, ok := coveredBy(t.Scrub.URLs, path); ok {
				return fmt.Errorf("scrub reduces it as a URL (%q)", f)
			}
			if f, ok := coveredBy(t.Scrub.Identifiers, path); ok {
				return fmt.Errorf("scrub treats it as an identifier (%q)", f)
			}
		}
	}
	return nil
}

func orDefault(list []string, def ...string) []string {
	if len(list) == 0 {
		return def
	}
	return list
}

func coveredBy(list []string, path event.Path) (string, bool) {
	for _, f := range list {
		if covers(f, path) {
			return f, true
		}
	}
	return "", false
}

// covers reports whether the pattern (a dotted path, "*" matching any
// one key) names path or one of its ancestors. Keys compare without
// case: a rule that names the field in another case is taken to mean it.
func covers(pattern string, path event.Path) bool {
	p := strings.Split(pattern, ".")
	if len(p) > len(path) {
		return false
	}
	for i := range p {
		if p[i] != "*" && !strings.EqualFold(p[i], path[i]) {
			return false
		}
	}
	return true
}

// SegmentValue returns the label an event's value at a segment field is
// counted under: the value itself when it is a short, printable string,
// a number or a boolean in which sc finds no personal data (nor any of
// ids, the event's identifier values);
// SegmentNone when it is missing or null; SegmentRedacted otherwise.
// sc is the caller's scanner (not safe for concurrent use); nil skips
// the scan, for values already admitted.
func SegmentValue(doc *event.Doc, path event.Path, sc *scrub.Scanner, ids [][]byte) string {
	v, found, _ := doc.Get(path)
	if !found || v.Kind == event.Null {
		return SegmentNone
	}
	var text []byte
	switch v.Kind {
	case event.String:
		text = v.Text()
	case event.Number, event.Bool:
		text = v.Raw
	default:
		return SegmentRedacted
	}
	if !SafeSegmentText(text, sc, ids) {
		return SegmentRedacted
	}
	return string(text)
}

// SafeSegmentText reports whether text may be shown as a segment value:
//   - non-empty, at most MaxSegmentValueLen bytes of valid UTF-8;
//   - only graphic characters and single inner ASCII spaces: no control,
//     format, combining-joiner or filler character (U+034F, U+3164,
//     U+FFA0, U+115F, U+1160, variation selectors, braille blank) that
//     would make two labels look alike, no leading "(" that would pass
//     for a placeholder label ("(none)", "(other)");
//   - not looking like an id (see looksLikeID) and holding no scrub
//     placeholder;
//   - with sc, holding nothing scrub finds (e-mails, phones, cards, IPs,
//     hashes, "at"/"dot" spelled addresses), ids (the event's
//     identifier values, see Policy.EventIdentifiers) included.
func SafeSegmentText(text []byte, sc *scrub.Scanner, ids [][]byte) bool {
	if len(text) == 0 || len(text) > MaxSegmentValueLen || !utf8.Valid(text) {
		return false
	}
	if text[0] == '(' || text[0] == ' ' || text[len(text)-1] == ' ' || bytes.Contains(text, []byte("  ")) {
		return false
	}
	for _, r := range string(text) {
		if r == ' ' {
			continue
		}
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || invisible(r) {
			return false
		}
	}
	if looksLikeID(text) || holdsPlaceholder(text) {
		return false
	}
	if sc != nil {
		sc.AtWords, sc.Hashes = true, true
		if sc.Find(text, ids) != scrub.None {
			return false
		}
	}
	return true
}

// invisible reports letters and symbols that render as nothing (Hangul
// fillers, the braille blank, variation selectors and similar).
func invisible(r rune) bool {
	switch {
	case r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x2800, r == 0x034F, r == 0x17B4, r == 0x17B5:
		return true
	case r >= 0x180B && r <= 0x180F, r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF:
		return true
	}
	return false
}

// holdsPlaceholder reports text holding what scrub puts in place of
// personal data ("[email]", "[id]"...): a clean event's value that held
// personal data in the raw event, counted as SegmentRedacted like the
// raw one.
func holdsPlaceholder(text []byte) bool {
	if !bytes.Contains(text, []byte("[")) {
		return false
	}
	for k := scrub.Email; k <= scrub.Hash; k++ {
		if bytes.Contains(text, []byte(k.Placeholder())) {
			return true
		}
	}
	return false
}

// looksLikeID reports text that reads as an identifier, never a
// segment: 6 or more digits in one number (separators "-", ".", "/" and
// spaces between digit groups included: account, order, phone-like and
// social security numbers, dates), 16 or more hex digits in a run
// (UUIDs, hashes), or a token of 10 or more letters, digits and "_"
// mixing letters and digits (API-style ids such as cus_NffrFeUfNV2Hib).
func looksLikeID(text []byte) bool {
	digits, hex := 0, 0
	token, tokDigit, tokLetter := 0, false, false
	for i, c := range text {
		isDigit := c >= '0' && c <= '9'
		isLetter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		isHex := isDigit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		sep := c == '-' || c == '.' || c == '/' || c == ' '
		switch {
		case isDigit:
			digits++
		case sep && digits > 0 && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			// a separator between digit groups keeps the number going
		default:
			digits = 0
		}
		if isHex {
			hex++
		} else if c != '-' {
			hex = 0
		}
		if isDigit || isLetter || c == '_' {
			token++
			tokDigit = tokDigit || isDigit
			tokLetter = tokLetter || isLetter
		} else {
			token, tokDigit, tokLetter = 0, false, false
		}
		if digits >= 6 || hex >= 16 || (token >= 10 && tokDigit && tokLetter) {
			return true
		}
	}
	return false
}

// EventIdentifiers appends to dst the string values of the event's
// identifier fields: its subject paths, and the DefaultIdentifiers as
// top-level keys, under context and as the paths they name. A segment
// value holding one of them is not a segment.
func (p *Policy) EventIdentifiers(doc *event.Doc, dst [][]byte) [][]byte {
	add := func(path event.Path) {
		if v, found, _ := doc.Get(path); found && v.Kind == event.String {
			if t := v.Text(); len(t) >= scrub.MinIDLen {
				dst = append(dst, t)
			}
		}
	}
	for _, path := range p.Subjects {
		add(path)
	}
	for _, path := range identifierPaths {
		add(path)
	}
	return dst
}

// identifierPaths are where EventIdentifiers looks besides the subject
// paths.
var identifierPaths = func() []event.Path {
	var out []event.Path
	for _, id := range DefaultIdentifiers {
		if strings.Contains(id, ".") {
			out = append(out, event.MustPath(id))
			continue
		}
		out = append(out, event.Path{id}, event.Path{"context", id}, event.Path{"context", "traits", id}, event.Path{"traits", id})
	}
	return out
}()

// TypeAndName returns the event's "type" and "event" texts (nil when
// missing or not strings), as Output.Selects reads them.
func TypeAndName(doc *event.Doc) (typ, name []byte) {
	typ, _, _ = doc.GetText(pathType)
	name, _, _ = doc.GetText(pathEvent)
	return typ, name
}

// Selects reports whether the output's when-filter selects an event of
// this type and name (an output without a filter selects every event).
// The decision checks consent before the filter, so a skip's reason is
// consent_denied even for an event the filter would not select: use
// Selects, not the reason, to tell the events an output is for.
func (o *Output) Selects(typ, name []byte) bool {
	return (len(o.Types) == 0 || containsText(o.Types, typ)) && (len(o.Events) == 0 || containsText(o.Events, name))
}
