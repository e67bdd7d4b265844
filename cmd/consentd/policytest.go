package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/consentd/consentd/internal/policytest"
	"github.com/consentd/consentd/policy"
)

const policyTestUsage = `consentd policy test FILE --cases DIR [--update] [--json]

Decides every golden case in DIR (one YAML file per case: a raw event, the
subject's consent record, and the decision expected per output) with the
policy FILE, through the pipeline's own processor, and prints a diff of
every case whose decision differs; exits 1 if any does. --update writes
the decisions got into the cases' expectations, for review in the same
change as the policy. Cases are decided with test keys derived from the
key ids the policy names (never a production key), so expected pseudonyms
are the same on every machine.`

func cmdPolicyTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy test", policyTestUsage, stderr)
	dir := fs.String("cases", "", "directory of golden cases (*.yaml); required")
	update := fs.Bool("update", false, "rewrite the expectations of the cases that differ")
	asJSON := fs.Bool("json", false, "print the cases' results as JSON")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 || *dir == "" {
		return usageError{errors.New("policy test takes one policy FILE and --cases DIR")}
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return fmt.Errorf("reading policy: %w", err)
	}
	spec, err := policy.ParseSpec(files[0], data)
	if err != nil {
		return fmt.Errorf("policy is invalid:\n%w", err)
	}
	keys, err := policytest.Keys(spec)
	if err != nil {
		return err
	}
	pol, err := policy.FromBytes(files[0], data, keys)
	if err != nil {
		return fmt.Errorf("policy is invalid:\n%w", err)
	}
	cases, err := policytest.Load(*dir)
	if err != nil {
		return err
	}
	results, err := policytest.Run(context.Background(), pol, cases)
	if err != nil {
		return err
	}
	failed := 0
	rep := policyTestReport{Policy: pol.Version, Digest: pol.Digest, Results: []policyTestResult{}}
	for _, r := range results {
		rep.Results = append(rep.Results, policyTestResult{Name: r.Case.Name, OK: len(r.Diffs) == 0, Diffs: r.Diffs})
		if len(r.Diffs) > 0 {
			failed++
		}
		if *asJSON {
			continue
		}
		if len(r.Diffs) == 0 {
			fmt.Fprintf(stdout, "ok   %s\n", r.Case.Name)
			continue
		}
		fmt.Fprintf(stdout, "FAIL %s\n", r.Case.Name)
		for _, d := range r.Diffs {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
	rep.Cases, rep.Differ = len(results), failed
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d cases, %d differ (policy %s, %s)\n", len(results), failed, pol.Version, pol.Digest)
	}
	if failed == 0 {
		return nil
	}
	if *update {
		written, err := policytest.Update(results)
		if err != nil {
			return err
		}
		w := stdout
		if *asJSON {
			w = stderr // stdout is the JSON alone
		}
		fmt.Fprintf(w, "updated the expectations of %d cases: review them with the policy change\n", len(written))
		return nil
	}
	return fmt.Errorf("%d of %d cases differ from their expectations", failed, len(results))
}

// policyTestReport is what policy test prints with --json.
type policyTestReport struct {
	Policy  string             `json:"policy_version"`
	Digest  string             `json:"policy_digest"`
	Cases   int                `json:"cases"`
	Differ  int                `json:"differ"`
	Results []policyTestResult `json:"results"`
}

type policyTestResult struct {
	Name  string   `json:"name"`
	OK    bool     `json:"ok"`
	Diffs []string `json:"diffs,omitempty"`
}
