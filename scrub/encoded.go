package scrub

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// This file holds the detectors of personal data hidden by an encoding a
// browser or a script undoes in one call: base64 (standard or URL
// alphabet) and hex, and hashed e-mail addresses (the match keys of ad
// tech).

// Shortest runs decoded: base64 of six bytes (the shortest e-mail,
// "a@b.co", and the shortest id matched glued to other text) is eight
// characters, hex of six bytes twelve.
// A run is decoded whole, however long: data padded behind kilobytes of
// filler is still found. Runs do not overlap, so the cost stays linear in
// the text (four alignments of base64, two of hex, at most).
const (
	minBase64Run = 8
	minHexRun    = 12
)

var b64val = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = int8(i)
	}
	t['-'], t['_'] = 62, 63 // URL alphabet
	return t
}()

// findEncoded appends a span for every run of base64 (either alphabet, =
// padding included) or hex, standing as a word of its own or glued to
// text, that decodes to bytes in which find sees personal data: the whole
// run is replaced by the kind found first. The run is decoded from each
// of its four (hex: two) alignments, so that base64 glued behind other
// letters is read too. Runs decoded are not decoded again (one level).
// Not found: data split by characters outside the alphabet (whitespace
// in MIME-wrapped base64), or encodings other than these.
func (sc *Scanner) findEncoded(sp []span, s []byte, ids [][]byte) []span {
	for i := 0; i < len(s); {
		if b64val[s[i]] < 0 {
			i++
			continue
		}
		j := i
		for j < len(s) && b64val[s[j]] >= 0 {
			j++
		}
		end := j
		for end < len(s) && end-j < 2 && s[end] == '=' {
			end++
		}
		if j-i >= minBase64Run {
			if k := sc.decodedKind(s[i:j], ids); k != None {
				sp = append(sp, span{i, end, k})
			}
		}
		i = end
	}
	return sp
}

// decodedKind decodes the hex stretches of run and run as base64 from
// every alignment and reports the first kind of personal data
// find sees in the result, None if there is none.
func (sc *Scanner) decodedKind(run []byte, ids [][]byte) Kind {
	// Hex: every stretch of hex digits long enough, glued letters apart.
	for i := 0; i < len(run); {
		if !isHex(run[i]) {
			i++
			continue
		}
		j := i
		for j < len(run) && isHex(run[j]) {
			j++
		}
		if j-i >= minHexRun {
			for a := 0; a < 2; a++ {
				h := run[i+a : j]
				sc.b64, _ = hex.AppendDecode(sc.b64[:0], h[:len(h)&^1]) // hex digits only: no error
				if k := sc.kindIn(sc.b64, ids); k != None {
					return k
				}
			}
		}
		i = j
	}
	for a := 0; a < 4 && len(run)-a >= minBase64Run; a++ {
		if !asciiGroups(run[a:]) {
			continue
		}
		sc.b64 = b64Decode(sc.b64[:0], run[a:])
		if k := sc.kindIn(sc.b64, ids); k != None {
			return k
		}
	}
	return None
}

// kindIn runs the detectors, without decoding further, on every stretch
// of decoded bytes that is printable text (ASCII or UTF-8 letters) and at
// least minPrintable bytes long: what a misaligned or ordinary word
// decodes to is binary, and personal data written as text is a printable
// stretch.
func (sc *Scanner) kindIn(d []byte, ids [][]byte) Kind {
	// find notes what it saw for decode; the caller's text is the one
	// that counts.
	pct, wide, amp := sc.pct, sc.wide, sc.amp
	defer func() { sc.pct, sc.wide, sc.amp = pct, wide, amp }()
	for i := 0; i < len(d); {
		n := textAt(d, i)
		if n == 0 {
			i++
			continue
		}
		j := i + n
		for j < len(d) {
			n := textAt(d, j)
			if n == 0 {
				break
			}
			j += n
		}
		if j-i >= minPrintable {
			sc.inner = sc.find(sc.inner[:0], d[i:j], ids, false)
			if len(sc.inner) > 0 {
				return sc.inner[0].kind
			}
		}
		i = j
	}
	return None
}

// textAt returns the length of the printable character at d[i]: a
// printable ASCII byte or a valid UTF-8 sequence of a rune from U+00A0; 0
// for anything else.
func textAt(d []byte, i int) int {
	if c := d[i]; c < 0x80 {
		if c >= 0x20 && c < 0x7f {
			return 1
		}
		return 0
	}
	r, n := utf8.DecodeRune(d[i:])
	if r == utf8.RuneError || r < 0xa0 {
		return 0
	}
	return n
}

// minPrintable is the shortest printable stretch kindIn scans: the
// shortest e-mail ("a@b.co") and glued id.
const minPrintable = 6

// asciiGroups reports whether run, read as base64 from its first
// character, has two groups of four in a row whose first byte is ASCII
// (the first character of the group below 'g' in value: A-Z or a-f): text
// of six bytes or more encodes so, most words and misaligned runs do not.
func asciiGroups(run []byte) bool {
	streak := 0
	for k := 0; k+4 <= len(run); k += 4 {
		if b64val[run[k]] < 32 {
			if streak++; streak >= 2 {
				return true
			}
		} else {
			streak = 0
		}
	}
	return false
}

func b64Decode(dst, run []byte) []byte {
	var acc uint32
	n := 0
	for _, c := range run {
		acc = acc<<6 | uint32(b64val[c])
		n++
		if n == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}

// AppendHashes appends to dst the hex MD5, SHA-1 and SHA-256 of the
// e-mail address in v, trimmed and lower-cased as ad-tech match keys are
// computed (and of v as written, when that differs), so that a hashed copy
// of an event's own address is found like the address. v that holds no
// "@" appends nothing. The hex text is appended to arena, which is
// returned: the forms alias it, and stay valid as long as arena is only
// appended to.
func AppendHashes(dst [][]byte, arena, v []byte) ([][]byte, []byte) {
	if bytes.IndexByte(v, '@') < 0 {
		return dst, arena
	}
	var nb [128]byte
	norm := nb[:0]
	for _, c := range bytes.TrimSpace(v) {
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		norm = append(norm, c)
	}
	forms := [2][]byte{norm, v}
	n := 1
	if !bytes.Equal(norm, v) {
		n = 2
	}
	for _, f := range forms[:n] {
		m, s1, s2 := md5.Sum(f), sha1.Sum(f), sha256.Sum256(f)
		for _, sum := range [][]byte{m[:], s1[:], s2[:]} {
			if cap(arena)-len(arena) < 2*len(sum) {
				arena = make([]byte, 0, max(1024, 2*cap(arena)))
			}
			start := len(arena)
			arena = hex.AppendEncode(arena, sum)
			dst = append(dst, arena[start:len(arena):len(arena)])
		}
	}
	return dst, arena
}

// findHashes appends a Hash span for every run of exactly 32, 40 or 64
// hex digits (MD5, SHA-1, SHA-256) standing as a word, with at least one
// letter and one digit among them (a run of digits only is a number).
// Opt-in (Scanner.Hashes): a hash is a match key when it hashes an e-mail
// or a phone number, and nothing in the text says whether it does.
func findHashes(sp []span, s []byte) []span {
	for i := 0; i < len(s); {
		if !isHex(s[i]) || i > 0 && isAlnum(s[i-1]) {
			i++
			continue
		}
		j, letters, digits := i, 0, 0
		for j < len(s) && isHex(s[j]) {
			if isDigit(s[j]) {
				digits++
			} else {
				letters++
			}
			j++
		}
		if n := j - i; (n == 32 || n == 40 || n == 64) && letters > 0 && digits > 0 && (j == len(s) || !isAlnum(s[j])) {
			sp = append(sp, span{i, j, Hash})
		}
		i = j
	}
	return sp
}
