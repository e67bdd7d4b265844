package changes

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
)

type memBarrier struct {
	log      *[]string
	subjects [][]string
	onAwait  func()
}

func (b *memBarrier) Await(_ context.Context, subjects []string) error {
	*b.log = append(*b.log, "barrier")
	b.subjects = append(b.subjects, slices.Clone(subjects))
	if b.onAwait != nil {
		b.onAwait()
	}
	return nil
}

// linkingStore links a further anonymous id while the erasure runs, as an
// event identifying it could.
type linkingStore struct {
	*memStore
	late string
}

func (l linkingStore) Erase(ctx context.Context, subject string, at time.Time, unlessNewer bool) (bool, []string, error) {
	l.links[l.late] = subject
	return l.memStore.Erase(ctx, subject, at, unlessNewer)
}

func TestEraseRetractsLinkedIDs(t *testing.T) {
	s, st, r, log := setup()
	st.links["a1"] = "u"
	st.links["a2"] = "u"
	st.links["x"] = "other"
	st.recs["a1"] = consent.Record{Found: true, Version: 3, Granted: map[string]bool{"c": true}}
	s.Store = linkingStore{st, "late"}
	b := &memBarrier{log: log}
	s.Barrier = b

	e, err := s.EraseLinked(context.Background(), "u", time.Time{})
	if err != nil || !e.Existed || !slices.Equal(e.Linked, []string{"a1", "a2", "late"}) {
		t.Fatalf("erasure %+v err %v", e, err)
	}
	want := []string{"retract", "retract", "retract", "erase", "barrier", "retract", "retract", "retract", "retract"}
	if !slices.Equal(*log, want) {
		t.Fatalf("order %v, want %v (retractions, erasure, barrier, retractions)", *log, want)
	}
	var before, after []string
	for i, x := range r.got {
		if !x.erased || !slices.Equal(x.purposes, purposes) || x.version != 10 {
			t.Errorf("retraction %+v: want an erasure of every purpose with the user's version", x)
		}
		if i < 3 {
			before = append(before, x.subject)
		} else {
			after = append(after, x.subject)
		}
	}
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, []string{"a1", "a2", "u"}) || !slices.Equal(after, []string{"a1", "a2", "late", "u"}) {
		t.Fatalf("retracted before %v, after the barrier %v", before, after)
	}
	if !slices.Equal(b.subjects[0], []string{"u", "a1", "a2", "late"}) {
		t.Fatalf("barrier over %v", b.subjects[0])
	}
	if _, ok := st.recs["a1"]; ok || st.links["a1"] != "" || st.links["x"] != "other" {
		t.Fatalf("after the erasure: recs %v links %v", st.recs, st.links)
	}
}

// TestWithdrawalRetractsLinkedIDs: a user's revocation (Patch) and a
// withdrawing record (Put) retract the withdrawn purposes from the user
// and from every anonymous id linked to it, before the change and after
// the barrier, which covers them all; another user's ids are untouched.
func TestWithdrawalRetractsLinkedIDs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *Service) error
	}{
		{"patch", func(s *Service) error {
			_, _, err := s.Patch(context.Background(), "u", map[string]bool{"a": false})
			return err
		}},
		{"put", func(s *Service) error {
			_, _, err := s.Put(context.Background(), "u", 11, map[string]bool{"b": true}, nil, time.Time{}, time.Time{}, time.Time{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, st, r, log := setup()
			st.links["a1"] = "u"
			st.links["a2"] = "u"
			st.links["x"] = "other"
			b := &memBarrier{log: log}
			s.Barrier = b
			if err := tc.change(s); err != nil {
				t.Fatal(err)
			}
			var subjects []string
			for _, x := range r.got {
				if x.erased || !slices.Equal(x.purposes, []string{"a"}) {
					t.Errorf("retraction %+v: want purpose a withdrawn", x)
				}
				subjects = append(subjects, x.subject)
			}
			slices.Sort(subjects)
			if want := []string{"a1", "a1", "a2", "a2", "u", "u"}; !slices.Equal(subjects, want) {
				t.Fatalf("retracted %v, want %v (before and after the barrier)", subjects, want)
			}
			if len(b.subjects) != 1 || !slices.Equal(b.subjects[0], []string{"u", "a1", "a2"}) {
				t.Fatalf("barrier over %v", b.subjects)
			}
		})
	}
}
