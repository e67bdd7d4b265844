package event

import "fmt"

// Ref names one member of an object inside a Doc, as found by Edit.Each.
type Ref struct {
	obj int32 // object node
	mem int32 // index into Doc.members
}

// Edit records changes to a Doc: removed members and replaced values. Many
// Edits can be made against one Doc (one per output), one after another; the
// Doc itself is never modified. Reset before each use.
type Edit struct {
	d       *Doc
	removed []bool   // per member
	repl    [][]byte // per member; nil means unchanged
	dirty   []bool   // per node; an object with a changed descendant
	refs    []Ref
	path    []string
}

// Reset prepares e for a fresh set of edits against d.
func (e *Edit) Reset(d *Doc) {
	e.d = d
	e.removed = resize(e.removed, len(d.members))
	e.repl = resizeBytes(e.repl, len(d.members))
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

// Doc returns the document being edited.
func (e *Edit) Doc() *Doc { return e.d }

// Each calls fn for every live member that p matches, in document order.
// Members removed by earlier edits are not matched, and replaced values are
// leaves. An object on the way that has duplicate keys aborts the walk with
// ErrDuplicateKey before fn is called for anything.
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
	if d.hasDuplicates(obj) {
		return fmt.Errorf("%w in an object on path %q", ErrDuplicateKey, p.String())
	}
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

// PathOf returns the dotted path of the member r names.
func (e *Edit) PathOf(r Ref) string {
	e.path = e.path[:0]
	e.path = append(e.path, e.Key(r))
	for o := r.obj; o > 0; {
		parent := e.d.nodes[o].parent
		for i := e.d.nodes[parent].first; i < e.d.nodes[parent].first+e.d.nodes[parent].n; i++ {
			if e.d.members[i].val == o {
				e.path = append(e.path, e.d.key(&e.d.members[i]))
				break
			}
		}
		o = parent
	}
	for i, j := 0, len(e.path)-1; i < j; i, j = i+1, j-1 {
		e.path[i], e.path[j] = e.path[j], e.path[i]
	}
	return Path(e.path).String()
}

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

func (e *Edit) touch(obj int32) {
	for o := obj; o >= 0 && !e.dirty[o]; o = e.d.nodes[o].parent {
		e.dirty[o] = true
	}
}

// KeepOnly removes every member that is neither on one of the paths nor
// below one of them: an allow-list. An object that lies on a path but whose
// members are all removed is kept as {}. removedFn, if not nil, is called for
// each member removed.
func (e *Edit) KeepOnly(paths []Path, removedFn func(Ref)) error {
	if len(e.d.nodes) == 0 {
		return nil
	}
	return e.keep(0, paths, 0, removedFn)
}

func (e *Edit) keep(obj int32, paths []Path, depth int, removedFn func(Ref)) error {
	d := e.d
	n := &d.nodes[obj]
	if d.hasDuplicates(obj) {
		return fmt.Errorf("%w in an object kept by keep_only", ErrDuplicateKey)
	}
	for i := n.first; i < n.first+n.n; i++ {
		if e.removed[i] {
			continue
		}
		m := &d.members[i]
		whole, deeper := false, false
		for _, p := range paths {
			if len(p) <= depth || (p[depth] != "*" && !d.keyEquals(m, p[depth])) {
				continue
			}
			if len(p) == depth+1 {
				whole = true
				break
			}
			deeper = true
		}
		switch {
		case whole:
		case deeper && e.repl[i] == nil && d.nodes[m.val].kind == Object:
			var sub []Path
			for _, p := range paths {
				if len(p) > depth+1 && (p[depth] == "*" || d.keyEquals(m, p[depth])) {
					sub = append(sub, p)
				}
			}
			if err := e.keep(m.val, sub, depth+1, removedFn); err != nil {
				return err
			}
		default:
			r := Ref{obj: obj, mem: i}
			if removedFn != nil {
				removedFn(r)
			}
			e.Remove(r)
		}
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
		dst = append(dst, d.raw[m.keyStart:m.keyEnd]...)
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
