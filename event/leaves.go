package event

// EachLeaf calls fn for every string, number, boolean and null inside an
// array or object value, at any depth, in document order, with the keys
// of the object members on the way from v to it, outermost first
// (unescaped; none for an element of an array that no object of v
// encloses). keys is valid during the call only. It does nothing for other
// kinds. v must come from a parsed Doc (valid JSON no deeper than
// MaxDepth); it allocates only for keys that hold an escape, and once for
// the key stack.
func (v Value) EachLeaf(fn func(keys [][]byte, leaf Value)) {
	if v.Kind != Array && v.Kind != Object {
		return
	}
	s := leafScanner{raw: v.Raw}
	s.value(fn)
}

type leafScanner struct {
	raw  []byte
	pos  int
	keys [][]byte
}

func (s *leafScanner) ws() {
	for s.pos < len(s.raw) {
		switch s.raw[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// str scans a string starting at its opening quote and returns its raw
// bytes (quotes included) and whether it holds an escape.
func (s *leafScanner) str() ([]byte, bool) {
	start, esc := s.pos, false
	s.pos++
	for s.pos < len(s.raw) {
		switch s.raw[s.pos] {
		case '\\':
			esc = true
			s.pos += 2
			continue
		case '"':
			s.pos++
			return s.raw[start:s.pos], esc
		}
		s.pos++
	}
	return s.raw[start:], esc
}

func (s *leafScanner) value(fn func([][]byte, Value)) {
	s.ws()
	if s.pos >= len(s.raw) {
		return
	}
	switch c := s.raw[s.pos]; c {
	case '{':
		s.pos++
		for {
			s.ws()
			if s.pos >= len(s.raw) || s.raw[s.pos] == '}' {
				s.pos++
				return
			}
			if s.raw[s.pos] == ',' {
				s.pos++
				continue
			}
			k, esc := s.str()
			k = k[1 : len(k)-1]
			if esc {
				k = []byte(unescape(nil, k))
			}
			s.ws()
			s.pos++ // :
			s.keys = append(s.keys, k)
			s.value(fn)
			s.keys = s.keys[:len(s.keys)-1]
		}
	case '[':
		s.pos++
		for {
			s.ws()
			if s.pos >= len(s.raw) || s.raw[s.pos] == ']' {
				s.pos++
				return
			}
			if s.raw[s.pos] == ',' {
				s.pos++
				continue
			}
			s.value(fn)
		}
	case '"':
		raw, esc := s.str()
		fn(s.keys, Value{Kind: String, Raw: raw, esc: esc})
	default:
		start := s.pos
		for s.pos < len(s.raw) {
			b := s.raw[s.pos]
			if b == ',' || b == ']' || b == '}' || b == ' ' || b == '\t' || b == '\r' || b == '\n' {
				break
			}
			s.pos++
		}
		k := Number
		switch c {
		case 't', 'f':
			k = Bool
		case 'n':
			k = Null
		}
		fn(s.keys, Value{Kind: k, Raw: s.raw[start:s.pos]})
	}
}
