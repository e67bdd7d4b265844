package demo

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsWithNothingInstalled runs the demo on its in-process broker
// and Redis and checks that it reports drops, strips, pseudonyms and dead
// letters, and that every produced event is accounted for.
func TestDemoRunsWithNothingInstalled(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := Run(ctx, Options{Duration: 500 * time.Millisecond, Users: 200}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"skipped consent_denied:personalization",
		"dead-lettered, by reason:",
		"invalid_json",
		"header consentd-actions: drop_fields:",
		"pseudonymize:anonymousId",
		`Id":"k1:`,
		"before: {",
		"after:  {",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Before shows raw ids, after only pseudonyms.
	if !regexp.MustCompile(`before: .*"anonymousId":"anon-\d+`).MatchString(s) || regexp.MustCompile(`after: .*"(user|anon)-\d+`).MatchString(s) {
		t.Errorf("before/after do not show pseudonymization:\n%s", s)
	}
	m := regexp.MustCompile(`accounting: (\d+) raw events in`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no accounting line:\n%s", s)
	}
	if n, _ := strconv.Atoi(m[1]); n < 500 {
		t.Errorf("only %d events produced", n)
	}
}
