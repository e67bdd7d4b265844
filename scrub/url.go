package scrub

import (
	"bytes"
	"net/netip"
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
			sc.found |= 1 << kind
			n++
		} else if ipHost(auth) {
			dst = append(dst, IP.Placeholder()...)
			sc.found |= 1 << IP
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
			sc.found |= 1 << kind
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
				sc.found |= 1 << ID
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

// ipHost reports whether auth, a URL's host with an optional port, is an
// IP address in a form the text detectors do not read as one but a
// browser does: an IPv4 address as one decimal or hex number
// (http://3232235777/, http://0xC0A80101/), with octal or hex parts or
// fewer than four parts (http://0300.0250.1.1/, http://127.1/), or a
// bracketed IPv6 address with a zone (http://[fe80::1%25en0]/).
func ipHost(auth []byte) bool {
	if len(auth) > 0 && auth[0] == '[' {
		end := bytes.IndexByte(auth, ']')
		if end < 0 {
			return false
		}
		h := bytes.ReplaceAll(auth[1:end], []byte("%25"), []byte("%"))
		_, err := netip.ParseAddr(string(h))
		return err == nil
	}
	if k := bytes.LastIndexByte(auth, ':'); k >= 0 {
		auth = auth[:k]
	}
	auth = bytes.TrimSuffix(auth, []byte("."))
	n := bytes.Count(auth, []byte(".")) + 1
	if len(auth) == 0 || n > 4 {
		return false
	}
	// As the WHATWG URL parser: every part but the last is one byte, the
	// last fills the remaining bytes.
	i := 0
	for p := range bytes.SplitSeq(auth, []byte(".")) {
		v, ok := ipv4Part(p)
		if !ok {
			return false
		}
		if i < n-1 && v > 255 || i == n-1 && v >= 1<<(8*(5-n)) {
			return false
		}
		i++
	}
	return true
}

// ipv4Base returns the base of an IPv4 host part and its digits.
func ipv4Base(p []byte) (int, []byte) {
	switch {
	case len(p) >= 2 && p[0] == '0' && p[1]|0x20 == 'x':
		return 16, p[2:]
	case len(p) > 1 && p[0] == '0':
		return 8, p[1:]
	}
	return 10, p
}

// ipv4Part parses one part of an IPv4 host as browsers do: decimal, octal
// with a leading 0, or hex with 0x.
func ipv4Part(p []byte) (uint64, bool) {
	base, digits := ipv4Base(p)
	if len(digits) == 0 {
		return 0, base == 16 || len(p) > 0 // "0x" is 0 to a browser
	}
	if len(digits) > 16 {
		return 0, false
	}
	// 16 digits of any base fit in 64 bits.
	var v uint64
	for _, c := range digits {
		d := uint64(base)
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			d = uint64(c|0x20-'a') + 10
		}
		if d >= uint64(base) {
			return 0, false
		}
		v = v*uint64(base) + d
	}
	return v, v <= 0xffffffff
}
