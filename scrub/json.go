package scrub

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON appends raw, one valid JSON value, with every string scrubbed by
// Text, object keys included, numbers that are card numbers replaced by
// the string "[card]", and numbers that denote one of ids (an id of at
// least MinNumericID digits: 7008984883, 7008984883.0, 7.008984883e9 for
// the id "7008984883") replaced by the string "[id]". It returns the
// count of replacements. A key that changes gets "#" and its position in
// the object appended ("[email]#3"), so that two scrubbed keys of one
// object stay distinct.
func (sc *Scanner) JSON(dst, raw []byte, ids [][]byte) ([]byte, int) {
	total := 0
	var numIDs [][]byte // computed at the first number
	numDone := false
	type frame struct {
		obj    bool
		member int
	}
	var stackBuf [16]frame
	stack := stackBuf[:0]
	expectKey := false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '{' || c == '[':
			stack = append(stack, frame{obj: c == '{'})
			expectKey = c == '{'
			dst = append(dst, c)
			i++
		case c == '}' || c == ']':
			stack = stack[:len(stack)-1]
			expectKey = false
			dst = append(dst, c)
			i++
		case c == ',':
			if n := len(stack); n > 0 && stack[n-1].obj {
				expectKey = true
				stack[n-1].member++
			}
			dst = append(dst, c)
			i++
		case c == '"':
			end, esc := stringEnd(raw, i)
			body := raw[i+1 : end-1]
			text := body
			if esc {
				var s string
				if json.Unmarshal(raw[i:end], &s) == nil {
					text = []byte(s)
				}
			}
			if !utf8.Valid(text) {
				// Scan what will be written: each invalid byte becomes
				// U+FFFD in the output (AppendQuoted).
				sc.valid = replaceInvalid(sc.valid[:0], text)
				text = sc.valid
			}
			var n int
			sc.buf, n = sc.Text(sc.buf[:0], text, ids)
			if n == 0 {
				dst = append(dst, raw[i:end]...)
			} else {
				total += n
				if expectKey {
					sc.buf = append(sc.buf, '#')
					sc.buf = strconv.AppendInt(sc.buf, int64(stack[len(stack)-1].member), 10)
				}
				dst = AppendQuoted(dst, sc.buf)
			}
			expectKey = false
			i = end
		case c == '-' || isDigit(c):
			j := i + 1
			for j < len(raw) && (isDigit(raw[j]) || raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' || raw[j] == '+' || raw[j] == '-') {
				j++
			}
			if k := j - i; k >= 13 && k <= 19 && len(findCards(nil, raw[i:j])) > 0 {
				dst = append(dst, `"[card]"`...)
				sc.found |= 1 << Card
				total++
			} else if len(ids) > 0 && denotesID(raw[i:j], sc.idsOnce(ids, &numIDs, &numDone)) {
				dst = append(dst, `"[id]"`...)
				sc.found |= 1 << ID
				total++
			} else {
				dst = append(dst, raw[i:j]...)
			}
			i = j
		default:
			j := i + 1
			for j < len(raw) && !structural[raw[j]] {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
		}
	}
	return dst, total
}

// MinNumericID is the fewest digits an id must have to be looked for in
// JSON numbers: a shorter one (a user "42") would replace every quantity
// or price that happens to equal it, and an id space that small is
// enumerable whatever consentd does.
const MinNumericID = 6

// idsOnce returns numericIDs(ids), computed on the first call of a JSON
// call (most values hold no number, and the ids are many).
func (sc *Scanner) idsOnce(ids [][]byte, num *[][]byte, done *bool) [][]byte {
	if !*done {
		*num, *done = sc.numericIDs(ids), true
	}
	return *num
}

// numericIDs returns the ids that are integers of at least MinNumericID
// digits, in canonical form (CanonicalInt).
func (sc *Scanner) numericIDs(ids [][]byte) [][]byte {
	sc.numIDs = sc.numIDs[:0]
	for _, id := range ids {
		if c, ok := CanonicalInt(id); ok && len(bytes.TrimPrefix(c, []byte("-"))) >= MinNumericID {
			sc.numIDs = append(sc.numIDs, c)
		}
	}
	return sc.numIDs
}

// denotesID reports whether the JSON number tok denotes one of ids
// (canonical integers).
func denotesID(tok []byte, ids [][]byte) bool {
	c, ok := CanonicalInt(tok)
	if !ok {
		return false
	}
	for _, id := range ids {
		if bytes.Equal(c, id) {
			return true
		}
	}
	return false
}

// CanonicalInt returns the integer a JSON number (or a string of one)
// denotes, in canonical decimal form (no sign for zero, no leading zeros,
// no fraction or exponent), and whether it denotes an integer exactly:
// "42", "42.0", "4.2e1" and "420e-1" all give "42"; "42.5" and "abc" give
// false. Plain integers are returned as they are, without allocation.
func CanonicalInt(tok []byte) ([]byte, bool) {
	if len(tok) == 0 || len(tok) > 400 || (tok[0] != '-' && !isDigit(tok[0])) {
		return nil, false
	}
	digits := tok
	if tok[0] == '-' {
		digits = tok[1:]
	}
	intEnd, exp := len(digits), false
	for i, c := range digits {
		switch {
		case isDigit(c):
		case c == '.':
			if intEnd == len(digits) {
				intEnd = i
			}
		case c == 'e' || c == 'E':
			exp = true
			if intEnd == len(digits) {
				intEnd = i
			}
		case c == '+' || c == '-':
		default:
			return nil, false // not a number: no allocation, no parsing
		}
	}
	if !exp {
		// An integer, or one with a fraction of zeros: no allocation.
		intPart, frac := digits[:intEnd], digits[intEnd:]
		if !allDigits(intPart) || len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
			return nil, false
		}
		if len(frac) > 0 && (len(frac) == 1 || !allZeros(frac[1:])) {
			return nil, false // "42." is not JSON; "42.5" is no integer
		}
		if intPart[0] == '0' {
			return intPart, true // -0 and 0.0 are 0
		}
		return tok[:len(tok)-len(frac)], true
	}
	if !validNumber(tok) {
		return nil, false
	}
	var r big.Rat
	if _, ok := r.SetString(string(tok)); !ok || !r.IsInt() {
		return nil, false
	}
	return []byte(r.Num().String()), true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func allZeros(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// validNumber reports whether tok, which starts with "-" or a digit, is a
// JSON number, bounding its exponent so that big.Rat never builds a huge
// integer.
func validNumber(tok []byte) bool {
	if !json.Valid(tok) {
		return false
	}
	if i := bytes.IndexAny(tok, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(string(tok[i+1:]), "+"))
		if err != nil || exp > 64 || exp < -64 {
			return false
		}
	}
	return true
}

// replaceInvalid appends s with every byte that is not part of a valid
// UTF-8 sequence replaced by U+FFFD, as AppendQuoted writes it.
func replaceInvalid(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

// stringEnd returns the index after the closing quote of the string
// starting at raw[i], and whether it has escapes.
func stringEnd(raw []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return len(raw), esc
}

// AppendQuoted appends s as a JSON string.
func AppendQuoted(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// structural marks the bytes JSON's loop must look at.
var structural = func() (t [256]bool) {
	for _, c := range []byte(`{}[],"-0123456789`) {
		t[c] = true
	}
	return t
}()
