package demo

import (
	"bytes"
	"context"
	"github.com/consentd/consentd/internal/demo/synth"
	"os"
	"path/filepath"
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
		"header consentd-actions: ",
		"keep_only:",
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
	checkHostile(t, s)
	m := regexp.MustCompile(`accounting: (\d+) raw events in`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no accounting line:\n%s", s)
	}
	if n, _ := strconv.Atoi(m[1]); n < 500 {
		t.Errorf("only %d events produced", n)
	}
}

// checkHostile checks the demo's event with personal data in unexpected
// places: the before line shows every piece, no output's after line or
// actions header shows any, every output wrote it, and the event with a
// "UserId" key was dead-lettered as confusable_key.
func checkHostile(t *testing.T, s string) {
	t.Helper()
	_, section, ok := strings.Cut(s, "== personal data in unexpected places")
	if !ok {
		t.Fatalf("demo output lacks the hostile event:\n%s", s)
	}
	section, _, _ = strings.Cut(section, "\n[dead-letter]")
	pii := []string{"carol@example.com", "carol%40example.com", "dave@example.com", "bob@example.org", "+49 151 2345 6789", "/users/user-000000/", "2002:c633:6437::1", "c633:6437"}
	var before string
	after := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if b, ok := strings.CutPrefix(line, "before: "); ok {
			before = b
		}
		if rest, ok := strings.CutPrefix(line, "["); ok {
			name, text, _ := strings.Cut(rest, "] ")
			after[name] += text + "\n"
		}
	}
	for _, p := range pii {
		if !strings.Contains(before, p) {
			t.Errorf("before lacks %q: %s", p, before)
		}
	}
	for _, name := range []string{"personalization", "analytics", "advertising"} {
		a := after[name]
		if !strings.Contains(a, "after:  {") {
			t.Errorf("%s: hostile event not written:\n%s", name, section)
		}
		for _, p := range pii {
			if strings.Contains(a, p) {
				t.Errorf("%s: %q after scrubbing:\n%s", name, p, a)
			}
		}
	}
	if !strings.Contains(after["personalization"], `"ip":"2002:c633:6400::"`) || !strings.Contains(after["personalization"], "/users/[id]/orders") || !strings.Contains(after["analytics"], "Call me on [phone]") {
		t.Errorf("scrubbed values missing:\n%s", section)
	}
	if !strings.Contains(section, "dead-lettered, reason confusable_key: ") || !strings.Contains(section, `"UserId":"erin@example.com"`) {
		t.Errorf("confusable event not dead-lettered as confusable_key:\n%s", section)
	}
}

// TestDemoShadowPolicy: on the demo data, a shadow policy that stops
// keeping messageId in advertising reports that difference, and only it.
func TestDemoShadowPolicy(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(shipped), "keep_only: [type, event, messageId, timestamp, userId, anonymousId, properties.product_id",
		"keep_only: [type, event, timestamp, userId, anonymousId, properties.product_id", 1)
	if next == string(shipped) {
		t.Fatal("the shipped policy changed: the edit does not apply")
	}
	path := filepath.Join(t.TempDir(), "policy.next.yaml")
	os.WriteFile(path, []byte(next), 0o600)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := Run(ctx, Options{Duration: 300 * time.Millisecond, Users: 200, ShadowPolicy: path}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	i := strings.Index(s, "== the shadow policy's differences")
	if i < 0 {
		t.Fatalf("no shadow section:\n%s", s)
	}
	rows := regexp.MustCompile(`(?m)^(\S+)\s+(\S+)\s+(\d+)\s*(.*)$`).FindAllStringSubmatch(s[i:], -1)
	seen := map[string]bool{}
	for _, r := range rows {
		if r[1] == "output" {
			continue
		}
		seen[r[1]+" "+r[2]] = true
		if r[1] != "advertising" || (r[2] != "field_removed" && r[2] != "transform_changed") {
			t.Errorf("a difference the change does not make: %q", r[0])
		}
		if r[2] == "field_removed" && !strings.HasPrefix(r[4], "messageId (") {
			t.Errorf("field_removed at %q, want messageId", r[4])
		}
	}
	if !seen["advertising field_removed"] || !seen["advertising transform_changed"] {
		t.Fatalf("the differences are missing:\n%s", s[i:])
	}
}

// TestDemoRepresentationFindsTheSeededSkew runs the demo, whose users in
// synth.SkewedCountry consent less to personalization and analytics, and
// checks that the representation report flags that country, and only
// it, as under-represented in those outputs, and draws the chart.
func TestDemoRepresentationFindsTheSeededSkew(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	chart := filepath.Join(t.TempDir(), "representation.svg")
	if err := Run(ctx, Options{Duration: 1500 * time.Millisecond, Users: 3000, Chart: chart}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	i := strings.Index(s, "== representation:")
	if i < 0 {
		t.Fatalf("no representation report:\n%s", s)
	}
	rep := s[i:]
	// The report's blocks: a heading line, then indented rows.
	blocks := map[string]string{}
	var head string
	for _, line := range strings.Split(rep, "\n") {
		if !strings.HasPrefix(line, " ") {
			head = line
		}
		blocks[strings.SplitN(head, ":", 2)[0]] += line + "\n"
	}
	for _, output := range []string{"personalization", "analytics"} {
		block := blocks[output+" / context.location.country"]
		if block == "" {
			t.Fatalf("no %s country block:\n%s", output, rep)
		}
		// The other countries gain the share the skewed one loses (a
		// ratio near 1.1), so only under-representation is asserted.
		flagged := regexp.MustCompile(`(?m)^  (\S+) .*<- under-represented`).FindAllStringSubmatch(block, -1)
		if len(flagged) != 1 || flagged[0][1] != synth.SkewedCountry {
			t.Errorf("%s: under-represented %v, want only %s:\n%s", output, flagged, synth.SkewedCountry, block)
		}
	}
	if data, err := os.ReadFile(chart); err != nil || !bytes.Contains(data, []byte("<svg")) {
		t.Errorf("chart: %v", err)
	}
}
