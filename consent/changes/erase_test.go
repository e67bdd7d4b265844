package changes

import (
	"context"
	"slices"
	"testing"

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

func (l linkingStore) Erase(ctx context.Context, subject string) (bool, []string, error) {
	l.links[l.late] = subject
	return l.memStore.Erase(ctx, subject)
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

	e, err := s.EraseLinked(context.Background(), "u")
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
