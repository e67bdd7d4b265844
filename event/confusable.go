package event

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrConfusableKey is returned by CheckKeys for a key that a KeyGuard's
// paths do not name but that equals one of their segments under FoldKey.
var ErrConfusableKey = errors.New("confusable key")

// FoldKey returns the form under which keys are confusable: invisible
// characters (default-ignorable code points: format characters such as
// U+200B, variation selectors) removed, Unicode NFKC normalized, case
// folded, normalized again, and surrounding white space trimmed. "UserId",
// "ｕｓｅｒＩｄ", "userId " and "user\u200bId" all fold to "userid".
func FoldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.TrimSpace(strings.ToLower(s))
	}
	var b strings.Builder
	for _, r := range s {
		if !ignorable(r) {
			b.WriteRune(r)
		}
	}
	t := norm.NFKC.String(b.String())
	t = cases.Fold().String(t) // a Caser is stateful: one per call
	t = norm.NFKC.String(t)
	return strings.TrimFunc(t, func(r rune) bool { return unicode.IsSpace(r) || ignorable(r) })
}

func ignorable(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// KeyGuard holds the paths a policy reads or edits, for CheckKeys.
type KeyGuard struct{ root *guardNode }

type guardNode struct {
	children map[string]*guardNode // segments, as written
	folded   map[string]bool       // FoldKey of the segments
	star     *guardNode
}

// NewKeyGuard compiles paths into a KeyGuard.
func NewKeyGuard(paths []Path) *KeyGuard {
	root := &guardNode{}
	for _, p := range paths {
		n := root
		for _, seg := range p {
			if seg == "*" {
				if n.star == nil {
					n.star = &guardNode{}
				}
				n = n.star
				continue
			}
			if n.children == nil {
				n.children = map[string]*guardNode{}
				n.folded = map[string]bool{}
			}
			c := n.children[seg]
			if c == nil {
				c = &guardNode{}
				n.children[seg] = c
				n.folded[FoldKey(seg)] = true
			}
			n = c
		}
	}
	return &KeyGuard{root: root}
}

// CheckKeys walks the objects on g's paths and fails with
// ErrConfusableKey when a member's key is not one of the segments named at
// its level but folds (FoldKey) to one of them: "UserId" beside a policy
// that names "userId", "context.IP" beside "context.ip". Such a key would
// dodge a policy that matches keys exactly while a case-insensitive
// consumer reads it as the field the policy meant. The error does not
// quote the key.
func (d *Doc) CheckKeys(g *KeyGuard) error {
	if len(d.nodes) == 0 || g == nil {
		return nil
	}
	return d.guard(0, g.root)
}

func (d *Doc) guard(obj int32, gn *guardNode) error {
	n := &d.nodes[obj]
	for i := n.first; i < n.first+n.n; i++ {
		m := &d.members[i]
		key := d.raw[m.keyStart+1 : m.keyEnd-1]
		if m.keyEsc {
			key = []byte(d.key(m))
		}
		c := gn.children[string(key)]
		if c == nil && len(gn.folded) > 0 && foldedIn(gn.folded, key) {
			return fmt.Errorf("%w: a key at depth %d folds to a path segment the policy names", ErrConfusableKey, d.nodeDepth(obj)+1)
		}
		if d.nodes[m.val].kind != Object {
			continue
		}
		for _, next := range [2]*guardNode{c, gn.star} {
			if next != nil && (next.children != nil || next.star != nil) {
				if err := d.guard(m.val, next); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// foldedIn reports whether FoldKey(key) is in set, without allocating for
// short ASCII keys.
func foldedIn(set map[string]bool, key []byte) bool {
	var buf [64]byte
	if len(key) > len(buf) {
		return set[FoldKey(string(key))]
	}
	for i, c := range key {
		if c >= 0x80 {
			return set[FoldKey(string(key))]
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	s, e := 0, len(key)
	for s < e && isASCIISpace(buf[s]) {
		s++
	}
	for e > s && isASCIISpace(buf[e-1]) {
		e--
	}
	return set[string(buf[s:e])]
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// nodeDepth returns how deep object node i lies (0 for the root).
func (d *Doc) nodeDepth(i int32) int {
	n := 0
	for p := d.nodes[i].parent; p >= 0; p = d.nodes[p].parent {
		n++
	}
	return n
}
