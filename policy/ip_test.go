package policy

import (
	"net/netip"
	"strings"
	"testing"
)

// TestTruncateIPSpecialPurpose covers every range of the IANA IPv6
// Special-Purpose Address Registry, plus the other forms that carry an
// IPv4 address (IPv4-compatible, SIIT, ISATAP). IPv4 198.51.100.55 is
// c633:6437 in hex; the Teredo example is RFC 4380's (client 192.0.2.45
// obfuscated as 3fff:fdd2, port 40000 as 63bf).
func TestTruncateIPSpecialPurpose(t *testing.T) {
	tests := []struct {
		rng, in string
		at48    string // ipv4_bits 24, ipv6_bits 48 (default)
		at128   string // ipv4_bits 24, ipv6_bits 128: only the IPv4 rule applies
		v4      bool   // carries client IPv4 198.51.100.55 / 192.0.2.45
	}{
		{"::1/128 loopback", "::1", "::", "::", false},
		{"::/128 unspecified", "::", "::", "::", false},
		{"::ffff:0:0/96 IPv4-mapped", "::ffff:198.51.100.55", "198.51.100.0", "198.51.100.0", true},
		{"64:ff9b::/96 NAT64", "64:ff9b::198.51.100.55", "64:ff9b::", "64:ff9b::c633:6400", true},
		{"64:ff9b:1::/48 local-use NAT64", "64:ff9b:1:c633:64:3700::", "64:ff9b:1::", "64:ff9b:1::", true},
		{"100::/64 discard-only", "100::1:2:3:4", "100::", "100::1:2:3:4", false},
		{"100:0:0:1::/64 dummy prefix", "100:0:0:1::5", "100::", "100:0:0:1::5", false},
		{"2001::/32 Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136::", "2001:0:4136:e378::", true},
		{"2001:1::1/128 PCP anycast", "2001:1::1", "2001:1::", "2001:1::1", false},
		{"2001:1::2/128 TURN anycast", "2001:1::2", "2001:1::", "2001:1::2", false},
		{"2001:1::3/128 DNS-SD SRP anycast", "2001:1::3", "2001:1::", "2001:1::3", false},
		{"2001:2::/48 benchmarking", "2001:2::1:2:3", "2001:2::", "2001:2::1:2:3", false},
		{"2001:3::/32 AMT", "2001:3::1:2:3:4", "2001:3::", "2001:3::1:2:3:4", false},
		{"2001:4:112::/48 AS112-v6", "2001:4:112::1:2", "2001:4:112::", "2001:4:112::1:2", false},
		{"2001:10::/28 ORCHID", "2001:10::1:2:3", "2001:10::", "2001:10::1:2:3", false},
		{"2001:20::/28 ORCHIDv2", "2001:20::1:2:3", "2001:20::", "2001:20::1:2:3", false},
		{"2001:30::/28 drone remote ID", "2001:30::1:2:3", "2001:30::", "2001:30::1:2:3", false},
		{"2001:db8::/32 documentation", "2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::", "2001:db8:85a3:8d3:1319:8a2e:370:7348", false},
		{"2002::/16 6to4", "2002:c633:6437::1", "2002:c633:6400::", "2002:c633:6400::", true},
		{"2002::/16 6to4 with subnet and host", "2002:c633:6437:9:a:b:c:d", "2002:c633:6400::", "2002:c633:6400::", true},
		{"2620:4f:8000::/48 direct AS112", "2620:4f:8000::1:2:3", "2620:4f:8000::", "2620:4f:8000::1:2:3", false},
		{"3fff::/20 documentation", "3fff:1234:5678::1", "3fff:1234:5678::", "3fff:1234:5678::1", false},
		{"5f00::/16 SRv6 SIDs", "5f00:1:2:3::4", "5f00:1:2::", "5f00:1:2:3::4", false},
		{"fc00::/7 unique local", "fd12:3456:789a:1::1", "fd12:3456:789a::", "fd12:3456:789a:1::1", false},
		{"fe80::/10 link-local with zone", "fe80::1:2:3:4%eth0", "fe80::", "fe80::1:2:3:4", false},
		{"::/96 IPv4-compatible (deprecated)", "::198.51.100.55", "::", "::c633:6400", true},
		{"::ffff:0:0:0/96 SIIT", "::ffff:0:198.51.100.55", "::", "::ffff:0:c633:6400", true},
		{"ISATAP interface id", "2001:db8:1:2:0:5efe:198.51.100.55", "2001:db8:1::", "2001:db8:1:2:0:5efe:c633:6400", true},
		{"ISATAP interface id, global bit", "2001:db8:1:2:200:5efe:198.51.100.55", "2001:db8:1::", "2001:db8:1:2:200:5efe:c633:6400", true},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			for _, c := range []struct {
				v6   int
				want string
			}{{48, tt.at48}, {128, tt.at128}} {
				got, err := TruncateIP(tt.in, 24, c.v6)
				if err != nil || got != c.want {
					t.Errorf("TruncateIP(%s, 24, %d) = %q, %v; want %q", tt.in, c.v6, got, err, c.want)
				}
				// Independent check: the client IPv4's host octet appears in no form.
				a, _ := netip.ParseAddr(got)
				b := a.As16()
				for _, leak := range []string{"6437", "100.55", "fdd2", "63bf", ".55"} {
					if tt.v4 && strings.Contains(got, leak) {
						t.Errorf("%s -> %s keeps %s", tt.in, got, leak)
					}
				}
				if tt.v4 && (b[15] == 0x37 || b[15] == 0xd2 || b[7] == 0x37) {
					t.Errorf("%s -> %s keeps the host octet", tt.in, got)
				}
			}
		})
	}
}
