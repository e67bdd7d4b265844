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

const policyTestUsage = `consentd policy test FILE --cases DIR [--update]

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
	for _, r := range results {
		if len(r.Diffs) == 0 {
			fmt.Fprintf(stdout, "ok   %s\n", r.Case.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s\n", r.Case.Name)
		for _, d := range r.Diffs {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
	fmt.Fprintf(stdout, "%d cases, %d differ (policy %s, %s)\n", len(results), failed, pol.Version, pol.Digest)
	if failed == 0 {
		return nil
	}
	if *update {
		written, err := policytest.Update(results)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "updated the expectations of %d cases: review them with the policy change\n", len(written))
		return nil
	}
	return fmt.Errorf("%d of %d cases differ from their expectations", failed, len(results))
}
