package e2ebench

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/policy"
)

// expectOutputs returns, for each of specs, how many records each of its
// outputs (in spec order) must receive for the first events events of
// synth.New(seed, users), with the consent the bench seeds (synth's,
// under both of a user's ids, without grant times).
//
// It is worked out from the outputs' require and when lists alone, not
// by consentd's decision code, so a contender that loses or duplicates
// records, or a decision that changed, fails the run. It models what the
// synthetic events carry: valid JSON with a subject, no GPC, no consent
// signals, no IAB strings (nothing is dead-lettered).
func expectOutputs(specs []*policy.Spec, seed uint64, users, events int) ([][]int64, error) {
	gen := synth.New(seed, users)
	consent := make(map[int]map[string]bool, users)
	counts := make([][]int64, len(specs))
	for i, spec := range specs {
		counts[i] = make([]int64, len(spec.Outputs))
	}
	for range events {
		v, u := gen.Event()
		var ev struct{ Type, Event string }
		if err := json.Unmarshal(v, &ev); err != nil {
			return nil, fmt.Errorf("synthetic event: %w", err)
		}
		granted, seen := consent[u]
		if !seen {
			granted, _ = gen.Consent(u) // nil: no record, nothing granted
			consent[u] = granted
		}
		for i, spec := range specs {
			for j, o := range spec.Outputs {
				if writes(o, granted, ev.Type, ev.Event) {
					counts[i][j]++
				}
			}
		}
	}
	return counts, nil
}

// writes reports whether output o receives an event of type typ named
// name from a subject with the granted purposes.
func writes(o policy.OutputSpec, granted map[string]bool, typ, name string) bool {
	for _, pu := range o.Require {
		if !granted[pu] {
			return false
		}
	}
	if o.When == nil {
		return true
	}
	return (len(o.When.Type) == 0 || slices.Contains(o.When.Type, typ)) &&
		(len(o.When.Event) == 0 || slices.Contains(o.When.Event, name))
}

func sum(ns []int64) int64 {
	var t int64
	for _, n := range ns {
		t += n
	}
	return t
}
