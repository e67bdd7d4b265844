package scrub

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// JSON appends raw, one valid JSON value, with every string scrubbed by
// Text, object keys included, and numbers that are card numbers replaced
// by the string "[card]". It returns the count of replacements. A key
// that changes gets "#" and its position in the object appended
// ("[email]#3"), so that two scrubbed keys of one object stay distinct.
func (sc *Scanner) JSON(dst, raw []byte, ids [][]byte) ([]byte, int) {
	total := 0
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
			sc.buf, _ = sc.Text(sc.buf[:0], text, ids)
			n := len(sc.spans)
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
