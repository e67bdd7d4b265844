package scrub

import (
	"strings"
	"testing"

	"github.com/consentd/consentd/internal/demo/synth"
)

const (
	testJWT        = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTAwMDEyMyIsImVtYWlsIjoiYm9iQGV4YW1wbGUuY29tIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	testJWTPayload = "eyJzdWIiOiJ1c2VyLTAwMDEyMyIsImVtYWlsIjoiYm9iQGV4YW1wbGUuY29tIn0"
	testJWTNone    = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9."
	// Base64url JSON that is no JWT header (no alg, no typ).
	notJWT = "eyJmb28iOiJiYXIiLCJiYXoiOjF9.eyJ4IjoxfQ.sig"
)

func TestTokensAndMACs(t *testing.T) {
	tests := []textCase{
		{"jwt alone", testJWT, "[token]"},
		{"jwt in a query", "https://s.example/cb?id_token=" + testJWT + "&state=x", "https://s.example/cb?id_token=[token]&state=x"},
		{"jwt in a fragment", "/cb#access_token=" + testJWT, "/cb#access_token=[token]"},
		{"jwt as a path segment", "/auth/" + testJWT + "/done", "/auth/[token]/done"},
		{"unsigned jwt", "t=" + testJWTNone + " end", "t=[token] end"},
		// Not a JWT (glued), but its payload decodes to an e-mail.
		{"jwt glued to a longer run: payload still read", "x" + testJWT, "x" + strings.Replace(testJWT, testJWTPayload, "[email]", 1)},
		{"base64 json that is no jwt stays", notJWT, notJWT},
		{"two segments stay", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9"},
		{"mac colons", "device 00:1A:2B:3C:4D:5E seen", "device [mac] seen"},
		{"mac dashes lower", "00-1a-2b-3c-4d-5e", "[mac]"},
		{"mac cisco", "001a.2b3c.4d5e.", "[mac]."},
		{"mac letters only", "aa:bb:cc:dd:ee:ff", "[mac]"},
		{"time stays", "12:34:56", "12:34:56"},
		{"time with millis stays", "12:34:56.789", "12:34:56.789"},
		{"mixed separators stay", "00:1a-2b:3c-4d:5e", "00:1a-2b:3c-4d:5e"},
		{"seven groups stay", "00:1a:2b:3c:4d:5e:6f", "00:1a:2b:3c:4d:5e:6f"},
		{"uuid stays", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"version string stays", "v1.2.3-beta.4", "v1.2.3-beta.4"},
		{"sku stays", "AB-12-CD-34-EF", "AB-12-CD-34-EF"},
	}
	runTextTable(t, new(Scanner), nil, tests)
}

// TestDetectorsOnSyntheticEvents measures the false positives of the
// detectors of machine identifiers and encodings on the synthetic event
// stream (the demo's and the benchmarks'), which holds none of them: no
// JWT, MAC address, hash, base64 or hex of personal data, no bracketed
// "at". Every finding there is a false positive. The e-mails, phones and
// IPs the stream does hold stay the other detectors' business.
func TestDetectorsOnSyntheticEvents(t *testing.T) {
	g := synth.New(11, 5000)
	sc := Scanner{Hashes: true, AtWords: true}
	var plain Scanner
	const events = 20000
	found := map[string]int{}
	for i := 0; i < events; i++ {
		v, _ := g.Event()
		for _, s := range sc.find(nil, v, nil, false) {
			if s.kind == Token || s.kind == MAC || s.kind == Hash {
				found[s.kind.Placeholder()]++
				t.Errorf("event %d: %s found in %q", i, s.kind.Placeholder(), v[s.start:s.end])
			}
		}
		for _, s := range sc.findEncoded(nil, v, nil) {
			found["encoded"]++
			t.Errorf("event %d: encoded %s found in %q", i, s.kind.Placeholder(), v[s.start:s.end])
		}
		if _, n := sc.Text(nil, v, nil); n != func() int { _, m := plain.Text(nil, v, nil); return m }() {
			found["at-words"]++
			t.Errorf("event %d: bracketed at or dot read in %q", i, v)
		}
	}
	t.Logf("false positives in %d synthetic events: %v", events, found)
}

// TestHTMLEntities: personal data written with HTML character references
// is found, also when percent-encoding hides the references; ordinary
// ampersands stay.
func TestHTMLEntities(t *testing.T) {
	tests := []textCase{
		{"decimal", "mail bob&#64;example.com now", "mail [email] now"},
		{"hex", "bob&#x40;example.com", "[email]"},
		{"named", "bob&commat;example&period;com", "[email]"},
		{"every character", "&#98;&#111;&#98;&#64;&#101;&#120;&#97;&#109;&#112;&#108;&#101;&#46;&#99;&#111;&#109;", "[email]"},
		{"percent-encoded reference", "bob%26%2364%3Bexample.com", "[email]"},
		{"ip digits as references", "&#49;98.51.100.55", "[ip]"},
		{"ampersand stays", "Tom & Jerry, R&D, a&b;c", "Tom & Jerry, R&D, a&b;c"},
		{"escaped markup stays", "&lt;b&gt;bold&lt;/b&gt; &amp; more", "&lt;b&gt;bold&lt;/b&gt; &amp; more"},
	}
	runTextTable(t, new(Scanner), nil, tests)
}

type textCase struct{ name, in, want string }

// runTextTable checks Text on each case: the output, and that a count of
// changes is reported exactly when the text changed.
func runTextTable(t *testing.T, sc *Scanner, ids [][]byte, tests []textCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := sc.Text(nil, []byte(tt.in), ids)
			if string(got) != tt.want {
				t.Fatalf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if (n > 0) != (tt.in != tt.want) {
				t.Fatalf("Text(%q): %d changes", tt.in, n)
			}
		})
	}
}

// TestURLIPHosts: a URL whose host is an IP address in a form browsers
// read (one number, hex, octal parts, fewer parts, an IPv6 zone) loses
// the host; host names and dotted numbers no browser reads as an address
// stay.
func TestURLIPHosts(t *testing.T) {
	keep := func(string) bool { return false }
	for _, tt := range []struct{ in, want string }{
		{"http://3232235777/x", "http://[ip]/x"},
		{"http://0xC0A80101/", "http://[ip]/"},
		{"http://0177.0.0.01/", "http://[ip]/"},
		{"http://0177.1/", "http://[ip]/"},
		{"http://127.1:8080/p", "http://[ip]/p"},
		{"http://192.168.257/", "http://[ip]/"},
		{"https://[fe80::1%25en0]:8443/a", "https://[ip]/a"},
		{"https://shop.example/a", "https://shop.example/a"},
		{"https://123abc.example/", "https://123abc.example/"},
		{"https://2024.11.22/", "https://2024.11.22/"},
		{"https://1.2.3.4.5/", "https://1.2.3.4.5/"},
		{"https://example.com:8080/", "https://example.com:8080/"},
	} {
		var sc Scanner
		got, n := sc.URL(nil, []byte(tt.in), keep, nil)
		if string(got) != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if (n > 0) != (tt.in != tt.want) {
			t.Errorf("URL(%q): %d changes", tt.in, n)
		}
	}
}
