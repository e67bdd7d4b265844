// Package scrub finds personal data in free text and replaces it with
// typed placeholders: e-mail addresses (plain and percent-encoded), phone
// numbers, payment card numbers that pass the Luhn check, IPv4 and IPv6
// literals, JSON Web Tokens, MAC addresses, and caller-given identifiers
// (an event's own subject ids).
//
// The detectors are hand-written scanners, linear in the text and without
// allocation when nothing is found, so that they can run on every field of
// every event. They lean towards replacing: a false positive costs a
// placeholder in a clean topic, a false negative leaks personal data.
// What they do not find is documented on each detector; keep_only remains
// the first line of defence.
//
// Must not import Kafka, Redis or Prometheus: scrub is pure text work.
package scrub

import (
	"bytes"
	"html"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Kind is a kind of personal data found in text.
type Kind uint8

// The kinds, in the order detectors run.
const (
	None Kind = iota
	Email
	IP
	Card
	Phone
	ID
	Token
	MAC
	Hash
)

// Placeholder returns the text that replaces data of kind k.
func (k Kind) Placeholder() string {
	switch k {
	case Email:
		return "[email]"
	case IP:
		return "[ip]"
	case Card:
		return "[card]"
	case Phone:
		return "[phone]"
	case ID:
		return "[id]"
	case Token:
		return "[token]"
	case MAC:
		return "[mac]"
	case Hash:
		return "[hash]"
	}
	return ""
}

// Kinds is a set of kinds.
type Kinds uint16

// Has reports whether k is in the set.
func (ks Kinds) Has(k Kind) bool { return ks&(1<<k) != 0 }

// Append appends the names of the kinds in the set, comma-separated, in
// Kind order ("email,id").
func (ks Kinds) Append(dst []byte) []byte {
	first := true
	for k := Email; k <= Hash; k++ {
		if !ks.Has(k) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		p := k.Placeholder()
		dst = append(dst, p[1:len(p)-1]...)
	}
	return dst
}

// Found returns the kinds replaced since the last call and forgets them.
func (sc *Scanner) Found() Kinds {
	ks := sc.found
	sc.found = 0
	return ks
}

// MinIDLen is the shortest identifier Text looks for: a one-character id
// would match ordinary text. (URL path segments equal to an id are
// replaced whatever its length.)
const MinIDLen = 2

// MinGluedID is the shortest identifier found glued to other text
// ("x7008984883y", "uid=abc123def"): a shorter one ("42", "u1", "anon")
// is found only as a whole word, or it would eat every digit pair and
// syllable that happens to match it.
const MinGluedID = 6

type span struct {
	start, end int
	kind       Kind
}

// Scanner holds reusable buffers and the opt-in detectors. The zero value
// is ready; it is not safe for concurrent use.
type Scanner struct {
	// Hashes replaces runs of 32, 40 or 64 hex digits (MD5, SHA-1,
	// SHA-256: hashed e-mails are ad tech's match keys) by [hash].
	Hashes bool
	// AtWords reads "(at)", "[at]", "{at}" and "<at>" as "@" and the same
	// forms of "dot" as "." ("alice [at] example [dot] com").
	AtWords bool

	spans, alt []span
	buf        []byte
	dec, norm  []byte
	// pct, wide and amp: the text find last scanned has "%", non-ASCII
	// bytes or "&".
	pct, wide, amp bool
	// numIDs are the ids of the current JSON call that are integers.
	numIDs [][]byte
	// rescan holds Text's result while it is scanned again; valid a
	// string with invalid UTF-8 replaced.
	rescan, valid []byte
	// found: the kinds replaced since the last Found call.
	found Kinds
	// fold: the text lower-cased, for ids with non-ASCII letters.
	fold []byte
	// b64 and inner: findEncoded's decoded run and its findings.
	b64   []byte
	inner []span
}

// Text appends s to dst with every piece of personal data replaced by its
// placeholder, and returns the count of replacements. ids are identifiers
// to remove wherever they stand as whole words (not inside a longer
// alphanumeric run); ids shorter than MinIDLen are ignored.
//
// Text that is percent-encoded (once or more) or written with invisible
// or compatibility characters (U+200B inside an address, a fullwidth "＠")
// is also scanned decoded: when the decoded form shows more, the result is
// the decoded form with its findings replaced.
func (sc *Scanner) Text(dst, s []byte, ids [][]byte) ([]byte, int) {
	out, n := sc.text(dst, s, ids)
	// A replacement can leave what was glued to a finding standing alone
	// ("000000000+0000000": once the first run is [phone], the second is
	// a phone number of its own): scan the result again until nothing
	// more is found.
	for round := 0; n > 0 && round < maxRescans; round++ {
		sc.rescan = append(sc.rescan[:0], out[len(dst):]...)
		again, m := sc.text(out[:len(dst)], sc.rescan, ids)
		if m == 0 {
			break
		}
		out, n = again, n+m
	}
	return out, n
}

// maxRescans bounds Text's rescans of its own result.
const maxRescans = 3

func (sc *Scanner) text(dst, s []byte, ids [][]byte) ([]byte, int) {
	sc.spans = sc.find(sc.spans[:0], s, ids, true)
	if d, ok := sc.decode(s); ok {
		sc.alt = sc.find(sc.alt[:0], d, ids, true)
		if len(sc.alt) > len(sc.spans) {
			sc.spans, sc.alt = sc.alt, sc.spans
			s = d
		}
	}
	if len(sc.spans) == 0 {
		return append(dst, s...), 0
	}
	return sc.apply(dst, s)
}

// Find reports the first kind of personal data in s (or in its decoded
// form, see Text), None if there is none.
func (sc *Scanner) Find(s []byte, ids [][]byte) Kind {
	sc.spans = sc.find(sc.spans[:0], s, ids, true)
	if len(sc.spans) == 0 {
		if d, ok := sc.decode(s); ok {
			sc.spans = sc.find(sc.spans[:0], d, ids, true)
		}
	}
	if len(sc.spans) == 0 {
		return None
	}
	return sc.spans[0].kind
}

// Decoded appends to dst the form Text also scans s in (percent-decoded,
// HTML references read, without invisible characters, NFKC) and reports
// whether it differs from s. An identifier that holds such sequences
// itself ("a%41b") is searched in this form too, since that is what the
// decoded text holds.
func (sc *Scanner) Decoded(dst, s []byte) ([]byte, bool) {
	sc.note(s)
	d, ok := sc.decode(s)
	if !ok {
		return dst, false
	}
	return append(dst, d...), true
}

// decode returns s percent-decoded until no %XX is left (at most four
// rounds), without invisible characters (format characters, variation
// selectors) and NFKC-normalized, and whether that differs from s. Text
// without "%" followed by two hex digits and without non-ASCII bytes is
// not decoded.
//
// It must follow a find on s, which noted whether s has "%" or non-ASCII.
func (sc *Scanner) decode(s []byte) ([]byte, bool) {
	wide := sc.wide
	pct := sc.pct && hasEscape(s)
	ent := sc.amp && hasEntity(s)
	at := sc.AtWords && atWord(s, 0) >= 0
	if !pct && !wide && !ent && !at {
		return nil, false
	}
	d := append(sc.dec[:0], s...)
	for round := 0; pct && round < 4; round++ {
		d = percentDecode(d)
		pct = hasEscape(d)
	}
	// HTML character references ("&#64;", "&#x40;", "&commat;"), also
	// when percent-encoding hid them.
	for round := 0; round < 2 && hasEntity(d); round++ {
		d = append(d[:0], html.UnescapeString(string(d))...)
	}
	if at {
		d = replaceAtWords(d)
	}
	if !wide {
		for _, c := range d {
			if c >= 0x80 {
				wide = true
				break
			}
		}
	}
	if wide {
		sc.norm = sc.norm[:0]
		for k := 0; k < len(d); {
			r, n := utf8.DecodeRune(d[k:])
			if !(r >= 0x80 && unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)) {
				sc.norm = append(sc.norm, d[k:k+n]...)
			}
			k += n
		}
		d = norm.NFKC.Append(d[:0], sc.norm...)
	}
	sc.dec = d
	return d, !bytes.Equal(d, s)
}

// hasEntity reports whether s holds something that may be an HTML
// character reference: "&" followed by "#" or a letter, then ";" within a
// few bytes (html.UnescapeString also reads some names without ";", but
// none that could hide personal data).
func hasEntity(s []byte) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '&' || !(s[i+1] == '#' || isAlpha(s[i+1])) {
			continue
		}
		if j := bytes.IndexByte(s[i+1:min(len(s), i+34)], ';'); j > 0 {
			return true
		}
	}
	return false
}

// atWord returns the index from i of the next bracketed "at" or "dot"
// ("(at)", "[ dot ]", "{AT}", "<at>"), -1 if there is none.
func atWord(s []byte, i int) int {
	for ; i < len(s); i++ {
		if _, _, ok := atWordAt(s, i); ok {
			return i
		}
	}
	return -1
}

// atWordAt reports whether a bracketed "at" or "dot" starts at s[i], with
// the text it stands for and its end (spaces around it included).
func atWordAt(s []byte, i int) (string, int, bool) {
	var closeBr byte
	switch s[i] {
	case '(':
		closeBr = ')'
	case '[':
		closeBr = ']'
	case '{':
		closeBr = '}'
	case '<':
		closeBr = '>'
	default:
		return "", 0, false
	}
	j := i + 1
	for j < len(s) && s[j] == ' ' {
		j++
	}
	rep := ""
	switch {
	case j+2 <= len(s) && equalFoldASCII(s[j:j+2], []byte("at")):
		rep, j = "@", j+2
	case j+3 <= len(s) && equalFoldASCII(s[j:j+3], []byte("dot")):
		rep, j = ".", j+3
	default:
		return "", 0, false
	}
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j >= len(s) || s[j] != closeBr {
		return "", 0, false
	}
	j++
	for j < len(s) && s[j] == ' ' {
		j++
	}
	return rep, j, true
}

// replaceAtWords rewrites bracketed "at" and "dot" as "@" and ".",
// dropping the spaces around them.
func replaceAtWords(d []byte) []byte {
	out := make([]byte, 0, len(d))
	for i := 0; i < len(d); {
		if rep, end, ok := atWordAt(d, i); ok {
			for len(out) > 0 && out[len(out)-1] == ' ' {
				out = out[:len(out)-1]
			}
			out = append(out, rep...)
			i = end
			continue
		}
		out = append(out, d[i])
		i++
	}
	return out
}

func hasEscape(s []byte) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// percentDecode decodes every %XX of b in place ("+" stays "+").
func percentDecode(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); r++ {
		if b[r] == '%' && r+2 < len(b) && isHex(b[r+1]) && isHex(b[r+2]) {
			b[w] = unhex(b[r+1])<<4 | unhex(b[r+2])
			r += 2
		} else {
			b[w] = b[r]
		}
		w++
	}
	return b[:w]
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// find appends the spans of personal data in s; encoded also decodes
// base64 and hex runs (findEncoded).
func (sc *Scanner) find(sp []span, s []byte, ids [][]byte, encoded bool) []span {
	f := sc.note(s)
	digits, at, colon, sep := f&cDigit != 0, f&(cAt|cPct) != 0, f&cColon != 0, f&cSep != 0
	if sep && len(s) >= 14 {
		sp = findJWTs(sp, s)
		sp = findMACs(sp, s)
	} else if colon && len(s) >= 17 {
		sp = findMACs(sp, s)
	}
	if at {
		sp = findEmails(sp, s)
	}
	if digits || colon {
		sp = findIPs(sp, s)
	}
	if digits {
		sp = findCards(sp, s)
		sp = findPhones(sp, s)
	}
	for _, id := range ids {
		if len(id) >= MinIDLen && len(id) <= len(s) {
			sp = findWord(sp, s, id)
			if sc.wide && !isASCII(id) {
				sp = sc.findFolded(sp, s, id)
			}
		}
	}
	if sc.Hashes && len(s) >= 32 {
		sp = findHashes(sp, s)
	}
	if encoded && len(s) >= minBase64Run {
		sp = sc.findEncoded(sp, s, ids)
	}
	return sp
}

// note returns the byte classes s holds and notes for decode whether it
// has "%", non-ASCII bytes or "&".
func (sc *Scanner) note(s []byte) uint8 {
	var f uint8
	for _, c := range s {
		f |= byteClass[c]
	}
	sc.pct, sc.wide, sc.amp = f&cPct != 0, f&cWide != 0, f&cAmp != 0
	return f
}

// Byte classes find looks for, as bits, so that one pass ORs them.
const (
	cDigit uint8 = 1 << iota
	cAt
	cPct
	cColon
	cSep // "-" or ".": JWTs and MACs
	cWide
	cAmp // "&": HTML character references
)

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	t['@'], t['%'], t[':'], t['-'], t['.'], t['&'] = cAt, cPct, cColon, cSep, cSep, cAmp
	for c := 0x80; c < 0x100; c++ {
		t[c] = cWide
	}
	return t
}()

// apply writes s with the spans replaced and returns the count of
// replacements; overlapping spans merge and take the kind of the one found
// first.
func (sc *Scanner) apply(dst, s []byte) ([]byte, int) {
	sp := sc.spans
	// Insertion sort by start: few spans.
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && sp[j].start < sp[j-1].start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	pos, n := 0, 0
	for i := 0; i < len(sp); {
		cur := sp[i]
		for i++; i < len(sp) && sp[i].start < cur.end; i++ {
			cur.end = max(cur.end, sp[i].end)
		}
		dst = append(dst, s[pos:cur.start]...)
		dst = append(dst, cur.kind.Placeholder()...)
		sc.found |= 1 << cur.kind
		pos = cur.end
		n++
	}
	return append(dst, s[pos:]...), n
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
func isHex(c byte) bool   { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }

// wordAt reports whether s[i:j] is not glued to letters or digits.
func wordAt(s []byte, i, j int) bool {
	return (i == 0 || !isAlnum(s[i-1]) && s[i-1] < 0x80) && (j == len(s) || !isAlnum(s[j]) && s[j] < 0x80)
}

// findEmails finds local@domain.tld where "@" may also be written %40 or
// %2540 (percent-encoded once or twice, any case).
func findEmails(sp []span, s []byte) []span {
	for i := 0; i < len(s); i++ {
		at := 0
		switch {
		case s[i] == '@':
			at = 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			at = 3
		case s[i] == '%' && i+4 < len(s) && s[i+1] == '2' && s[i+2] == '5' && s[i+3] == '4' && s[i+4] == '0':
			at = 5
		default:
			continue
		}
		start := i
		for start > 0 && isLocal(s[start-1]) {
			start--
		}
		end, ok := domainEnd(s, i+at)
		if start == i || !ok {
			continue
		}
		sp = append(sp, span{start, end, Email})
		i = end - 1
	}
	return sp
}

func isLocal(c byte) bool {
	return isAlnum(c) || c >= 0x80 || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

// domainEnd returns the end of a domain name with at least two labels
// starting at i, the last label having two letters or more. Labels may
// hold non-ASCII (internationalized) characters. A last label glued to
// more text by a hyphen ("example.com-m-077") ends at the hyphen when it
// starts with two letters or more.
func domainEnd(s []byte, i int) (int, bool) {
	labels, lastAlpha, lastLen, lastStart := 0, true, 0, i
	j := i
	for {
		k := j
		alpha := true
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-' || s[k] >= 0x80) {
			if !isAlpha(s[k]) && s[k] < 0x80 {
				alpha = false
			}
			k++
		}
		if k == j {
			break
		}
		labels++
		lastAlpha, lastLen, lastStart = alpha, k-j, j
		j = k
		if j+1 < len(s) && s[j] == '.' && (isAlnum(s[j+1]) || s[j+1] >= 0x80) {
			j++
			continue
		}
		break
	}
	if !lastAlpha && labels >= 2 {
		k := lastStart
		for k < j && (isAlpha(s[k]) || s[k] >= 0x80) {
			k++
		}
		if k-lastStart >= 2 && k < j && s[k] == '-' {
			return k, true
		}
	}
	return j, labels >= 2 && lastAlpha && lastLen >= 2
}

// findIPs finds IPv4 dotted quads and IPv6 literals (three or more
// non-empty groups, or an embedded dotted quad) standing as whole words.
func findIPs(sp []span, s []byte) []span {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHex(c) && c != ':' {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == ':' || s[i-1] == '.') {
			continue
		}
		j := i
		colons, dots := 0, 0
		for j < len(s) && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
			if s[j] == ':' {
				colons++
			} else if s[j] == '.' {
				dots++
			}
			j++
		}
		end := j
		for end > i && s[end-1] == '.' { // a sentence's full stop
			end--
		}
		if end < len(s) && end == j && isAlnum(s[end]) {
			i = j
			continue
		}
		tok := s[i:end]
		if colons == 1 && dots == 3 { // IPv4 with a port
			if k := bytes.IndexByte(tok, ':'); k > 0 {
				if a, err := netip.ParseAddr(string(tok[:k])); err == nil && a.Is4() {
					sp = append(sp, span{i, i + k, IP})
				}
			}
			i = j
			continue
		}
		if colons >= 2 && (ipv6Groups(tok) >= 3 || dots == 3) || colons == 0 && dots == 3 {
			if a, err := netip.ParseAddr(string(tok)); err == nil && (colons > 0 || a.Is4()) {
				if colons > 0 && end == j {
					j = zoneEnd(s, end)
					end = j
				}
				sp = append(sp, span{i, end, IP})
			}
		}
		i = j
	}
	return sp
}

// zoneEnd returns the end of the IPv6 zone at s[i] ("%eth0", "%25en0"
// percent-encoded as in URLs), i if there is none.
func zoneEnd(s []byte, i int) int {
	if i >= len(s) || s[i] != '%' {
		return i
	}
	j := i + 1
	if j+2 < len(s) && s[j] == '2' && s[j+1] == '5' {
		j += 2
	}
	k := j
	for k < len(s) && (isAlnum(s[k]) || s[k] == '.' || s[k] == '_' || s[k] == '~' || s[k] == '-') {
		k++
	}
	if k == j {
		return i
	}
	return k
}

func ipv6Groups(tok []byte) int {
	n, cur := 0, 0
	for _, c := range tok {
		if c == ':' {
			if cur > 0 {
				n++
			}
			cur = 0
			continue
		}
		cur++
	}
	if cur > 0 {
		n++
	}
	return n
}

// groupEnd is the end of one digit group of a run: the index after its
// last digit, and the digits and separators from the run's start.
type groupEnd struct{ end, digits, seps int }

// digitGroups scans digits from i, allowing separators from seps between
// them (at most two in a row, as in ") " or " ("), and appends to buf the
// end of every group until more than max digits are seen.
func digitGroups(buf []groupEnd, s []byte, i int, seps string, max int) []groupEnd {
	j, digits, nsep := i, 0, 0
	for j < len(s) && digits <= max {
		c := s[j]
		if isDigit(c) {
			for j < len(s) && isDigit(s[j]) {
				digits++
				j++
			}
			buf = append(buf, groupEnd{j, digits, nsep})
			continue
		}
		if strings.IndexByte(seps, c) < 0 {
			break
		}
		k := j + 1
		if k < len(s) && !isDigit(s[k]) && strings.IndexByte(seps, s[k]) >= 0 {
			k++
		}
		if k >= len(s) || !isDigit(s[k]) {
			break
		}
		nsep++
		j = k
	}
	return buf
}

// firstGroupEnd returns the index after the digits starting at i.
func firstGroupEnd(s []byte, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// findCards finds 13 to 19 digits, optionally grouped by single spaces or
// dashes, that pass the Luhn check and start like a card of the major
// networks (2-6: Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay).
// Epoch milliseconds (1…) are not cards. A card may start at any group of
// a longer run and end at any group ("+49 151 2345 6789 4111 1111 1111
// 1111"): the longest candidate that passes wins.
func findCards(sp []span, s []byte) []span {
	var buf [24]groupEnd
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		found := 0
		if s[i] >= '2' && s[i] <= '6' {
			gs := digitGroups(buf[:0], s, i, " -", 19)
			for k := len(gs) - 1; k >= 0; k-- {
				g := gs[k]
				if g.digits >= 13 && g.digits <= 19 && wordAt(s, i, g.end) && luhn(s[i:g.end]) {
					sp = append(sp, span{i, g.end, Card})
					found = g.end
					break
				}
			}
		}
		if found > 0 {
			i = found - 1
		} else {
			i = firstGroupEnd(s, i) - 1
		}
	}
	return sp
}

func luhn(b []byte) bool {
	sum, double := 0, false
	for k := len(b) - 1; k >= 0; k-- {
		if !isDigit(b[k]) {
			continue
		}
		d := int(b[k] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// findPhones finds international numbers (+ then 7 to 15 digits, grouped
// by spaces, dashes, dots, slashes, parentheses or plus signs) and national
// ones written with a trunk prefix or area code in parentheses ("0612
// 345678", "(555) 123-4567") or grouped at least twice ("555-123-4567"),
// 9 to 15 digits. Dates (2026-11-22, 22.11.2026) and bare digit runs
// without a leading + or 0 (order numbers, epoch times) are not phones. A
// number followed by more digit groups ends at the longest group end that
// makes a phone.
func findPhones(sp []span, s []byte) []span {
	var buf [24]groupEnd
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '+' && c != '(' && !isDigit(c) {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.' || s[i-1] == '-' || s[i-1] == '/' || s[i-1] == '+') {
			continue
		}
		start := i
		j := i
		if c == '+' {
			j++
			if j >= len(s) || !isDigit(s[j]) && s[j] != '(' {
				continue
			}
		}
		gs := digitGroups(buf[:0], s, j, " -./()+", 15)
		if len(gs) == 0 {
			continue
		}
		first := s[j]
		if first == '(' && j+1 < len(s) {
			first = s[j+1]
		}
		found := 0
		for k := len(gs) - 1; k >= 0 && found == 0; k-- {
			g := gs[k]
			if g.digits > 15 || !wordAt(s, start, g.end) {
				continue
			}
			ok := false
			switch {
			case c == '+':
				ok = g.digits >= 7
			case g.digits >= 9 && !isDate(s[start:g.end]):
				ok = c == '(' || first == '0' || g.seps >= 2 && g.digits >= 10
			}
			if ok {
				sp = append(sp, span{start, g.end, Phone})
				found = g.end
			}
		}
		if found > 0 {
			i = found - 1
		} else if isDigit(c) {
			i = firstGroupEnd(s, i) - 1
		}
	}
	return sp
}

// isDate reports shapes like 2026-11-22, 2026/11/22, 22.11.2026, 11/22/2026.
func isDate(b []byte) bool {
	var groups [4]int
	n, cur := 0, 0
	var sep byte
	for _, c := range b {
		if isDigit(c) {
			cur++
			continue
		}
		if n == 3 || sep != 0 && c != sep {
			return false
		}
		sep = c
		groups[n] = cur
		n++
		cur = 0
	}
	groups[n] = cur
	n++
	if n != 3 {
		return false
	}
	return groups[0] == 4 && groups[1] <= 2 && groups[2] <= 2 || groups[0] <= 2 && groups[1] <= 2 && groups[2] == 4
}

// findWord finds id in s, ignoring ASCII case: anywhere when it has
// MinGluedID bytes or more, else where it is not glued to letters or
// digits.
func findWord(sp []span, s, id []byte) []span {
	// Anchor the search on the first byte of id that is not a letter (ids
	// hold digits or dashes as a rule), so that bytes.IndexByte does the
	// scanning; an id of letters only is compared at every position.
	glued := len(id) >= MinGluedID
	a := 0
	for a < len(id) && isAlpha(id[a]) {
		a++
	}
	if a == len(id) {
		for i := 0; i+len(id) <= len(s); i++ {
			if s[i]|0x20 == id[0]|0x20 && equalFoldASCII(s[i:i+len(id)], id) && (glued || wordAt(s, i, i+len(id))) {
				sp = append(sp, span{i, i + len(id), ID})
			}
		}
		return sp
	}
	for off := a; off < len(s); {
		k := bytes.IndexByte(s[off:], id[a])
		if k < 0 {
			return sp
		}
		i := off + k - a
		off += k + 1
		if i+len(id) <= len(s) && equalFoldASCII(s[i:i+len(id)], id) && (glued || wordAt(s, i, i+len(id))) {
			sp = append(sp, span{i, i + len(id), ID})
		}
	}
	return sp
}

// findFolded finds id in s under Unicode case folding ("ÄÖÜ-1" for
// "äöü-1"), anywhere: both are lower-cased; when that changes the length
// of s (a few letters, such as "İ", lower-case to more bytes), a match
// replaces all of s, positions being lost.
func (sc *Scanner) findFolded(sp []span, s, id []byte) []span {
	sc.fold = append(sc.fold[:0], bytes.ToLower(s)...)
	lid := bytes.ToLower(id)
	for off := 0; off < len(sc.fold); {
		k := bytes.Index(sc.fold[off:], lid)
		if k < 0 {
			break
		}
		if len(sc.fold) != len(s) {
			return append(sp, span{0, len(s), ID})
		}
		sp = append(sp, span{off + k, off + k + len(lid), ID})
		off += k + len(lid)
	}
	return sp
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// equalFoldASCII reports whether a and b are equal ignoring the case of
// ASCII letters.
func equalFoldASCII(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x != y && !(isAlpha(x) && x|0x20 == y|0x20) {
			return false
		}
	}
	return true
}
