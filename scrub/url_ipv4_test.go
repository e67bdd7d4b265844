package scrub

import (
	"strconv"
	"testing"
)

// TestIPv4PartMatchesParseUint: the hand-written part parser reads what
// strconv.ParseUint reads in the part's base, and refuses what it refuses.
func TestIPv4PartMatchesParseUint(t *testing.T) {
	parts := []string{"0", "00", "0x", "0X", "0x0", "255", "256", "0377", "0400", "08", "09", "0xff", "0xFF", "0xg1", "4294967295",
		"4294967296", "0xffffffff", "0x100000000", "037777777777", "040000000000", "1a", "a1", "-1", "+1", "1_0", "", "0x1_0",
		"1234567890123456", "12345678901234567", "0xffffffffffffffff", "99999999999999999999", "shop", "example", "com", "0xdeadbeef"}
	for _, p := range parts {
		got, ok := ipv4Part([]byte(p))
		base, digits := ipv4Base([]byte(p))
		var want uint64
		wantOK := false
		switch {
		case len(digits) == 0:
			wantOK = base == 16 || len(p) > 0
		case len(digits) <= 16:
			v, err := strconv.ParseUint(string(digits), base, 64)
			want, wantOK = v, err == nil && v <= 0xffffffff
		}
		if ok != wantOK || ok && got != want {
			t.Errorf("ipv4Part(%q) = %d, %t; want %d, %t", p, got, ok, want, wantOK)
		}
	}
}
