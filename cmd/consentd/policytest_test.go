package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func policyTestCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(append([]string{"policy", "test"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

// TestShippedPolicyCases: the shipped policy decides its golden cases
// (configs/policy-tests: every transform, every reason an output is
// skipped, the dead-letter reasons) as they expect.
func TestShippedPolicyCases(t *testing.T) {
	code, out, errs := policyTestCLI(t, "../../configs/policy.yaml", "--cases", "../../configs/policy-tests")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "19 cases, 0 differ") {
		t.Fatalf("summary: %s", out)
	}
	code, out, errs = policyTestCLI(t, "../../configs/policy.yaml", "--cases", "../../configs/policy-tests", "--json")
	var rep policyTestReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Cases != 19 || rep.Differ != 0 || len(rep.Results) != 19 || !rep.Results[0].OK {
		t.Fatalf("--json: exit %d, %v\n%s%s", code, err, out, errs)
	}
}

// TestPolicyTestShowsWhatChanged: a policy change shows up as a readable
// diff per case and output, fails, and --update records the new decisions
// (after which the cases pass).
func TestPolicyTestShowsWhatChanged(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"01-written-everywhere.yaml", "04-analytics-only.yaml", "13-dead-duplicate-key.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../configs/policy-tests", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	shipped, _ := os.ReadFile("../../configs/policy.yaml")
	// The change under review: analytics keeps context.ip, and no longer
	// requires analytics consent but personalization.
	changed := strings.Replace(string(shipped), "keep_only: [type, event, messageId, timestamp, anonymousId, userId,", "keep_only: [context.ip, type, event, messageId, timestamp, anonymousId, userId,", 1)
	changed = strings.Replace(changed, "require: [analytics]", "require: [personalization]", 1)
	if changed == string(shipped) {
		t.Fatal("the policy change did not apply")
	}
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte(changed), 0o644)
	code, out, errs := policyTestCLI(t, pol, "--cases", dir)
	if code != 1 || !strings.Contains(errs, "2 of 3 cases differ") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"FAIL an Order Completed event with every purpose granted",
		`output analytics: value: context.ip added: "[ip]"`, // scrub still finds the address
		"FAIL consent for analytics only",
		"output analytics: want written, got skipped (consent_denied:personalization)",
		"ok   a duplicated key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := policyTestCLI(t, pol, "--cases", dir, "--update"); code != 0 || !strings.Contains(out, "updated the expectations of 2 cases") {
		t.Fatalf("--update: exit %d\n%s", code, out)
	}
	if code, out, _ := policyTestCLI(t, pol, "--cases", dir); code != 0 {
		t.Fatalf("after --update: exit %d\n%s", code, out)
	}
}

func TestPolicyTestRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: x\nevent: '{}'\nexpected: {}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no cases flag", []string{"../../configs/policy.yaml"}, 2, "--cases DIR"},
		{"no policy", []string{"--cases", dir}, 2, "one policy FILE"},
		{"empty dir", []string{"../../configs/policy.yaml", "--cases", t.TempDir()}, 1, "no cases"},
		{"unknown field", []string{"../../configs/policy.yaml", "--cases", dir}, 1, "bad.yaml"},
		{"missing policy", []string{"/nonexistent.yaml", "--cases", dir}, 1, "reading policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := policyTestCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.want)
			}
		})
	}
}
