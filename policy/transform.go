package policy

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// Action records a change a transform made. It names the policy's own
// path, never a key read from the event: keys are input and may be
// personal data ("alice@example.com": true).
type Action struct {
	// Op is the transform: drop_fields, keep_only, pseudonymize,
	// truncate_ip, round_geo, truncate_time or scrub.
	Op string
	// Path is the policy path that matched, as written in the policy
	// ("context.*.advertisingId"). For keep_only it is the object that lost
	// members, spelled with the allow-list's segments, "$" for the top
	// level.
	Path string
	// Count is how many fields (keep_only: members; scrub: pieces of
	// text) the change covers; 0 means 1.
	Count int
	// Kinds are the kinds of personal data scrub replaced (never the
	// data itself).
	Kinds scrub.Kinds
}

func (a Action) String() string { return string(a.appendTo(nil)) }

// appendTo renders "op:path", with the count when it says something:
// "keep_only:properties(2 removed)", "scrub:properties(3 replaced:
// email,id)",
// "drop_fields:context.*.id(2)".
func (a Action) appendTo(dst []byte) []byte {
	dst = append(dst, a.Op...)
	dst = append(dst, ':')
	dst = append(dst, a.Path...)
	n := max(a.Count, 1)
	switch a.Op {
	case "keep_only":
		dst = append(strconv.AppendInt(append(dst, '('), int64(n), 10), " removed)"...)
	case "scrub":
		dst = append(strconv.AppendInt(append(dst, '('), int64(n), 10), " replaced"...)
		if a.Kinds != 0 {
			dst = a.Kinds.Append(append(dst, ": "...))
		}
		dst = append(dst, ')')
	default:
		if n > 1 {
			dst = append(strconv.AppendInt(append(dst, '('), int64(n), 10), ')')
		}
	}
	return dst
}

// Transform changes an event for one output. Apply records every field it
// changes through rec. A value it cannot handle (a number where an IP is
// expected, say) is an *InputError: the event is dead-lettered, never
// passed on half-transformed.
//
// Apply's run carries the output's keys, its action recorder and the
// event's scratch (see eventScratch): replacement values a transform
// builds live in the scratch's arena, valid until the event's outputs are
// rendered.
type Transform interface {
	Apply(ed *event.Edit, x *run) error
	String() string
}

// InputError reports an event the policy cannot decide on. Reason is a
// short, stable label for metrics and dead-letter headers.
type InputError struct {
	Reason string
	Err    error
}

func (e *InputError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Reasons for dead-lettering.
const (
	ReasonInvalidJSON      = "invalid_json"
	ReasonNotObject        = "not_object"
	ReasonTooDeep          = "too_deep"
	ReasonTooLarge         = "too_large"
	ReasonDuplicateKey     = "duplicate_key"
	ReasonWrongType        = "wrong_type"
	ReasonInvalidIP        = "invalid_ip"
	ReasonInvalidTimestamp = "invalid_timestamp"
	ReasonInvalidSubject   = "invalid_subject"
	// ReasonInvalidKey: a key with an unpaired surrogate escape or a control
	// character (NUL included), escaped or not.
	ReasonInvalidKey = "invalid_key"
	// ReasonConfusableKey: a key that is not a path segment the policy
	// names but equals one after Unicode NFKC normalization, case folding
	// and removal of invisible characters and surrounding spaces ("UserId",
	// "ｕｓｅｒＩｄ", "userId ", "e\u200bmail").
	ReasonConfusableKey = "confusable_key"
	// ReasonTooManyIdentifiers: more distinct identifiers than taint
	// tracking searches for (MaxNeedles).
	ReasonTooManyIdentifiers = "too_many_identifiers"
	ReasonInternal           = "internal"
)

// inputErr classifies err from the event package into an InputError.
func inputErr(err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	reason := ReasonInternal
	switch {
	case errors.Is(err, event.ErrDuplicateKey):
		reason = ReasonDuplicateKey
	case errors.Is(err, event.ErrInvalidKey):
		reason = ReasonInvalidKey
	case errors.Is(err, event.ErrConfusableKey):
		reason = ReasonConfusableKey
	case errors.Is(err, event.ErrWrongType):
		reason = ReasonWrongType
	case errors.Is(err, event.ErrNotObject):
		reason = ReasonNotObject
	case errors.Is(err, event.ErrTooDeep):
		reason = ReasonTooDeep
	case errors.Is(err, event.ErrSyntax):
		reason = ReasonInvalidJSON
	}
	return &InputError{Reason: reason, Err: err}
}

// ParseError classifies an error returned by event.Doc.Parse.
func ParseError(err error) *InputError {
	var ie *InputError
	errors.As(inputErr(err), &ie)
	return ie
}

func joinPaths(ps []event.Path) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// fields is a transform's list of paths with their names precomputed.
type fields struct {
	paths []event.Path
	names []string // the policy's spelling, wildcards included
}

// named returns the paths the transform names.
func (f fields) named() []event.Path { return f.paths }

func newFields(ps []event.Path) fields {
	f := fields{paths: ps, names: make([]string, len(ps))}
	for i, p := range ps {
		f.names[i] = p.String()
	}
	return f
}

func (f fields) String() string { return joinPaths(f.paths) }

// each calls fn for every member matched by any of the paths, with the
// policy path that matched it (a wildcard stays "*": the key it matched is
// input, and never named).
func (f fields) each(ed *event.Edit, fn func(r event.Ref, path string) error) error {
	for i, p := range f.paths {
		name := f.names[i]
		err := ed.Each(p, func(r event.Ref) error {
			return fn(r, name)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

type dropFields struct{ fields }

func (t *dropFields) String() string { return "drop_fields: " + t.fields.String() }

func (t *dropFields) Apply(ed *event.Edit, x *run) error {
	return t.each(ed, func(r event.Ref, path string) error {
		x.rec(Action{Op: "drop_fields", Path: path})
		ed.Remove(r)
		return nil
	})
}

type keepOnly struct {
	paths []event.Path
	set   *event.KeepSet
}

func (t *keepOnly) String() string { return "keep_only: " + joinPaths(t.paths) }

func (t *keepOnly) Apply(ed *event.Edit, x *run) error {
	return ed.KeepOnly(t.set, func(path string, n int) {
		if path == "" {
			path = "$"
		}
		x.rec(Action{Op: "keep_only", Path: path, Count: n})
	})
}

type pseudonymize struct {
	fields
	key string
}

func (t *pseudonymize) String() string {
	return fmt.Sprintf("pseudonymize (key %s): %s", t.key, t.fields)
}

func (t *pseudonymize) Apply(ed *event.Edit, x *run) error {
	if x.keys == nil {
		return errors.New("no pseudonymization keys loaded")
	}
	return t.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		var in []byte
		switch v.Kind {
		case event.Null:
			return nil
		case event.String:
			in = v.Text()
		case event.Number:
			// One person, one pseudonym: 42, 42.0, 4.2e1 and "42" are
			// the same id. Strings are taken as they are ("42.0" stays
			// "42.0"), so existing pseudonyms of string ids do not move.
			in = v.Raw
			if c, ok := scrub.CanonicalInt(v.Raw); ok {
				in = c
			}
		case event.Bool:
			in = v.Raw
		default:
			return &InputError{Reason: ReasonWrongType, Err: fmt.Errorf("pseudonymize %s: cannot pseudonymize a %s", path, v.Kind)}
		}
		out, err := x.ev.pseudonym(x.keys, t.key, in)
		if err != nil {
			return err
		}
		ed.Replace(r, out)
		x.rec(Action{Op: "pseudonymize", Path: path})
		return nil
	})
}

type truncateIP struct {
	fields
	v4, v6 int
}

func (t *truncateIP) String() string {
	return fmt.Sprintf("truncate_ip (/%d IPv4, /%d IPv6): %s", t.v4, t.v6, t.fields)
}

func (t *truncateIP) Apply(ed *event.Edit, x *run) error {
	return t.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		switch {
		case v.Kind == event.Null:
			return nil
		case v.Kind != event.String:
			return &InputError{Reason: ReasonWrongType, Err: fmt.Errorf("truncate_ip %s: a %s is not an IP address", path, v.Kind)}
		case len(v.Raw) == 2: // ""
			return nil
		}
		// An address needs no escaping: quotes around it make the string.
		start := len(x.ev.arena)
		out, err := appendTruncatedIP(append(x.ev.arena, '"'), v.Str(), t.v4, t.v6)
		if err != nil {
			x.ev.arena = x.ev.arena[:start]
			// The message must not echo the address: it is personal data.
			return &InputError{Reason: ReasonInvalidIP, Err: fmt.Errorf("truncate_ip %s: not an IP address", path)}
		}
		x.ev.arena = append(out, '"')
		ed.Replace(r, x.ev.since(start))
		x.rec(Action{Op: "truncate_ip", Path: path})
		return nil
	})
}

type roundGeo struct {
	fields
	decimals int
}

func (t *roundGeo) String() string {
	return fmt.Sprintf("round_geo (%d decimals): %s", t.decimals, t.fields)
}

// RoundCoordinate rounds v to decimals places, half away from zero on the
// decimal text so that negative coordinates round symmetrically, and
// formats it without trailing zeros.
func RoundCoordinate(v float64, decimals int) []byte {
	return appendCoordinate(nil, v, decimals)
}

// appendCoordinate appends RoundCoordinate(v, decimals) to dst.
func appendCoordinate(dst []byte, v float64, decimals int) []byte {
	// FormatFloat rounds the exact binary value correctly for any sign;
	// math.Round(v*10^d) would be wrong for values like 1.005 whose
	// product is not exact.
	start := len(dst)
	dst = strconv.AppendFloat(dst, v, 'f', decimals, 64)
	if bytes.IndexByte(dst[start:], '.') >= 0 {
		dst = bytes.TrimRight(bytes.TrimRight(dst, "0"), ".")
	}
	if string(dst[start:]) == "-0" {
		dst = append(dst[:start], '0')
	}
	return dst
}

func (t *roundGeo) Apply(ed *event.Edit, x *run) error {
	return t.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		if v.Kind == event.Null {
			return nil
		}
		if v.Kind != event.Number {
			return &InputError{Reason: ReasonWrongType, Err: fmt.Errorf("round_geo %s: a %s is not a coordinate", path, v.Kind)}
		}
		f, err := strconv.ParseFloat(string(v.Raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return &InputError{Reason: ReasonWrongType, Err: fmt.Errorf("round_geo %s: number out of range", path)}
		}
		start := len(x.ev.arena)
		x.ev.arena = appendCoordinate(x.ev.arena, f, t.decimals)
		ed.Replace(r, x.ev.since(start))
		x.rec(Action{Op: "round_geo", Path: path})
		return nil
	})
}

var timeUnits = map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}

type truncateTime struct {
	fields
	unit time.Duration
	name string
}

func (t *truncateTime) String() string {
	return fmt.Sprintf("truncate_time (to %s, UTC): %s", t.name, t.fields)
}

func (t *truncateTime) Apply(ed *event.Edit, x *run) error {
	return t.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		if v.Kind == event.Null {
			return nil
		}
		if v.Kind != event.String {
			return &InputError{Reason: ReasonWrongType, Err: fmt.Errorf("truncate_time %s: a %s is not a timestamp", path, v.Kind)}
		}
		ts, ok := x.ev.timestamp(v)
		if !ok {
			return &InputError{Reason: ReasonInvalidTimestamp, Err: fmt.Errorf("truncate_time %s: not an RFC 3339 timestamp", path)}
		}
		start := len(x.ev.arena)
		x.ev.arena = ts.UTC().Truncate(t.unit).AppendFormat(append(x.ev.arena, '"'), time.RFC3339)
		x.ev.arena = append(x.ev.arena, '"')
		ed.Replace(r, x.ev.since(start))
		x.rec(Action{Op: "truncate_time", Path: path})
		return nil
	})
}
