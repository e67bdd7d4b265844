package scrub

import (
	"encoding/json"
	"testing"
)

// FuzzScrub checks that JSON keeps a valid JSON value valid, and that
// scrubbing its output again finds nothing more (no detector match
// survives, and placeholders match no detector).
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		`{"email":"bob@example.com","n":4111111111111111}`,
		`{"bob%40example.com":["+49 151 23456789","198.51.100.55"]}`,
		`{"u":"https://s.example/users/user-000123?email=a%40b.co#x"}`,
		`"2002:c633:6437::1 and 2026-11-22"`,
		`{"a":"\u0040\ud83d\ude00 user-000123"}`,
		`{"revenue":7008984883,"xs":[1,7.008984883e9,70089848830E-1,-7008984883]}`,
		`{"t":"ref dXNlci0wMDAxMjM= and 616c6963652e736d697468406578616d706c652e636f6d","h":"54da664132c497d32c7838c96da82ad7"}`,
		`{"a":"alice [at] example [dot] com from fe80::1:2:3%eth0","b":"zzenphbGljZS5zbWl0aEBleGFtcGxlLmNvbQ"}`,
	} {
		f.Add([]byte(s))
	}
	ids := [][]byte{[]byte("user-000123"), []byte("7008984883")}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		sc := Scanner{Hashes: true, AtWords: true}
		out, _ := sc.JSON(nil, data, ids)
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, data)
		}
		again, n := sc.JSON(nil, out, ids)
		if n != 0 {
			t.Fatalf("second pass changed %d pieces: %q -> %q -> %q", n, data, out, again)
		}
	})
}
