package consent

import (
	"context"
	"errors"
	"testing"
)

func TestLinkedStrictest(t *testing.T) {
	all := map[string]bool{"a": true, "b": true}
	st := &countingStore{recs: map[string]Record{
		"anon-1": {Found: true, Version: 1, Granted: all, LinkedTo: "user-1"},
		"user-1": {Found: true, Version: 7, Granted: map[string]bool{"a": true}, GrantedAt: map[string]int64{"a": 50}},
		"anon-2": {Found: true, Version: 1, Granted: all, LinkedTo: "user-2"}, // user-2 has no record
		"anon-3": {Found: true, Version: 3, Granted: all},
	}}
	l := Linked{Store: st}
	for _, tc := range []struct {
		name     string
		subjects []string
		calls    int64
	}{
		{"user resolved in a second call", []string{"anon-1", "anon-2", "anon-3"}, 2},
		{"user already in the batch: one call", []string{"anon-1", "user-1"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(st.calls)
			got, err := l.Lookup(context.Background(), tc.subjects)
			if err != nil {
				t.Fatal(err)
			}
			if n := int64(len(st.calls) - before); n != tc.calls {
				t.Errorf("%d store calls, want %d", n, tc.calls)
			}
			a1 := got["anon-1"]
			if !a1.Allows("a") || a1.Allows("b") || a1.LinkedTo != "user-1" || a1.Version != 1 || a1.GrantedAt["a"] != 50 {
				t.Errorf("anon-1 = %+v, want only a, linked to user-1, its own version, the user's grant time", a1)
			}
			if len(got) != len(tc.subjects) {
				t.Errorf("answered %d subjects, want %d", len(got), len(tc.subjects))
			}
		})
	}
	got, _ := l.Lookup(context.Background(), []string{"anon-2", "anon-3"})
	if got["anon-2"].Allows("a") || got["anon-2"].Found {
		t.Errorf("linked to a user without a record must grant nothing: %+v", got["anon-2"])
	}
	if !got["anon-3"].Allows("b") {
		t.Errorf("an unlinked subject keeps its record: %+v", got["anon-3"])
	}
}

type failingStore struct{ n int }

func (f *failingStore) Lookup(_ context.Context, subjects []string) (map[string]Record, error) {
	f.n++
	if f.n > 1 {
		return nil, errors.New("down")
	}
	return map[string]Record{"anon": {Found: true, Granted: map[string]bool{"a": true}, LinkedTo: "user"}}, nil
}

func TestLinkedFailsWhole(t *testing.T) {
	if _, err := (Linked{Store: &failingStore{}}).Lookup(context.Background(), []string{"anon"}); err == nil {
		t.Fatal("a failed user lookup must fail the whole lookup (fail closed), not answer with the anonymous record alone")
	}
}
