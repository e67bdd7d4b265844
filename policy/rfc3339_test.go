package policy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestParseTimeMatchesTimeParse: parseTime accepts exactly what
// time.Parse(time.RFC3339Nano) accepts, with the same instant, on edge
// cases and on random mutations of valid timestamps.
func TestParseTimeMatchesTimeParse(t *testing.T) {
	cases := []string{
		"2026-11-22T10:15:30Z", "2026-11-22T10:15:30.123Z", "2026-11-22T10:15:30.123456789Z", "2026-11-22T10:15:30.1234567891Z",
		"2026-11-22T10:15:30.Z", "2026-11-22t10:15:30Z", "2026-11-22T10:15:30z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
		"2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
		"2026-11-22T10:15:30+02:00", "2026-11-22T10:15:30-00:00", "2026-11-22 10:15:30Z", "+026-11-22T10:15:30Z", "2026-1-22T10:15:30Z",
		"2026-11-22T10:15:30.-1Z", "2026-11-22T10:15:30.1e3Z", "", "Z", "2026-11-22T10:15:30", "２026-11-22T10:15:30Z",
	}
	r := rand.New(rand.NewPCG(5, 6))
	digits := "0123456789"
	for range 20000 {
		b := []byte(fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", r.IntN(10000), r.IntN(14), r.IntN(33), r.IntN(26), r.IntN(62), r.IntN(62)))
		if n := r.IntN(11); n > 0 {
			b = append(b, '.')
			for range n - 1 {
				b = append(b, digits[r.IntN(10)])
			}
		}
		b = append(b, "ZZz+"[r.IntN(4)])
		if r.IntN(4) == 0 {
			b[r.IntN(len(b))] = "0:-T.Z9a"[r.IntN(8)]
		}
		cases = append(cases, string(b))
	}
	fast := 0
	for _, c := range cases {
		got, ok := parseTime([]byte(c))
		want, err := time.Parse(time.RFC3339Nano, c)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Fatalf("%q: parseTime %v %t, time.Parse %v %v", c, got, ok, want, err)
		}
		if _, ok := parseUTC([]byte(c)); ok {
			fast++
		}
	}
	if fast < 1000 {
		t.Fatalf("only %d of %d cases took the fast path", fast, len(cases))
	}
}
