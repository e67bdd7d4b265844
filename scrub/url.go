package scrub

import (
	"bytes"
	"net/url"
)

// URL appends u, a URL, a path or a query string, reduced to what carries
// no personal data: scheme and host (without user info), the path with
// every segment that a detector matches or that equals one of ids replaced
// by its placeholder ("/users/[id]/orders"), and only the query parameters
// keep accepts, their values scrubbed. The fragment is dropped. It returns
// the count of parts removed or replaced.
func (sc *Scanner) URL(dst, u []byte, keep func(name string) bool, ids [][]byte) ([]byte, int) {
	n := 0
	if k := bytes.IndexByte(u, '#'); k >= 0 {
		u = u[:k]
		n++
	}
	var query []byte
	if k := bytes.IndexByte(u, '?'); k >= 0 {
		u, query = u[:k], u[k+1:]
	}
	path := u
	if k := bytes.Index(u, []byte("://")); k > 0 && bytes.IndexByte(u[:k], '/') < 0 {
		dst = append(dst, u[:k+3]...)
		rest := u[k+3:]
		auth := rest
		if s := bytes.IndexByte(rest, '/'); s >= 0 {
			auth, path = rest[:s], rest[s:]
		} else {
			path = nil
		}
		if at := bytes.LastIndexByte(auth, '@'); at >= 0 {
			auth = auth[at+1:]
			n++
		}
		if kind := sc.Find(auth, ids); kind != None {
			dst = append(dst, kind.Placeholder()...)
			n++
		} else {
			dst = append(dst, auth...)
		}
	}
	for len(path) > 0 {
		seg := path
		slash := bytes.IndexByte(path, '/')
		switch {
		case slash == 0:
			dst = append(dst, '/')
			path = path[1:]
			continue
		case slash > 0:
			seg, path = path[:slash], path[slash:]
		default:
			path = nil
		}
		kind := sc.Find(unescape(seg), ids)
		if kind == None && isID(unescape(seg), ids) {
			kind = ID
		}
		if kind != None {
			dst = append(dst, kind.Placeholder()...)
			n++
		} else {
			dst = append(dst, seg...)
		}
	}
	first := true
	for len(query) > 0 {
		param := query
		if k := bytes.IndexAny(query, "&;"); k >= 0 {
			param, query = query[:k], query[k+1:]
		} else {
			query = nil
		}
		if len(param) == 0 {
			continue
		}
		name, value, _ := bytes.Cut(param, []byte("="))
		if !keep(string(unescape(name))) {
			n++
			continue
		}
		if first {
			dst = append(dst, '?')
			first = false
		} else {
			dst = append(dst, '&')
		}
		dst = append(dst, name...)
		dst = append(dst, '=')
		v := unescape(value)
		var m int
		sc.buf, m = sc.Text(sc.buf[:0], v, ids)
		if m > 0 || isID(v, ids) {
			if m == 0 {
				sc.buf, m = append(sc.buf[:0], ID.Placeholder()...), 1
			}
			n += m
			dst = append(dst, url.QueryEscape(string(sc.buf))...)
		} else {
			dst = append(dst, value...)
		}
	}
	return dst, n
}

// isID reports whether s equals one of ids (of any length).
func isID(s []byte, ids [][]byte) bool {
	for _, id := range ids {
		if len(id) > 0 && bytes.Equal(s, id) {
			return true
		}
	}
	return false
}

// unescape percent-decodes s, twice if it was encoded twice; it returns
// s itself when there is nothing to decode or it is not valid.
func unescape(s []byte) []byte {
	for range 2 {
		if bytes.IndexByte(s, '%') < 0 && bytes.IndexByte(s, '+') < 0 {
			return s
		}
		d, err := url.QueryUnescape(string(s))
		if err != nil {
			return s
		}
		s = []byte(d)
	}
	return s
}
