package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestPlainLinesCarryRateAndTimeLeft(t *testing.T) {
	var out bytes.Buffer
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMeter(&out, "migrating", "keys", 1000, c.now, 5*time.Second)
	c.t = c.t.Add(time.Second)
	m.Set(100)
	if out.Len() != 0 {
		t.Fatalf("a line before the interval: %q", out.String())
	}
	c.t = c.t.Add(4 * time.Second)
	m.Set(250) // 250 keys in 5s: 50/s, 750 left: 15s
	want := "migrating: 250 of 1000 keys (25%), 50 keys/s, about 15s left\n"
	if out.String() != want {
		t.Fatalf("line %q, want %q", out.String(), want)
	}
	out.Reset()
	c.t = c.t.Add(time.Second)
	m.Add(50)
	if out.Len() != 0 {
		t.Fatalf("a second line within the interval: %q", out.String())
	}
	c.t = c.t.Add(4 * time.Second)
	m.Finish()
	if want := "migrating: 300 keys in 10s (30 keys/s)\n"; out.String() != want {
		t.Fatalf("finish %q, want %q", out.String(), want)
	}
}

func TestUnknownTotalAndQuiet(t *testing.T) {
	var out bytes.Buffer
	c := &fakeClock{t: time.Unix(0, 0)}
	m := newMeter(&out, "exporting", "ids", 0, c.now, time.Second)
	c.t = c.t.Add(2 * time.Second)
	m.Set(10)
	if got := out.String(); got != "exporting: 10 ids, 5 ids/s\n" {
		t.Fatalf("unknown total: %q", got)
	}
	var quiet *Meter // a nil Meter is silent
	quiet.SetTotal(3)
	quiet.Set(1)
	quiet.Add(1)
	quiet.Finish()
	// New on a buffer (not a terminal) prints plain lines, no bar.
	if m := New(&out, "x", "y", 1); m.bar != nil || strings.Contains(out.String(), "\r") {
		t.Fatal("a bar drawn on a writer that is not a terminal")
	}
}
