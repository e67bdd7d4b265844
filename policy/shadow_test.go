package policy

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	out := func(name string, write bool, value, reason string, acts ...Action) OutputDecision {
		return OutputDecision{Output: &Output{Name: name}, Write: write, Value: []byte(value), Reason: reason, Actions: acts}
	}
	dec := func(outs ...OutputDecision) *Decision { return &Decision{Outputs: outs} }
	drop := Action{Op: "drop_fields", Path: "a"}
	for _, tc := range []struct {
		name         string
		live, shadow *Decision
		lerr, serr   *InputError
		want         []string
	}{
		{"same", dec(out("o", true, `{"a":1}`, "", drop)), dec(out("o", true, `{"a":1}`, "", drop)), nil, nil, nil},
		{"newly written", dec(out("o", false, "", "consent_denied:x")), dec(out("o", true, `{}`, "")), nil, nil, []string{"o newly_written "}},
		{"newly dropped", dec(out("o", true, `{}`, "")), dec(out("o", false, "", "filtered")), nil, nil, []string{"o newly_dropped "}},
		{"output only in the shadow", dec(), dec(out("n", true, `{}`, "")), nil, nil, []string{"n newly_written "}},
		{"fields", dec(out("o", true, `{"a":{"b":1,"c":2},"d":[1,2]}`, "")), dec(out("o", true, `{"a":{"b":1,"e":3},"d":[2,1]}`, "")), nil, nil,
			[]string{"o field_added a.e", "o field_removed a.c", "o value_changed d"}},
		{"same value, other bytes", dec(out("o", true, `{"a":1,"b":2}`, "")), dec(out("o", true, `{"b":2,"a":1}`, "")), nil, nil, nil},
		{"transform", dec(out("o", true, `{}`, "", drop)), dec(out("o", true, `{}`, "")), nil, nil, []string{"o transform_changed "}},
		{"dead letter now", dec(out("o", true, `{}`, "")), nil, nil, &InputError{Reason: ReasonInvalidIP}, []string{" dead_letter_changed "}},
		{"no dead letter now", nil, dec(out("o", true, `{}`, "")), &InputError{Reason: ReasonInvalidIP}, nil, []string{" dead_letter_changed "}},
		{"another dead letter", nil, nil, &InputError{Reason: ReasonInvalidIP}, &InputError{Reason: ReasonWrongType}, []string{" dead_letter_changed "}},
		{"the same dead letter", nil, nil, &InputError{Reason: ReasonInvalidIP}, &InputError{Reason: ReasonInvalidIP}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Compare(tc.live, tc.lerr, tc.shadow, tc.serr) {
				got = append(got, d.Output+" "+d.Kind+" "+d.Path)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
