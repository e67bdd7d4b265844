package scrub

import (
	"bytes"
	"encoding/base64"
)

// This file holds the detectors of machine identifiers that trackers and
// attackers put into free text: JSON Web Tokens and MAC addresses.

// findJWTs appends a Token span for every JSON Web Token in s: three
// base64url segments joined by dots whose first segment decodes to a JSON
// object naming "alg" or "typ" (the header every JWT has). A JWT in a URL
// is a credential as well as personal data (its payload holds the
// subject). Not found: a token whose header is not base64url JSON (then
// it is no JWT), or one split by other characters.
func findJWTs(sp []span, s []byte) []span {
	var hdr [96]byte
	for off := 0; off < len(s); {
		k := bytes.Index(s[off:], []byte("eyJ"))
		if k < 0 {
			return sp
		}
		i := off + k
		off = i + 3
		if i > 0 && isB64URL(s[i-1]) {
			continue // inside a longer run
		}
		end, dots, first := i, 0, -1
		for end < len(s) && (isB64URL(s[end]) || s[end] == '.') {
			if s[end] == '.' {
				dots++
				if first < 0 {
					first = end
				}
				if dots > 2 {
					break
				}
			}
			end++
		}
		if dots < 2 || first-i < 10 {
			continue
		}
		h := s[i:first]
		if base64.RawURLEncoding.DecodedLen(len(h)) > len(hdr) {
			h = h[:base64.RawURLEncoding.EncodedLen(len(hdr))/4*4]
		}
		n, err := base64.RawURLEncoding.Decode(hdr[:], h)
		if err != nil && n == 0 {
			continue
		}
		d := hdr[:n]
		if len(d) == 0 || d[0] != '{' || (!bytes.Contains(d, []byte(`"alg"`)) && !bytes.Contains(d, []byte(`"typ"`))) {
			continue
		}
		sp = append(sp, span{i, end, Token})
		off = end
	}
	return sp
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// findMACs appends a MAC span for every MAC address in s: six pairs of hex
// digits joined by ":" or "-" (one separator throughout), or three groups
// of four joined by "." (Cisco notation), standing alone (no hex digit or
// separator glued on either side). Times (12:34:56) have too few groups;
// UUIDs have groups of other sizes.
func findMACs(sp []span, s []byte) []span {
	for i := 0; i+14 <= len(s); i++ {
		// The cheap test first: a MAC's first separator stands two hex
		// digits (":" or "-") or four (".") after its start.
		if c := s[i+2]; c != ':' && c != '-' && s[i+4] != '.' {
			continue
		}
		if !isHex(s[i]) || (i > 0 && (isHex(s[i-1]) || isMACSep(s[i-1]))) {
			continue
		}
		if end, ok := macAt(s, i); ok {
			sp = append(sp, span{i, end, MAC})
			i = end - 1
		}
	}
	return sp
}

func isMACSep(c byte) bool { return c == ':' || c == '-' || c == '.' }

// macAt reports a MAC address starting at s[i] and where it ends.
func macAt(s []byte, i int) (int, bool) {
	alone := func(end int) bool {
		return end == len(s) || !(isHex(s[end]) || isMACSep(s[end]) && end+1 < len(s) && isHex(s[end+1]))
	}
	if i+17 <= len(s) && (s[i+2] == ':' || s[i+2] == '-') {
		sep := s[i+2]
		ok := true
		for g := 0; g < 6 && ok; g++ {
			p := i + 3*g
			ok = isHex(s[p]) && isHex(s[p+1]) && (g == 5 || s[p+2] == sep)
		}
		if ok && alone(i+17) {
			return i + 17, true
		}
	}
	if i+14 <= len(s) && s[i+4] == '.' {
		ok := true
		for g := 0; g < 3 && ok; g++ {
			p := i + 5*g
			ok = isHex(s[p]) && isHex(s[p+1]) && isHex(s[p+2]) && isHex(s[p+3]) && (g == 2 || s[p+4] == '.')
		}
		if ok && alone(i+14) {
			return i + 14, true
		}
	}
	return 0, false
}
