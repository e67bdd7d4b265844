package scrub

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// TestEncoded: base64 (either alphabet, padded or not, glued to other
// text) and hex that decode to personal data or to one of the event's
// ids are replaced whole; runs that decode to nothing personal stay.
func TestEncoded(t *testing.T) {
	ids := [][]byte{[]byte("user-000123")}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	b64url := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	tests := []textCase{
		{"base64 e-mail", "u=" + b64("alice.smith@example.com"), "u=[email]"},
		{"base64url e-mail, unpadded", "/r/" + b64url("alice.smith@example.com?x"), "[email]"}, // "/" is base64: the run is replaced whole,
		{"base64 glued behind letters", "ref zz" + b64url("zz alice@example.com"), "ref [email]"},
		{"base64 of JSON holding an e-mail", b64(`{"email":"bob@example.org","n":1}`), "[email]"},
		{"base64 of an id", "token " + b64("user-000123"), "token [id]"},
		{"base64 of text around an id", b64("xxxuser-000123"), "[id]"},
		{"base64 of an IP", b64("198.51.100.55"), "[ip]"},
		{"hex e-mail", "h=" + hx("alice.smith@example.com"), "h=[email]"},
		{"hex upper case", strings.ToUpper(hx("alice.smith@example.com")), "[email]"},
		{"hex of an id, odd alignment", "0" + hx("user-000123"), "[id]"},
		// Padding does not hide what follows it, however long.
		{"base64 e-mail behind 5000 bytes of filler", b64(strings.Repeat("x", 5000) + " alice@example.com"), "[email]"},
		{"hex e-mail behind 5000 bytes of filler", hx(strings.Repeat("x", 5000) + " alice@example.com"), "[email]"},
		// look-alikes that stay
		{"ordinary long words stay", "Wireless Headphones Noisecancelling Internationalization", "Wireless Headphones Noisecancelling Internationalization"},
		{"uuid stays", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"sku stays", "SKU-AB12CD34EF56-XL", "SKU-AB12CD34EF56-XL"},
		{"epoch stays", "1732280000000", "1732280000000"},
		{"base64 of harmless text stays", b64("summer sale 2026"), b64("summer sale 2026")},
		{"hex of harmless text stays", hx("summer sale"), hx("summer sale")},
		{"sha256 of an e-mail stays without the hash detector", sha256hex("a@b.co"), sha256hex("a@b.co")},
		{"order number stays", "order 123456789012", "order 123456789012"},
	}
	runTextTable(t, new(Scanner), ids, tests)
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestHashes: the opt-in detector replaces MD5, SHA-1 and SHA-256 hex
// words; AppendHashes gives the forms of an event's own e-mail, found
// glued and in any case without the detector.
func TestHashes(t *testing.T) {
	sc := Scanner{Hashes: true}
	tests := []textCase{
		{"sha256", "em=" + sha256hex("alice@example.com"), "em=[hash]"},
		{"md5", "54da664132c497d32c7838c96da82ad7", "[hash]"},
		{"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d", "[hash]"},
		{"31 digits stay", "54da664132c497d32c7838c96da82ad", "54da664132c497d32c7838c96da82ad"},
		{"33 digits stay", "54da664132c497d32c7838c96da82ad7f", "54da664132c497d32c7838c96da82ad7f"},
		{"digits only stay", strings.Repeat("1", 32), strings.Repeat("1", 32)},
		{"uuid stays", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"glued to letters stays", "x" + sha256hex("a"), "x" + sha256hex("a")},
	}
	runTextTable(t, &sc, nil, tests)
	ids, _ := AppendHashes(nil, nil, []byte(" Alice@Example.com"))
	if len(ids) != 6 {
		t.Fatalf("AppendHashes: %d forms, want 6 (normalized and as written)", len(ids))
	}
	var plain Scanner
	for _, in := range []string{
		"match_key=" + sha256hex("alice@example.com") + "&x=1",
		"k" + strings.ToUpper(sha256hex("alice@example.com")),
		"md5:" + hex.EncodeToString(md5sum("alice@example.com")),
	} {
		if got, n := plain.Text(nil, []byte(in), ids); n == 0 || strings.Contains(string(got), sha256hex("alice@example.com")[:20]) {
			t.Errorf("hash of the event's e-mail not found in %q: %q", in, got)
		}
	}
	if got, _ := AppendHashes(nil, nil, []byte("not an address")); len(got) != 0 {
		t.Errorf("AppendHashes of a non-address: %d forms", len(got))
	}
}

// TestAtWordsAndZones: bracketed "at"/"dot" e-mails with the option on,
// IPv6 literals with a zone.
func TestAtWordsAndZones(t *testing.T) {
	sc := Scanner{AtWords: true}
	tests := []textCase{
		{"brackets", "write alice [at] example [dot] com", "write [email]"},
		{"parentheses", "alice(at)example.com", "[email]"},
		{"braces upper", "alice {AT} example {DOT} org", "[email]"},
		{"look-alikes stay", "see you (at) the venue, 3 [dot] points", "see you (at) the venue, 3 [dot] points"},
		{"ipv6 zone", "from fe80::1:2:3%eth0 now", "from [ip] now"},
		{"ipv6 zone percent-encoded", "http://[fe80::1:2:3%25en0]/x", "http://[[ip]]/x"},
	}
	runTextTable(t, &sc, nil, tests)
	var off Scanner
	if got, _ := off.Text(nil, []byte("alice [at] example [dot] com"), nil); string(got) != "alice [at] example [dot] com" {
		t.Errorf("AtWords off: %q", got)
	}
}

func md5sum(s string) []byte {
	h := md5.Sum([]byte(s))
	return h[:]
}
