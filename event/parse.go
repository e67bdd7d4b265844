// Package event parses and edits JSON tracking events (Segment-spec shaped)
// without decoding them into maps.
//
// Parse validates the whole document once and records, for every object,
// where each member's key and value lie in the original bytes. Edits (remove a
// member, replace a value) are recorded beside the parsed document and
// applied by Encode, which copies every untouched subtree verbatim. A document
// can be edited several times, once per output, with independent Edits.
//
// Parse accepts I-JSON (RFC 7493) objects only, as far as keys go.
// Duplicate keys are the classic way to smuggle a field past a filter: one
// parser strips the first "ip", the consumer reads the second. Every object
// in the document, inside arrays too, is therefore checked for duplicate
// keys (after unescaping) and Parse fails with ErrDuplicateKey instead of
// guessing which copy is meant. A key that cannot be a field name (an
// unpaired surrogate escape such as "\udc00email", a NUL or another control
// character, escaped or not) fails with ErrInvalidKey: such keys exist only
// to be read differently by different parsers.
package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors returned by Parse and by lookups. They are matched with errors.Is.
var (
	ErrSyntax       = errors.New("invalid json")
	ErrNotObject    = errors.New("event is not a json object")
	ErrTooDeep      = errors.New("json nesting too deep")
	ErrDuplicateKey = errors.New("duplicate key")
	ErrInvalidKey   = errors.New("invalid key")
	ErrWrongType    = errors.New("wrong type")
)

// MaxDepth is the deepest nesting of objects and arrays Parse accepts.
const MaxDepth = 64

// Kind is the JSON type of a value.
type Kind uint8

// The JSON kinds.
const (
	Invalid Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

func (k Kind) String() string {
	switch k {
	case Object:
		return "object"
	case Array:
		return "array"
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case Null:
		return "null"
	}
	return "invalid"
}

type node struct {
	kind       Kind
	start, end int32 // value bytes in raw
	first, n   int32 // object members: d.members[first:first+n]
	parent     int32 // enclosing object node, -1 for the root
	owner      int32 // the member (index into d.members) holding it, -1 for the root
	escapes    bool  // string value contains backslash escapes
}

type member struct {
	keyStart, keyEnd int32 // key bytes including quotes
	keyEsc           bool
	val              int32 // index into d.nodes
}

// Doc is a parsed JSON object. It is not safe for concurrent use; Reset and
// reuse it (or take one from a sync.Pool) to avoid allocations.
type Doc struct {
	raw     []byte
	nodes   []node
	members []member
	stack   []member
	depth   int
	pos     int
	keyEsc  bool // some key anywhere contains an escape
	// keys is a Bloom filter of every unescaped key anywhere (MayHaveKey).
	keys    [4]uint64
	strHigh bool // the last string scanned has bytes >= 0x7f
}

// Parse validates raw as a JSON object and indexes it. raw is retained and
// must not be modified while d is in use.
func (d *Doc) Parse(raw []byte) error {
	d.raw = raw
	d.nodes = d.nodes[:0]
	d.members = d.members[:0]
	d.stack = d.stack[:0]
	d.depth = 0
	d.pos = 0
	d.keyEsc = false
	d.keys = [4]uint64{}
	d.skipWS()
	if d.pos >= len(raw) {
		return fmt.Errorf("%w: empty input", ErrSyntax)
	}
	if raw[d.pos] != '{' {
		if _, err := d.parseValue(); err != nil {
			return err
		}
		return ErrNotObject
	}
	if _, err := d.parseValue(); err != nil {
		return err
	}
	d.skipWS()
	if d.pos != len(raw) {
		return d.syntaxErr("trailing data after object")
	}
	return nil
}

// Members returns how many object members the document has: Ref.Index
// is below it.
func (d *Doc) Members() int { return len(d.members) }

// Raw returns the bytes the document was parsed from.
func (d *Doc) Raw() []byte { return d.raw }

func (d *Doc) syntaxErr(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, what, d.pos)
}

func (d *Doc) skipWS() {
	for d.pos < len(d.raw) {
		switch d.raw[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// parseValue parses the value at d.pos. Objects are indexed as nodes; values
// inside arrays are validated but not indexed (paths never enter arrays), in
// which case -1 is returned.
func (d *Doc) parseValue() (int32, error) {
	return d.value(true)
}

func (d *Doc) value(index bool) (int32, error) {
	if d.pos >= len(d.raw) {
		return -1, d.syntaxErr("unexpected end of input")
	}
	start := d.pos
	switch c := d.raw[d.pos]; {
	case c == '{':
		return d.object(index)
	case c == '[':
		return d.array(index)
	case c == '"':
		esc, err := d.str()
		if err != nil {
			return -1, err
		}
		return d.leaf(index, String, start, esc), nil
	case c == 't':
		return d.literal(index, "true", Bool)
	case c == 'f':
		return d.literal(index, "false", Bool)
	case c == 'n':
		return d.literal(index, "null", Null)
	case c == '-' || (c >= '0' && c <= '9'):
		if err := d.number(); err != nil {
			return -1, err
		}
		return d.leaf(index, Number, start, false), nil
	default:
		return -1, d.syntaxErr(fmt.Sprintf("unexpected character %q", c))
	}
}

func (d *Doc) leaf(index bool, k Kind, start int, esc bool) int32 {
	if !index {
		return -1
	}
	d.nodes = append(d.nodes, node{kind: k, start: int32(start), end: int32(d.pos), escapes: esc})
	return int32(len(d.nodes) - 1)
}

func (d *Doc) literal(index bool, lit string, k Kind) (int32, error) {
	start := d.pos
	if len(d.raw)-d.pos < len(lit) || string(d.raw[d.pos:d.pos+len(lit)]) != lit {
		return -1, d.syntaxErr("invalid literal")
	}
	d.pos += len(lit)
	return d.leaf(index, k, start, false), nil
}

func (d *Doc) number() error {
	p := d.pos
	raw := d.raw
	if p < len(raw) && raw[p] == '-' {
		p++
	}
	switch {
	case p < len(raw) && raw[p] == '0':
		p++
	case p < len(raw) && raw[p] >= '1' && raw[p] <= '9':
		for p < len(raw) && raw[p] >= '0' && raw[p] <= '9' {
			p++
		}
	default:
		d.pos = p
		return d.syntaxErr("invalid number")
	}
	if p < len(raw) && raw[p] == '.' {
		p++
		q := p
		for p < len(raw) && raw[p] >= '0' && raw[p] <= '9' {
			p++
		}
		if p == q {
			d.pos = p
			return d.syntaxErr("invalid number")
		}
	}
	if p < len(raw) && (raw[p] == 'e' || raw[p] == 'E') {
		p++
		if p < len(raw) && (raw[p] == '+' || raw[p] == '-') {
			p++
		}
		q := p
		for p < len(raw) && raw[p] >= '0' && raw[p] <= '9' {
			p++
		}
		if p == q {
			d.pos = p
			return d.syntaxErr("invalid number")
		}
	}
	d.pos = p
	return nil
}

// str scans a string starting at the opening quote and reports whether it
// contains escapes.
func (d *Doc) str() (bool, error) {
	raw := d.raw
	p := d.pos + 1
	esc := false
	utf := false
	high := false
	for {
		for p < len(raw) && !strSpecial[raw[p]] {
			p++
		}
		if p >= len(raw) {
			d.pos = p
			return false, d.syntaxErr("unterminated string")
		}
		c := raw[p]
		switch {
		case c == '"':
			if utf && !utf8.Valid(raw[d.pos+1:p]) {
				return false, d.syntaxErr("invalid utf-8 in string")
			}
			d.pos = p + 1
			d.strHigh = high
			return esc, nil
		case c == '\\':
			esc = true
			if p+1 >= len(raw) {
				d.pos = p
				return false, d.syntaxErr("unterminated escape")
			}
			switch raw[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+6 > len(raw) || !isHex4(raw[p+2:p+6]) {
					d.pos = p
					return false, d.syntaxErr("invalid \\u escape")
				}
				p += 6
			default:
				d.pos = p
				return false, d.syntaxErr("invalid escape")
			}
		case c < 0x20:
			d.pos = p
			return false, d.syntaxErr("control character in string")
		default:
			if c >= 0x7f {
				high = true
				utf = utf || c >= 0x80
			}
			p++
		}
	}
}

// strSpecial marks the bytes a string scan must look at: the closing
// quote, escapes, control characters and non-ASCII bytes; the others are
// skipped in a tight loop.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := 0x7f; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (d *Doc) enter() error {
	d.depth++
	if d.depth > MaxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxDepth)
	}
	return nil
}

func (d *Doc) array(index bool) (int32, error) {
	start := d.pos
	if err := d.enter(); err != nil {
		return -1, err
	}
	d.pos++ // [
	d.skipWS()
	if d.pos < len(d.raw) && d.raw[d.pos] == ']' {
		d.pos++
	} else {
		for {
			d.skipWS()
			if _, err := d.value(false); err != nil {
				return -1, err
			}
			d.skipWS()
			if d.pos >= len(d.raw) {
				return -1, d.syntaxErr("unterminated array")
			}
			if d.raw[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.raw[d.pos] == ']' {
				d.pos++
				break
			}
			return -1, d.syntaxErr("expected , or ] in array")
		}
	}
	d.depth--
	return d.leaf(index, Array, start, false), nil
}

func (d *Doc) object(index bool) (int32, error) {
	start := d.pos
	if err := d.enter(); err != nil {
		return -1, err
	}
	var self int32 = -1
	if index {
		d.nodes = append(d.nodes, node{kind: Object, start: int32(start), parent: -1, owner: -1})
		self = int32(len(d.nodes) - 1)
	}
	base := len(d.stack)
	d.pos++ // {
	d.skipWS()
	if d.pos < len(d.raw) && d.raw[d.pos] == '}' {
		d.pos++
	} else {
		for {
			d.skipWS()
			if d.pos >= len(d.raw) || d.raw[d.pos] != '"' {
				return -1, d.syntaxErr("expected string key")
			}
			ks := d.pos
			esc, err := d.str()
			if err != nil {
				return -1, err
			}
			ke := d.pos
			d.keyEsc = d.keyEsc || esc
			if !esc {
				d.noteKey(d.raw[ks+1 : ke-1])
			}
			if (esc || d.strHigh) && !validKey(d.raw[ks+1:ke-1]) {
				d.pos = ks
				return -1, fmt.Errorf("%w: unpaired surrogate or control character in a key at byte %d", ErrInvalidKey, ks)
			}
			d.skipWS()
			if d.pos >= len(d.raw) || d.raw[d.pos] != ':' {
				return -1, d.syntaxErr("expected : after key")
			}
			d.pos++
			d.skipWS()
			v, err := d.value(index)
			if err != nil {
				return -1, err
			}
			d.stack = append(d.stack, member{keyStart: int32(ks), keyEnd: int32(ke), keyEsc: esc, val: v})
			d.skipWS()
			if d.pos >= len(d.raw) {
				return -1, d.syntaxErr("unterminated object")
			}
			if d.raw[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.raw[d.pos] == '}' {
				d.pos++
				break
			}
			return -1, d.syntaxErr("expected , or } in object")
		}
	}
	d.depth--
	if d.hasDuplicate(d.stack[base:]) {
		d.pos = start
		return -1, fmt.Errorf("%w in the object at byte %d", ErrDuplicateKey, start)
	}
	if !index {
		d.stack = d.stack[:base]
		return -1, nil
	}
	n := &d.nodes[self]
	n.end = int32(d.pos)
	n.first = int32(len(d.members))
	n.n = int32(len(d.stack) - base)
	for k, m := range d.stack[base:] {
		d.nodes[m.val].parent = self
		d.nodes[m.val].owner = n.first + int32(k)
	}
	d.members = append(d.members, d.stack[base:]...)
	d.stack = d.stack[:base]
	return self, nil
}

// MayHaveKey reports whether some object in the document may have a member
// named name: false only when no key is escaped and no key equals name.
// It lets callers skip lookups cheaply: it reads a filter of the keys Parse
// saw, not the document.
func (d *Doc) MayHaveKey(name string) bool {
	if d.keyEsc {
		return true
	}
	a, b := keyBits(name)
	return d.keys[a>>6]&(1<<(a&63)) != 0 && d.keys[b>>6]&(1<<(b&63)) != 0
}

func (d *Doc) noteKey(k []byte) {
	a, b := keyBits(k)
	d.keys[a>>6] |= 1 << (a & 63)
	d.keys[b>>6] |= 1 << (b & 63)
}

// keyBits returns the two filter bits of key k: a hash of its length and
// its first, middle and last bytes (keys are short; two bits in 256 keep
// false positives rare for the few dozen keys of an event).
func keyBits[T string | []byte](k T) (uint8, uint8) {
	h := uint32(len(k)) * 0x9e3779b1
	if n := len(k); n > 0 {
		h ^= uint32(k[0]) | uint32(k[n/2])<<8 | uint32(k[n-1])<<16
		h *= 0x85ebca6b
		h ^= h >> 15
		h *= 0xc2b2ae35
		h ^= h >> 13
	}
	return uint8(h), uint8(h >> 8)
}

// keyEquals reports whether member m's key, unescaped, equals name.
func (d *Doc) keyEquals(m *member, name string) bool {
	k := d.raw[m.keyStart+1 : m.keyEnd-1]
	if !m.keyEsc {
		return string(k) == name
	}
	return unescape(nil, k) == name
}

// key returns member m's key, unescaped.
func (d *Doc) key(m *member) string {
	k := d.raw[m.keyStart+1 : m.keyEnd-1]
	if !m.keyEsc {
		return string(k)
	}
	return unescape(nil, k)
}

// hasDuplicate reports whether two of ms have the same key, unescaped.
func (d *Doc) hasDuplicate(ms []member) bool {
	if len(ms) < 2 {
		return false
	}
	esc := false
	for i := range ms {
		esc = esc || ms[i].keyEsc
	}
	raw := d.raw
	if !esc && len(ms) <= 16 {
		// Without escapes, equal keys are equal bytes.
		for a := 1; a < len(ms); a++ {
			ka := raw[ms[a].keyStart:ms[a].keyEnd]
			for b := 0; b < a; b++ {
				if string(ka) == string(raw[ms[b].keyStart:ms[b].keyEnd]) {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(ms))
	for i := range ms {
		k := d.key(&ms[i])
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// validKey reports whether a key's body (without quotes, validated by
// str) is a usable field name: every \u escape decodes to a Unicode scalar
// value (surrogates only in pairs), and no character is a control
// character (C0 including NUL, DEL, C1), escaped or raw.
func validKey(body []byte) bool {
	for p := 0; p < len(body); {
		c := body[p]
		switch {
		case c == '\\':
			if body[p+1] != 'u' {
				p += 2 // \" \\ \/ are printable; \b \f \n \r \t are controls
				if e := body[p-1]; e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't' {
					return false
				}
				continue
			}
			r := hex4(body[p+2 : p+6])
			p += 6
			switch {
			case r >= 0xd800 && r < 0xdc00:
				if p+6 > len(body) || body[p] != '\\' || body[p+1] != 'u' {
					return false
				}
				if lo := hex4(body[p+2 : p+6]); lo < 0xdc00 || lo > 0xdfff {
					return false
				}
				p += 6
			case r >= 0xdc00 && r <= 0xdfff:
				return false
			case isControl(r):
				return false
			}
		case c < 0x80:
			if c == 0x7f {
				return false
			}
			p++
		default:
			r, n := utf8.DecodeRune(body[p:])
			if isControl(r) {
				return false
			}
			p += n
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
