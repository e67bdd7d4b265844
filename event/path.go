package event

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Path addresses members of nested objects, written with dots:
// "context.page.url". A "*" segment matches every member of one object level.
// Paths never descend into arrays; an array is a value like any other.
type Path []string

// ParsePath parses a dotted path. Empty segments are an error.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, fmt.Errorf("empty path")
	}
	p := Path(strings.Split(s, "."))
	for _, seg := range p {
		if seg == "" {
			return nil, fmt.Errorf("path %q has an empty segment", s)
		}
		if strings.Contains(seg, "*") && seg != "*" {
			return nil, fmt.Errorf("path %q: '*' must be a whole segment", s)
		}
	}
	return p, nil
}

// MustPath is ParsePath for literals known to be valid; it panics otherwise.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (p Path) String() string { return strings.Join(p, ".") }

// HasWildcard reports whether any segment is "*".
func (p Path) HasWildcard() bool {
	for _, s := range p {
		if s == "*" {
			return true
		}
	}
	return false
}

// Value is a JSON value inside a document: its kind and its raw bytes.
type Value struct {
	Kind Kind
	Raw  []byte
	esc  bool
}

// Str returns a string value's text, unescaped. For other kinds it returns
// the raw JSON text.
func (v Value) Str() string {
	if v.Kind != String {
		return string(v.Raw)
	}
	inner := v.Raw[1 : len(v.Raw)-1]
	if !v.esc {
		return string(inner)
	}
	return unescape(nil, inner)
}

// Text returns a string value's text as bytes, unescaped; without escapes
// it aliases the document and must not be modified.
func (v Value) Text() []byte {
	if v.Kind == String && !v.esc {
		return v.Raw[1 : len(v.Raw)-1]
	}
	return []byte(v.Str())
}

// unescape decodes the body of a JSON string (without quotes). The input
// has been validated by Parse, so decoding cannot fail.
func unescape(_ []byte, body []byte) string {
	q := make([]byte, 0, len(body)+2)
	q = append(q, '"')
	q = append(q, body...)
	q = append(q, '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(body)
	}
	return s
}

func (d *Doc) valueAt(n *node) Value {
	return Value{Kind: n.kind, Raw: d.raw[n.start:n.end], esc: n.escapes}
}

// Get returns the value at a path without wildcards. found is false when a
// segment is missing or a non-object lies on the way. err is always nil:
// Parse rejected duplicate keys; it stays for callers' sake.
func (d *Doc) Get(p Path) (v Value, found bool, err error) {
	n, found, err := d.resolve(p)
	if !found || err != nil {
		return Value{}, false, err
	}
	return d.valueAt(&d.nodes[n]), true, nil
}

// resolve returns the node at p; see Get.
func (d *Doc) resolve(p Path) (int32, bool, error) {
	if len(d.nodes) == 0 {
		return -1, false, nil
	}
	cur := int32(0)
	for _, seg := range p {
		n := &d.nodes[cur]
		if n.kind != Object {
			return -1, false, nil
		}
		next := int32(-1)
		for i := n.first; i < n.first+n.n; i++ {
			if d.keyEquals(&d.members[i], seg) {
				next = d.members[i].val
				break
			}
		}
		if next < 0 {
			return -1, false, nil
		}
		cur = next
	}
	return cur, true, nil
}

// GetString returns the string at p. found is false when the path is absent
// or null; a present value of another kind is ErrWrongType.
func (d *Doc) GetString(p Path) (s string, found bool, err error) {
	v, found, err := d.getString(p)
	if !found {
		return "", false, err
	}
	return v.Str(), true, nil
}

// GetText is GetString with the text as bytes (Value.Text: it aliases the
// document unless the string has escapes, and must not be modified).
func (d *Doc) GetText(p Path) (b []byte, found bool, err error) {
	v, found, err := d.getString(p)
	if !found {
		return nil, false, err
	}
	return v.Text(), true, nil
}

func (d *Doc) getString(p Path) (Value, bool, error) {
	v, ok, err := d.Get(p)
	if err != nil || !ok || v.Kind == Null {
		return Value{}, false, err
	}
	if v.Kind != String {
		return Value{}, false, fmt.Errorf("%w: %s is a %s, want string", ErrWrongType, p, v.Kind)
	}
	return v, true, nil
}

// EachMember calls fn for every member of the object at p, in document
// order. found is false when p is absent or null; a value of another kind
// is ErrWrongType.
func (d *Doc) EachMember(p Path, fn func(key string, v Value) error) (found bool, err error) {
	obj, ok, err := d.resolve(p)
	if err != nil || !ok || d.nodes[obj].kind == Null {
		return false, err
	}
	n := &d.nodes[obj]
	if n.kind != Object {
		return true, fmt.Errorf("%w: %s is a %s, want object", ErrWrongType, p, n.kind)
	}
	for i := n.first; i < n.first+n.n; i++ {
		m := &d.members[i]
		if err := fn(d.key(m), d.valueAt(&d.nodes[m.val])); err != nil {
			return true, err
		}
	}
	return true, nil
}
