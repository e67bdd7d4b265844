package event

// Ref names one member of an object inside a Doc, as found by Edit.Each.
type Ref struct {
	obj int32 // object node
	mem int32 // index into Doc.members
}

// Index returns a number unique to the member within its Doc, below
// Doc.Members: a key for results computed once per member.
func (r Ref) Index() int { return int(r.mem) }

// Edit records changes to a Doc: removed members and replaced values. Many
// Edits can be made against one Doc (one per output), one after another; the
// Doc itself is never modified. Reset before each use.
type Edit struct {
	d       *Doc
	removed []bool   // per member
	repl    [][]byte // per member; nil means unchanged
	keyRepl [][]byte // per member: replacement key (quoted); nil means unchanged
	dirty   []bool   // per node; an object with a changed descendant
	refs    []Ref
	prefix  []byte // policy path (segments joined by ".") of the object KeepOnly visits
}

// Reset prepares e for a fresh set of edits against d.
func (e *Edit) Reset(d *Doc) {
	e.d = d
	e.removed = resize(e.removed, len(d.members))
	e.repl = resizeBytes(e.repl, len(d.members))
	e.keyRepl = resizeBytes(e.keyRepl, len(d.members))
	e.dirty = resize(e.dirty, len(d.nodes))
}

func resize(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	b = b[:n]
	clear(b)
	return b
}

func resizeBytes(b [][]byte, n int) [][]byte {
	if cap(b) < n {
		return make([][]byte, n)
	}
	b = b[:n]
	clear(b)
	return b
}

// Each calls fn for every live member that p matches, in document order.
// Members removed by earlier edits are not matched, and replaced values are
// leaves. Parse rejected duplicate keys, so a named segment matches at most
// one member per object.
func (e *Edit) Each(p Path, fn func(Ref) error) error {
	if len(e.d.nodes) == 0 || len(p) == 0 {
		return nil
	}
	e.refs = e.refs[:0]
	if err := e.collect(0, p); err != nil {
		return err
	}
	refs := e.refs
	for _, r := range refs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (e *Edit) collect(obj int32, p Path) error {
	d := e.d
	n := &d.nodes[obj]
	seg := p[0]
	for i := n.first; i < n.first+n.n; i++ {
		if e.removed[i] {
			continue
		}
		m := &d.members[i]
		if seg != "*" && !d.keyEquals(m, seg) {
			continue
		}
		if len(p) == 1 {
			e.refs = append(e.refs, Ref{obj: obj, mem: i})
		} else if e.repl[i] == nil && d.nodes[m.val].kind == Object {
			if err := e.collect(m.val, p[1:]); err != nil {
				return err
			}
		}
		if seg != "*" {
			break // no duplicates, so at most one match
		}
	}
	return nil
}

// Value returns the current value of the member r names.
func (e *Edit) Value(r Ref) Value {
	if b := e.repl[r.mem]; b != nil {
		return valueOf(b)
	}
	return e.d.valueAt(&e.d.nodes[e.d.members[r.mem].val])
}

func valueOf(b []byte) Value {
	k := Invalid
	switch {
	case len(b) == 0:
	case b[0] == '"':
		k = String
	case b[0] == '{':
		k = Object
	case b[0] == '[':
		k = Array
	case b[0] == 't' || b[0] == 'f':
		k = Bool
	case b[0] == 'n':
		k = Null
	default:
		k = Number
	}
	esc := false
	for _, c := range b {
		if c == '\\' {
			esc = true
			break
		}
	}
	return Value{Kind: k, Raw: b, esc: esc}
}

// Key returns the unescaped key of the member r names.
func (e *Edit) Key(r Ref) string { return e.d.key(&e.d.members[r.mem]) }

// Remove deletes the member r names from the output.
func (e *Edit) Remove(r Ref) {
	e.removed[r.mem] = true
	e.touch(r.obj)
}

// Replace sets the value of the member r names to raw, which must be one
// valid JSON value.
func (e *Edit) Replace(r Ref, raw []byte) {
	e.repl[r.mem] = raw
	e.touch(r.obj)
}

// Replaced reports whether an earlier edit replaced the value of the
// member r names.
func (e *Edit) Replaced(r Ref) bool { return e.repl[r.mem] != nil }

// Kept reports whether the member r names is still in the edited document
// with its original value: neither it nor a member above it removed or
// replaced (the kept of EachOriginal and WalkOriginal).
func (e *Edit) Kept(r Ref) bool {
	d := e.d
	for {
		if e.removed[r.mem] || e.repl[r.mem] != nil {
			return false
		}
		n := &d.nodes[r.obj]
		if n.owner < 0 {
			return true
		}
		r = Ref{obj: n.parent, mem: n.owner}
	}
}

// Original returns the value at p in the unedited document (see Doc.Get).
func (e *Edit) Original(p Path) (Value, bool, error) { return e.d.Get(p) }

// Rewrite visits what is left of the member r names: when its value is an
// object, every live member below it, depth first, in document order.
// keyFn is called with each such member's key (unescaped) and its position
// in its object; a non-nil result (one JSON string, quoted) replaces the
// key. valFn is called with every value that is not an object (arrays
// whole) and the member holding it; a non-nil result (one JSON value)
// replaces it. Values replaced
// by an earlier edit are the result of a decision and are not visited
// again. The key of r itself is left alone: it is the path the caller
// asked for. keyFn also gets the member (its Ref), for callers that
// remember results per member.
func (e *Edit) Rewrite(r Ref, keyFn func(r Ref, key []byte, pos int) []byte, valFn func(r Ref, v Value) []byte) {
	d := e.d
	m := &d.members[r.mem]
	switch {
	case e.repl[r.mem] != nil:
	case d.nodes[m.val].kind == Object:
		e.rewriteObject(m.val, keyFn, valFn)
	default:
		if out := valFn(r, e.Value(r)); out != nil {
			e.Replace(r, out)
		}
	}
}

func (e *Edit) rewriteObject(obj int32, keyFn func(Ref, []byte, int) []byte, valFn func(Ref, Value) []byte) {
	d := e.d
	n := &d.nodes[obj]
	var kbuf []byte
	for i := n.first; i < n.first+n.n; i++ {
		if e.removed[i] {
			continue
		}
		m := &d.members[i]
		key := d.raw[m.keyStart+1 : m.keyEnd-1]
		if m.keyEsc {
			kbuf = append(kbuf[:0], d.key(m)...)
			key = kbuf
		}
		if out := keyFn(Ref{obj: obj, mem: i}, key, int(i-n.first)); out != nil {
			e.keyRepl[i] = out
			e.touch(obj)
		}
		switch {
		case e.repl[i] != nil:
		case d.nodes[m.val].kind == Object:
			e.rewriteObject(m.val, keyFn, valFn)
		default:
			r := Ref{obj: obj, mem: i}
			if out := valFn(r, e.Value(r)); out != nil {
				e.Replace(r, out)
			}
		}
	}
}

func (e *Edit) touch(obj int32) {
	for o := obj; o >= 0 && !e.dirty[o]; o = e.d.nodes[o].parent {
		e.dirty[o] = true
	}
}

// KeepSet is a compiled allow-list for KeepOnly: a trie of path segments
// in which every "*" branch has been merged into its named siblings, so
// that each member is matched against at most one node.
type KeepSet struct {
	root *keepNode
	// paths holds the spelling of every object path keep can report
	// (bounded: see maxKeepPaths), so that reporting one allocates nothing.
	paths map[string]string
}

// maxKeepPaths bounds the path spellings a KeepSet keeps ready; past it
// they are built when reported.
const maxKeepPaths = 4096

type keepNode struct {
	seg      string // the path segment naming this node in its parent
	whole    bool   // keep this member and everything below it
	children map[string]*keepNode
	star     *keepNode
}

// NewKeepSet compiles paths into a KeepSet.
func NewKeepSet(paths []Path) *KeepSet {
	root := &keepNode{}
	for _, p := range paths {
		n := root
		for _, seg := range p {
			if seg == "*" {
				if n.star == nil {
					n.star = &keepNode{seg: "*"}
				}
				n = n.star
				continue
			}
			if n.children == nil {
				n.children = map[string]*keepNode{}
			}
			c := n.children[seg]
			if c == nil {
				c = &keepNode{seg: seg}
				n.children[seg] = c
			}
			n = c
		}
		n.whole = true
	}
	root.merge()
	ks := &KeepSet{root: root, paths: map[string]string{"": ""}}
	ks.spell(root, "")
	return ks
}

// spell records the paths of the objects below n (whose path is prefix).
func (ks *KeepSet) spell(n *keepNode, prefix string) {
	for _, c := range n.children {
		ks.spellChild(c, prefix)
	}
	if n.star != nil {
		ks.spellChild(n.star, prefix)
	}
}

func (ks *KeepSet) spellChild(c *keepNode, prefix string) {
	if c.whole || len(ks.paths) >= maxKeepPaths {
		return
	}
	p := c.seg
	if prefix != "" {
		p = prefix + "." + c.seg
	}
	if _, seen := ks.paths[p]; seen {
		return
	}
	ks.paths[p] = p
	ks.spell(c, p)
}

// child returns the node for key and the policy segment that matched it:
// the named child, else the wildcard.
func (n *keepNode) child(key []byte) (*keepNode, string) {
	if c, ok := n.children[string(key)]; ok {
		return c, c.seg
	}
	return n.star, "*"
}

// merge folds every star subtree into the named siblings.
func (n *keepNode) merge() {
	if n == nil {
		return
	}
	if n.star != nil {
		n.star.merge()
		for k, c := range n.children {
			n.children[k] = union(c, n.star)
		}
	}
	for _, c := range n.children {
		c.merge()
	}
}

func union(a, b *keepNode) *keepNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	u := &keepNode{seg: a.seg, whole: a.whole || b.whole, star: union(a.star, b.star)}
	if len(a.children)+len(b.children) > 0 {
		u.children = map[string]*keepNode{}
		for k, c := range a.children {
			u.children[k] = c
		}
		for k, c := range b.children {
			u.children[k] = union(u.children[k], c)
		}
	}
	return u
}

// KeepOnly removes every member that is neither on one of the set's paths
// nor below one of them: an allow-list. An object that lies on a path but
// whose members are all removed is kept as {}.
//
// removedFn, if not nil, is called once for every object that lost
// members, with the object's path spelled with the set's own segments ("*"
// where a wildcard matched, "" for the top level) and the number removed.
// It never sees a key of the document: removed keys are input, and may be
// personal data.
func (e *Edit) KeepOnly(ks *KeepSet, removedFn func(path string, n int)) error {
	if len(e.d.nodes) == 0 {
		return nil
	}
	e.prefix = e.prefix[:0]
	return e.keep(ks, 0, ks.root, removedFn)
}

func (e *Edit) keep(ks *KeepSet, obj int32, kn *keepNode, removedFn func(string, int)) error {
	d := e.d
	n := &d.nodes[obj]
	removed := 0
	for i := n.first; i < n.first+n.n; i++ {
		if e.removed[i] {
			continue
		}
		m := &d.members[i]
		key := d.raw[m.keyStart+1 : m.keyEnd-1]
		if m.keyEsc {
			key = []byte(d.key(m))
		}
		c, seg := kn.child(key)
		switch {
		case c != nil && c.whole:
		case c != nil && e.repl[i] == nil && d.nodes[m.val].kind == Object:
			mark := len(e.prefix)
			if mark > 0 {
				e.prefix = append(e.prefix, '.')
			}
			e.prefix = append(e.prefix, seg...)
			err := e.keep(ks, m.val, c, removedFn)
			e.prefix = e.prefix[:mark]
			if err != nil {
				return err
			}
		default:
			removed++
			e.Remove(Ref{obj: obj, mem: i})
		}
	}
	if removed > 0 && removedFn != nil {
		p, ok := ks.paths[string(e.prefix)]
		if !ok {
			p = string(e.prefix)
		}
		removedFn(p, removed)
	}
	return nil
}

// AppendTo appends the edited document to dst as compact-where-edited JSON:
// untouched subtrees are copied byte for byte.
func (e *Edit) AppendTo(dst []byte) []byte {
	if len(e.d.nodes) == 0 {
		return dst
	}
	return e.appendObject(dst, 0)
}

func (e *Edit) appendObject(dst []byte, obj int32) []byte {
	d := e.d
	n := &d.nodes[obj]
	if !e.dirty[obj] {
		return append(dst, d.raw[n.start:n.end]...)
	}
	dst = append(dst, '{')
	first := true
	for i := n.first; i < n.first+n.n; i++ {
		if e.removed[i] {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		m := &d.members[i]
		if k := e.keyRepl[i]; k != nil {
			dst = append(dst, k...)
		} else {
			dst = append(dst, d.raw[m.keyStart:m.keyEnd]...)
		}
		dst = append(dst, ':')
		switch v := &d.nodes[m.val]; {
		case e.repl[i] != nil:
			dst = append(dst, e.repl[i]...)
		case v.kind == Object:
			dst = e.appendObject(dst, m.val)
		default:
			dst = append(dst, d.raw[v.start:v.end]...)
		}
	}
	return append(dst, '}')
}

// EachOriginal calls fn for every member of the unedited document that p
// matches (wildcards included), removed ones too, with its original value
// and whether it is kept: still present in the edited document with its
// original value (neither it nor an object above it removed or replaced).
// Taint tracking reads what an output removed through it.
func (e *Edit) EachOriginal(p Path, fn func(v Value, kept bool)) {
	if len(e.d.nodes) == 0 || len(p) == 0 {
		return
	}
	e.eachOriginal(0, p, true, fn)
}

func (e *Edit) eachOriginal(obj int32, p Path, kept bool, fn func(Value, bool)) {
	d := e.d
	n := &d.nodes[obj]
	seg := p[0]
	for i := n.first; i < n.first+n.n; i++ {
		m := &d.members[i]
		if seg != "*" && !d.keyEquals(m, seg) {
			continue
		}
		k := kept && !e.removed[i] && e.repl[i] == nil
		if len(p) == 1 {
			fn(d.valueAt(&d.nodes[m.val]), k)
		} else if d.nodes[m.val].kind == Object {
			e.eachOriginal(m.val, p[1:], k, fn)
		}
		if seg != "*" {
			break
		}
	}
}

// WalkOriginal calls fn for every member of the unedited document's
// objects, depth first in document order (members of objects inside arrays
// are not visited: paths never enter arrays), with its depth (0 for the
// top level), the member (its Ref), its key unescaped (valid during the
// call only), its original value and whether it is kept (see
// EachOriginal).
func (e *Edit) WalkOriginal(fn func(depth int, r Ref, key []byte, v Value, kept bool)) {
	if len(e.d.nodes) == 0 {
		return
	}
	var kbuf []byte
	e.walkOriginal(0, 0, true, &kbuf, fn)
}

func (e *Edit) walkOriginal(obj int32, depth int, kept bool, kbuf *[]byte, fn func(int, Ref, []byte, Value, bool)) {
	d := e.d
	n := &d.nodes[obj]
	for i := n.first; i < n.first+n.n; i++ {
		m := &d.members[i]
		key := d.raw[m.keyStart+1 : m.keyEnd-1]
		if m.keyEsc {
			*kbuf = append((*kbuf)[:0], d.key(m)...)
			key = *kbuf
		}
		k := kept && !e.removed[i] && e.repl[i] == nil
		fn(depth, Ref{obj: obj, mem: i}, key, d.valueAt(&d.nodes[m.val]), k)
		if d.nodes[m.val].kind == Object {
			e.walkOriginal(m.val, depth+1, k, kbuf, fn)
		}
	}
}
