package policy

import (
	"testing"
	"time"
)

func TestCleanTime(t *testing.T) {
	p := compileYAML(t, `
  - {name: none, topic: c.none, require: [personalization]}
  - {name: hour, topic: c.hour, require: [personalization], transforms: [{truncate_time: {to: hour}}]}
  - {name: coarsest, topic: c.c, require: [personalization], transforms: [{truncate_time: {to: minute, fields: [sentAt]}}, {truncate_time: {to: day}}, {truncate_time: {to: hour, fields: [x]}}]}
`)
	raw := time.Date(2026, 11, 22, 21, 37, 12, 123e6, time.FixedZone("CET", 3600))
	d, err := decide(t, p, `{"userId":"u","timestamp":"2026-11-22T21:37:12.123+01:00"}`, granted(1, "personalization"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"none":     raw,
		"hour":     time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC),
		"coarsest": time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
	}
	for i := range d.Outputs {
		od := &d.Outputs[i]
		if got := od.CleanTime(raw); !got.Equal(want[od.Output.Name]) {
			t.Errorf("%s: CleanTime = %v, want %v", od.Output.Name, got, want[od.Output.Name])
		}
		if got := od.CleanTime(time.Time{}); !got.IsZero() {
			t.Errorf("%s: zero time became %v", od.Output.Name, got)
		}
	}
	// The record time agrees with the truncated body.
	if v := string(d.Outputs[1].Value); v != `{"userId":"u","timestamp":"2026-11-22T20:00:00Z"}` {
		t.Fatalf("body %s", v)
	}
}
