package scrub

import (
	"strconv"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	ids := [][]byte{[]byte("user-000123"), []byte("anon-9f2c-77"), []byte("u1")}
	tests := []struct{ in, want string }{
		// e-mail
		{"alice@example.com", "[email]"},
		{"Contact: Alice.Smith+tag@mail.example.co.uk, thanks.", "Contact: [email], thanks."},
		{"carol%40example.com", "[email]"},
		{"?email=carol%40example.com&x=1", "?email=[email]&x=1"},
		{"double carol%2540example.com", "double [email]"},
		{"CAROL%40EXAMPLE.COM", "[email]"},
		{"user-000123@example.com", "[email]"},
		{"a@b", "a@b"},
		{"@handle and foo@bar", "@handle and foo@bar"},
		{"price 5@3.50", "price 5@3.50"},
		// IP
		{"from 198.51.100.55 today", "from [ip] today"},
		{"ip=2001:db8:85a3::8a2e:370:7334;", "ip=[ip];"},
		{"2002:c633:6437::1", "[ip]"},
		{"::ffff:198.51.100.55", "[ip]"},
		{"version 1.2.3", "version 1.2.3"},
		{"at 10:15:30 on 2026-11-22T10:15:30.5Z", "at 10:15:30 on 2026-11-22T10:15:30.5Z"},
		{"999.1.1.1", "999.1.1.1"},
		{"std::vector", "std::vector"},
		{"k1:0123456789abcdef0123456789abcdef", "k1:0123456789abcdef0123456789abcdef"},
		// cards
		{"card 4111 1111 1111 1111 exp", "card [card] exp"},
		{"4111-1111-1111-1111", "[card]"},
		{"5555555555554444", "[card]"},
		{"378282246310005", "[card]"},
		{"4111111111111112", "4111111111111112"},
		{"1732280000000", "1732280000000"},
		// phones
		{"call +49 151 2345 6789 now", "call [phone] now"},
		{"+1 (555) 123-4567", "[phone]"},
		{"(555) 123-4567", "[phone]"},
		{"555-123-4567", "[phone]"},
		{"0612345678", "[phone]"},
		{"tel:+33612345678", "tel:[phone]"},
		{"+44.20.7946.0958", "[phone]"},
		{"2026-11-22", "2026-11-22"},
		{"22.11.2026", "22.11.2026"},
		{"order 123456789012", "order 123456789012"},
		{"sku-4711", "sku-4711"},
		{"revenue 12.5 EUR", "revenue 12.5 EUR"},
		// ids
		{"/users/user-000123/orders", "/users/[id]/orders"},
		{"ref anon-9f2c-77.", "ref [id]."},
		{"menu1 u1 u10", "menu1 [id] u10"},
		{"xuser-000123", "x[id]"}, // six bytes or more: found glued
		{"xu1 u1x", "xu1 u1x"},    // shorter: whole words only
		// mixed and long
		{strings.Repeat("lorem ipsum ", 40) + "mail bob@example.org or call +1 555 123 4567 from 203.0.113.9", strings.Repeat("lorem ipsum ", 40) + "mail [email] or call [phone] from [ip]"},
		// disguises: encoded, invisible, compatibility forms, glued to more
		{"see %69%76%61%6E%40%65%78%61%6D%70%6C%65%2E%6F%72%67 now", "see [email] now"},
		{"josé@exämple.de", "[email]"},
		{"peggy\uff20example.com", "[email]"},
		{"quentin\u200b@\u200bexample.com", "[email]"},
		{"carol@mail.example.com-m-077", "[email]-m-077"},
		{"t=%2B49+151+2100+4567", "t=[phone]"},
		{"peer 81.2.142.37:8080", "peer [ip]:8080"},
		{"USER-000123 and Anon-9F2C-77", "[id] and [id]"},
		{"%75%73%65%72%2D%30%30%30%31%32%33", "[id]"},
		{"+49 151 2264 4713 5555-5555-5555-4444", "[phone] [card]"},
		{"4111 1111 1111 1111 2222", "[card] 2222"},
		{"100% sure, 50%-off", "100% sure, 50%-off"},
		{"", ""},
		{"ünïcödé bob@example.org ✓", "ünïcödé [email] ✓"},
	}
	var sc Scanner
	for _, tt := range tests {
		got, n := sc.Text(nil, []byte(unquote(tt.in)), ids)
		if string(got) != tt.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if (n > 0) != (tt.in != tt.want) {
			t.Errorf("Text(%q): %d replacements", tt.in, n)
		}
	}
}

func TestURL(t *testing.T) {
	ids := [][]byte{[]byte("u1"), []byte("user-000123")}
	keep := func(name string) bool { return strings.HasPrefix(name, "utm_") }
	tests := []struct{ in, want string }{
		{"https://shop.example/products/shoes", "https://shop.example/products/shoes"},
		{"https://shop.example/checkout?email=carol%40example.com&utm_source=news", "https://shop.example/checkout?utm_source=news"},
		{"https://shop.example/users/u1/orders", "https://shop.example/users/[id]/orders"},
		{"/users/u1/orders", "/users/[id]/orders"},
		{"/users/user-000123/orders#top", "/users/[id]/orders"},
		{"https://bob:secret@shop.example/a", "https://shop.example/a"},
		{"https://shop.example/a/bob%40example.com/b", "https://shop.example/a/[email]/b"},
		{"https://shop.example/a/bob%2540example.com", "https://shop.example/a/[email]"},
		{"https://shop.example/s?utm_term=bob%40example.com&q=x", "https://shop.example/s?utm_term=%5Bemail%5D"},
		{"https://shop.example/s?utm_content=u1", "https://shop.example/s?utm_content=%5Bid%5D"},
		{"https://198.51.100.55/a", "https://[ip]/a"},
		{"https://shop.example/p/4111111111111111", "https://shop.example/p/[card]"},
		{"?q=bob%40example.com&utm_medium=cpc", "?utm_medium=cpc"},
		{"mailto:bob@example.com", "[email]"},
		{"https://shop.example", "https://shop.example"},
		{"", ""},
	}
	var sc Scanner
	for _, tt := range tests {
		got, n := sc.URL(nil, []byte(tt.in), keep, ids)
		if string(got) != tt.want {
			t.Errorf("URL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if (n > 0) != (tt.in != tt.want) {
			t.Errorf("URL(%q): %d changes", tt.in, n)
		}
	}
}

func TestJSON(t *testing.T) {
	ids := [][]byte{[]byte("user-000123")}
	tests := []struct{ in, want string }{
		{`{"a":"x","n":12.5,"b":[1,true,null]}`, `{"a":"x","n":12.5,"b":[1,true,null]}`},
		{`{"email":"bob@example.com"}`, `{"email":"[email]"}`},
		{`{"alice@example.com":true,"bob@example.com":1}`, `{"[email]#0":true,"[email]#1":1}`},
		{`{"items":[{"email":"a\u0040example.com"},{"note":"call +49 151 23456789"}]}`, `{"items":[{"email":"[email]"},{"note":"call [phone]"}]}`},
		{`{"card":4111111111111111,"ts":1732280000000}`, `{"card":"[card]","ts":1732280000000}`},
		{`{"ref":"user-000123","q":"\"quoted\" user-000123\n"}`, `{"ref":"[id]","q":"\"quoted\" [id]\n"}`},
		{`"198.51.100.55"`, `"[ip]"`},
	}
	var sc Scanner
	for _, tt := range tests {
		got, n := sc.JSON(nil, []byte(tt.in), ids)
		if string(got) != tt.want {
			t.Errorf("JSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if (n > 0) != (tt.in != tt.want) {
			t.Errorf("JSON(%s): %d changes", tt.in, n)
		}
	}
}

// unquote turns \uXXXX in a test input into the character.
func unquote(s string) string {
	if !strings.Contains(s, `\u`) {
		return s
	}
	u, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		panic(err)
	}
	return u
}

// TestJSONNumericIDs: a numeric id echoed as a JSON number, in any form
// that denotes the same integer, is replaced; numbers that only look
// alike stay.
func TestJSONNumericIDs(t *testing.T) {
	ids := [][]byte{[]byte("7008984883"), []byte("42"), []byte("anon-1")}
	tests := []struct {
		name, in, want string
	}{
		{"plain", `{"revenue":7008984883}`, `{"revenue":"[id]"}`},
		{"in an array", `{"xs":[1,7008984883,3]}`, `{"xs":[1,"[id]",3]}`},
		{"fraction zero", `{"v":7008984883.0}`, `{"v":"[id]"}`},
		{"exponent", `{"v":7.008984883e9}`, `{"v":"[id]"}`},
		{"exponent with sign and fraction", `{"v":70089848830E-1}`, `{"v":"[id]"}`},
		{"nested", `{"a":{"b":[[7008984883]]}}`, `{"a":{"b":[["[id]"]]}}`},
		{"as a string", `{"v":"7008984883"}`, `{"v":"[id]"}`},
		{"neighbour stays", `{"v":7008984884}`, `{"v":7008984884}`},
		{"prefix stays", `{"v":700898488}`, `{"v":700898488}`},
		{"longer stays", `{"v":70089848830}`, `{"v":70089848830}`},
		{"negative stays", `{"v":-7008984883}`, `{"v":-7008984883}`},
		{"not an integer stays", `{"v":7008984883.5}`, `{"v":7008984883.5}`},
		{"short id not looked for in numbers", `{"qty":42,"price":42.0}`, `{"qty":42,"price":42.0}`},
		{"epoch stays", `{"ts":1732280000000}`, `{"ts":1732280000000}`},
		{"huge exponent stays", `{"v":1e999999}`, `{"v":1e999999}`},
	}
	var sc Scanner
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := sc.JSON(nil, []byte(tt.in), ids)
			if string(got) != tt.want {
				t.Fatalf("JSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if (n > 0) != (tt.in != tt.want) {
				t.Fatalf("JSON(%s): %d changes", tt.in, n)
			}
		})
	}
}

func TestCanonicalInt(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"42", "42", true}, {"-42", "-42", true}, {"42.0", "42", true}, {"4.2e1", "42", true}, {"420e-1", "42", true},
		{"4.2E+1", "42", true}, {"0", "0", true}, {"-0", "0", true}, {"-0.0", "0", true}, {"42.5", "", false},
		{"007", "", false}, {"abc", "", false}, {"", "", false}, {"-", "", false}, {"1e999999", "", false},
		{"42.", "", false}, {"4-2", "", false}, {"-42.000", "-42", true}, {"0.000", "0", true}, {"1.5e1", "15", true}, {"1.55e1", "", false},
		{"user-000123", "", false}, {"12345678901234567890123", "12345678901234567890123", true}, {"1.2345678901234567890123e22", "12345678901234567890123", true},
	} {
		got, ok := CanonicalInt([]byte(tt.in))
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("CanonicalInt(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
