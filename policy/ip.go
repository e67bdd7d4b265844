package policy

import (
	"net/netip"
	"strings"
)

// TruncateIP keeps the first v4 bits of an IPv4 address, or the first v6
// bits of an IPv6 address, and zeroes the rest. Zones are dropped.
//
// IPv6 addresses that carry an IPv4 address have it truncated with the
// IPv4 rule, whatever v6 says, so that a /48 of a 6to4 address does not
// keep the whole client IPv4:
//
//   - IPv4-mapped ::ffff:0:0/96 becomes the plain IPv4 address, truncated
//     to v4 bits;
//   - 6to4 2002::/16 (IPv4 in bits 16–47) keeps at most 16+v4 bits;
//   - IPv4-compatible ::/96, SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and
//     ISATAP interface ids (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d) keep at
//     most 96+v4 bits;
//   - local-use NAT64 64:ff9b:1::/48 may embed the IPv4 at any RFC 6052
//     position: at most 48 bits are kept;
//   - Teredo 2001::/32 keeps at most 64 bits (prefix and Teredo server);
//     the flags, the obfuscated port and the obfuscated client IPv4 are
//     zeroed.
func TruncateIP(s string, v4, v6 int) (string, error) {
	b, err := appendTruncatedIP(nil, s, v4, v6)
	return string(b), err
}

// appendTruncatedIP appends TruncateIP(s, v4, v6) to dst.
func appendTruncatedIP(dst []byte, s string, v4, v6 int) ([]byte, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return dst, err
	}
	a = a.WithZone("").Unmap()
	bits := v6
	if a.Is4() {
		bits = v4
	} else {
		bits = min(v6, embeddedIPv4Limit(a.As16(), v4))
	}
	pfx, err := a.Prefix(bits)
	if err != nil {
		return dst, err
	}
	return pfx.Addr().AppendTo(dst), nil
}

// embeddedIPv4Limit returns how many leading bits of the IPv6 address b
// may be kept so that an IPv4 address it carries is truncated to v4 bits
// (128 when it carries none).
func embeddedIPv4Limit(b [16]byte, v4 int) int {
	zero := func(from, to int) bool {
		for _, c := range b[from:to] {
			if c != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002::/16
		return 16 + v4
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo 2001::/32
		return 64
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1: // 64:ff9b:1::/48
		return 48
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12): // NAT64 64:ff9b::/96
		return 96 + v4
	case zero(0, 12): // IPv4-compatible ::/96 (also :: and ::1)
		return 96 + v4
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // SIIT ::ffff:0:0:0/96
		return 96 + v4
	case (b[8] == 0 || b[8] == 2) && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe: // ISATAP interface id
		return 96 + v4
	}
	return 128
}
