// Package scrub finds personal data in free text and replaces it with
// typed placeholders: e-mail addresses (plain and percent-encoded), phone
// numbers, payment card numbers that pass the Luhn check, IPv4 and IPv6
// literals, and caller-given identifiers (an event's own subject ids).
//
// The detectors are hand-written scanners, linear in the text and without
// allocation when nothing is found, so that they can run on every field of
// every event. They lean towards replacing: a false positive costs a
// placeholder in a clean topic, a false negative leaks personal data.
// What they do not find is documented on each detector; keep_only remains
// the first line of defence.
package scrub

import (
	"bytes"
	"net/netip"
	"strings"
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
	}
	return ""
}

// MinIDLen is the shortest identifier Text looks for: a one-character id
// would match ordinary text. (URL path segments equal to an id are
// replaced whatever its length.)
const MinIDLen = 2

type span struct {
	start, end int
	kind       Kind
}

// Scanner holds reusable buffers. The zero value is ready; it is not safe
// for concurrent use.
type Scanner struct {
	spans []span
	buf   []byte
}

// Text appends s to dst with every piece of personal data replaced by its
// placeholder, and returns the count of replacements. ids are identifiers
// to remove wherever they stand as whole words (not inside a longer
// alphanumeric run); ids shorter than MinIDLen are ignored.
func (sc *Scanner) Text(dst, s []byte, ids [][]byte) ([]byte, int) {
	sc.spans = sc.find(sc.spans[:0], s, ids)
	if len(sc.spans) == 0 {
		return append(dst, s...), 0
	}
	return sc.apply(dst, s), len(sc.spans)
}

// Find reports the first kind of personal data in s, None if there is none.
func (sc *Scanner) Find(s []byte, ids [][]byte) Kind {
	sc.spans = sc.find(sc.spans[:0], s, ids)
	if len(sc.spans) == 0 {
		return None
	}
	return sc.spans[0].kind
}

func (sc *Scanner) find(sp []span, s []byte, ids [][]byte) []span {
	digits, at, colon := false, false, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '@' || c == '%':
			at = true
		case c == ':':
			colon = true
		}
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
		if len(id) >= MinIDLen {
			sp = findWord(sp, s, id)
		}
	}
	return sp
}

// apply writes s with the spans replaced; overlapping spans merge and take
// the kind of the one found first.
func (sc *Scanner) apply(dst, s []byte) []byte {
	sp := sc.spans
	// Insertion sort by start: few spans.
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && sp[j].start < sp[j-1].start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	pos := 0
	for i := 0; i < len(sp); {
		cur := sp[i]
		for i++; i < len(sp) && sp[i].start < cur.end; i++ {
			cur.end = max(cur.end, sp[i].end)
		}
		dst = append(dst, s[pos:cur.start]...)
		dst = append(dst, cur.kind.Placeholder()...)
		pos = cur.end
	}
	return append(dst, s[pos:]...)
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
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

// domainEnd returns the end of a domain name with at least two labels
// starting at i, the last label having two letters or more.
func domainEnd(s []byte, i int) (int, bool) {
	labels, lastAlpha, lastLen := 0, true, 0
	j := i
	for {
		k := j
		alpha := true
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-') {
			if !isAlpha(s[k]) {
				alpha = false
			}
			k++
		}
		if k == j {
			break
		}
		labels++
		lastAlpha, lastLen = alpha, k-j
		j = k
		if j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]) {
			j++
			continue
		}
		break
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
		if colons >= 2 && (ipv6Groups(tok) >= 3 || dots == 3) || colons == 0 && dots == 3 {
			if a, err := netip.ParseAddr(string(tok)); err == nil && (colons > 0 || a.Is4()) {
				sp = append(sp, span{i, end, IP})
			}
		}
		i = j
	}
	return sp
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

// digitRun scans digits from i, allowing separators from seps between
// them (at most two in a row, as in ") " or " ("); it returns the end of the
// last digit, the digit count and the separator count.
func digitRun(s []byte, i int, seps string) (end, digits, nsep int) {
	j := i
	for j < len(s) {
		c := s[j]
		if isDigit(c) {
			digits++
			j++
			end = j
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
	return end, digits, nsep
}

// findCards finds 13 to 19 digits, optionally grouped by single spaces or
// dashes, that pass the Luhn check and start like a card of the major
// networks (2-6: Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay).
// Epoch milliseconds (1…) are not cards.
func findCards(sp []span, s []byte) []span {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		end, n, _ := digitRun(s, i, " -")
		if n >= 13 && n <= 19 && s[i] >= '2' && s[i] <= '6' && wordAt(s, i, end) && luhn(s[i:end]) {
			sp = append(sp, span{i, end, Card})
		}
		i = max(i, end-1)
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
// by spaces, dashes, dots, slashes or parentheses) and national ones
// written with a trunk prefix or area code in parentheses ("0612 345678",
// "(555) 123-4567") or grouped at least twice ("555-123-4567"), 9 to 15
// digits. Dates (2026-11-22, 22.11.2026) and bare digit runs without a
// leading + or 0 (order numbers, epoch times) are not phones.
func findPhones(sp []span, s []byte) []span {
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
		end, n, seps := digitRun(s, j, " -./()")
		if end == 0 || !wordAt(s, start, end) {
			i = max(i, end-1)
			continue
		}
		first := s[j]
		if first == '(' && j+1 < len(s) {
			first = s[j+1]
		}
		ok := false
		switch {
		case c == '+':
			ok = n >= 7 && n <= 15
		case n >= 9 && n <= 15 && !isDate(s[start:end]):
			ok = c == '(' || first == '0' || seps >= 2 && n >= 10
		}
		if ok {
			sp = append(sp, span{start, end, Phone})
		}
		i = max(i, end-1)
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

// findWord finds id in s where it is not glued to letters or digits.
func findWord(sp []span, s, id []byte) []span {
	for off := 0; ; {
		k := bytes.Index(s[off:], id)
		if k < 0 {
			return sp
		}
		i := off + k
		if wordAt(s, i, i+len(id)) {
			sp = append(sp, span{i, i + len(id), ID})
		}
		off = i + 1
	}
}
