package policy

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Kinds of difference between a decision and a shadow policy's decision
// of the same event (Compare).
const (
	DiffNewlyWritten      = "newly_written"       // the shadow writes an output the live policy does not
	DiffNewlyDropped      = "newly_dropped"       // the live policy writes an output the shadow does not
	DiffFieldAdded        = "field_added"         // both write; the shadow keeps a field the live value lacks
	DiffFieldRemoved      = "field_removed"       // both write; the shadow drops a field the live value has
	DiffValueChanged      = "value_changed"       // both write a field, with different values
	DiffTransformChanged  = "transform_changed"   // both write; the actions differ
	DiffDeadLetterChanged = "dead_letter_changed" // one dead-letters the event, or both for different reasons
)

// Diff is one difference: its kind, the output (by name) and, for field
// differences, the path. It never holds a value.
type Diff struct {
	Output string `json:"output,omitempty"`
	Kind   string `json:"kind"`
	Path   string `json:"path,omitempty"`
}

// Compare lists how the shadow decision of an event differs from the
// live one; each decision is the Decision and the *InputError (a dead
// letter) DecideAt returned. Outputs are matched by name. Field paths are
// the JSON paths of the clean values, objects only (an array counts as
// one value), sorted.
func Compare(live *Decision, liveErr *InputError, shadow *Decision, shadowErr *InputError) []Diff {
	switch {
	case liveErr != nil || shadowErr != nil:
		if liveErr == nil || shadowErr == nil || liveErr.Reason != shadowErr.Reason {
			return []Diff{{Kind: DiffDeadLetterChanged}}
		}
		return nil
	case live == nil || shadow == nil:
		return nil
	}
	written := func(d *Decision) map[string]*OutputDecision {
		m := map[string]*OutputDecision{}
		for i := range d.Outputs {
			if d.Outputs[i].Write {
				m[d.Outputs[i].Output.Name] = &d.Outputs[i]
			}
		}
		return m
	}
	lw, sw := written(live), written(shadow)
	names := map[string]bool{}
	for n := range lw {
		names[n] = true
	}
	for n := range sw {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var diffs []Diff
	for _, n := range sorted {
		l, s := lw[n], sw[n]
		switch {
		case l == nil:
			diffs = append(diffs, Diff{Output: n, Kind: DiffNewlyWritten})
		case s == nil:
			diffs = append(diffs, Diff{Output: n, Kind: DiffNewlyDropped})
		default:
			if !bytes.Equal(l.Value, s.Value) {
				diffs = append(diffs, valueDiffs(n, l.Value, s.Value)...)
			}
			if string(l.AppendActions(nil)) != string(s.AppendActions(nil)) {
				diffs = append(diffs, Diff{Output: n, Kind: DiffTransformChanged})
			}
		}
	}
	return diffs
}

// valueDiffs compares two clean values field by field.
func valueDiffs(output string, live, shadow []byte) []Diff {
	var diffs []Diff
	ok := EachValueDiff(live, shadow, func(kind, path string, _, _ any) {
		diffs = append(diffs, Diff{Output: output, Kind: kind, Path: path})
	})
	if !ok {
		return []Diff{{Output: output, Kind: DiffValueChanged}}
	}
	return diffs
}

// EachValueDiff compares two JSON documents object member by member and
// calls fn, in path order, for every difference: DiffFieldAdded (only b
// has the path), DiffFieldRemoved (only a has it) or DiffValueChanged (a
// value that is not an object differs; arrays count as one value), with
// the path and the values (nil where absent). It returns false when
// either document is not JSON.
func EachValueDiff(a, b []byte, fn func(kind, path string, was, is any)) bool {
	var l, s any
	if json.Unmarshal(a, &l) != nil || json.Unmarshal(b, &s) != nil {
		return false
	}
	var walk func(path string, l, s any)
	walk = func(path string, l, s any) {
		lm, lok := l.(map[string]any)
		sm, sok := s.(map[string]any)
		if !lok || !sok {
			lb, _ := json.Marshal(l)
			sb, _ := json.Marshal(s)
			if !bytes.Equal(lb, sb) {
				fn(DiffValueChanged, path, l, s)
			}
			return
		}
		keys := make([]string, 0, len(lm)+len(sm))
		for k := range lm {
			keys = append(keys, k)
		}
		for k := range sm {
			if _, both := lm[k]; !both {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			lv, lin := lm[k]
			sv, sin := sm[k]
			switch {
			case !lin:
				fn(DiffFieldAdded, p, nil, sv)
			case !sin:
				fn(DiffFieldRemoved, p, lv, nil)
			default:
				walk(p, lv, sv)
			}
		}
	}
	walk("", l, s)
	return true
}
