package changes

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
)

// memStore is a Store and a consent.Store in memory that records the order
// of calls, so tests can check that retractions come before the change.
type memStore struct {
	recs  map[string]consent.Record
	log   *[]string
	links map[string]string
	fail  error
}

func (m *memStore) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	out := map[string]consent.Record{}
	for _, s := range subjects {
		out[s] = m.recs[s]
	}
	return out, nil
}

func (m *memStore) Put(_ context.Context, subject string, version int64, purposes map[string]bool, _, _, _ time.Time) (bool, error) {
	*m.log = append(*m.log, "put")
	if r, ok := m.recs[subject]; ok && r.Version >= version {
		return false, nil
	}
	m.recs[subject] = consent.Record{Found: true, Version: version, Granted: purposes}
	return true, nil
}

func (m *memStore) Patch(_ context.Context, subject string, purposes map[string]bool) (int64, error) {
	*m.log = append(*m.log, "patch")
	r := m.recs[subject]
	g := map[string]bool{}
	for k, v := range r.Granted {
		g[k] = v
	}
	for k, v := range purposes {
		g[k] = v
	}
	m.recs[subject] = consent.Record{Found: true, Version: r.Version + 1, Granted: g}
	return r.Version + 1, nil
}

func (m *memStore) Erase(_ context.Context, subject string, _ time.Time, _ bool) (bool, []string, error) {
	*m.log = append(*m.log, "erase")
	_, ok := m.recs[subject]
	delete(m.recs, subject)
	linked := m.linked(subject)
	for _, a := range linked {
		delete(m.links, a)
		delete(m.recs, a)
	}
	return ok, linked, nil
}

func (m *memStore) linked(user string) []string {
	out := []string{}
	for a, u := range m.links {
		if u == user {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

func (m *memStore) LinkedIDs(_ context.Context, user string) ([]string, error) {
	return m.linked(user), nil
}

func (m *memStore) Link(_ context.Context, links map[string]string) error {
	*m.log = append(*m.log, "link")
	for k, v := range links {
		m.links[k] = v
	}
	return nil
}

type retraction struct {
	subject  string
	purposes []string
	erased   bool
	version  int64
}

type memRetractor struct {
	mu   sync.Mutex // erasures retract several subjects concurrently
	log  *[]string
	got  []retraction
	fail error
}

func (r *memRetractor) Retract(_ context.Context, subject string, purposes []string, erased bool, version int64) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	*r.log = append(*r.log, "retract")
	r.got = append(r.got, retraction{subject, purposes, erased, version})
	return []string{"clean." + purposes[0]}, nil
}

var purposes = []string{"a", "b", "c"}

func setup() (*Service, *memStore, *memRetractor, *[]string) {
	log := &[]string{}
	st := &memStore{recs: map[string]consent.Record{
		"u": {Found: true, Version: 10, Granted: map[string]bool{"a": true, "b": true}},
	}, log: log, links: map[string]string{}}
	r := &memRetractor{log: log}
	return &Service{Store: st, Current: st, Retractor: r, Purposes: purposes}, st, r, log
}

func TestPut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		version   int64
		next      map[string]bool
		retracted []retraction
		applied   bool
	}{
		{"withdrawal retracted first, with the new version", 11, map[string]bool{"a": true}, []retraction{{"u", []string{"b"}, false, 11}}, true},
		{"grant needs no retraction", 12, map[string]bool{"a": true, "b": true, "c": true}, nil, true},
		{"stale update retracts nothing", 9, map[string]bool{}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, r, log := setup()
			applied, _, err := s.Put(context.Background(), "u", tc.version, tc.next, nil, time.Time{}, time.Time{}, time.Time{})
			if err != nil || applied != tc.applied {
				t.Fatalf("applied %v err %v", applied, err)
			}
			if !reflect.DeepEqual(r.got, tc.retracted) {
				t.Fatalf("retractions %+v, want %+v", r.got, tc.retracted)
			}
			if len(tc.retracted) > 0 && !slices.Equal(*log, []string{"retract", "put"}) {
				t.Fatalf("order %v: retractions must be written before the change", *log)
			}
		})
	}
}

func TestPutKeepsListedPurposes(t *testing.T) {
	s, st, r, _ := setup()
	// A CMP record that maps only c: a and b keep their values.
	if _, _, err := s.Put(context.Background(), "u", 11, map[string]bool{"c": true}, []string{"a", "b"}, time.Time{}, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := st.recs["u"]; !got.Allows("a") || !got.Allows("b") || !got.Allows("c") || len(r.got) != 0 {
		t.Fatalf("stored %+v, retractions %+v", got, r.got)
	}
}

func TestPatchAndErase(t *testing.T) {
	s, st, r, log := setup()
	v, topics, err := s.Patch(context.Background(), "u", map[string]bool{"a": false, "c": false})
	if err != nil || v != 11 || !slices.Equal(topics, []string{"clean.a"}) {
		t.Fatalf("patch: v %d topics %v err %v", v, topics, err)
	}
	if !reflect.DeepEqual(r.got, []retraction{{"u", []string{"a"}, false, 10}}) || !slices.Equal(*log, []string{"retract", "patch"}) {
		t.Fatalf("patch retractions %+v order %v (only a was granted and is withdrawn)", r.got, *log)
	}
	existed, _, err := s.Erase(context.Background(), "u", time.Time{})
	if err != nil || !existed || st.recs["u"].Found {
		t.Fatalf("erase: existed %v err %v", existed, err)
	}
	if last := r.got[len(r.got)-1]; !last.erased || !slices.Equal(last.purposes, purposes) || last.version != 11 {
		t.Fatalf("erase retraction %+v", last)
	}
}

func TestFailuresStoreNothing(t *testing.T) {
	s, st, r, log := setup()
	r.fail = errors.New("kafka down")
	if _, _, err := s.Patch(context.Background(), "u", map[string]bool{"a": false}); err == nil {
		t.Fatal("patch succeeded although the retraction failed")
	}
	if _, _, err := s.Erase(context.Background(), "u", time.Time{}); err == nil {
		t.Fatal("erase succeeded although the retraction failed")
	}
	if len(*log) != 0 || !st.recs["u"].Allows("a") {
		t.Fatalf("a change was stored although its retraction failed: %v", *log)
	}
	s.Retractor = nil
	if _, _, err := s.Erase(context.Background(), "u", time.Time{}); !errors.Is(err, ErrNoRetractor) {
		t.Fatalf("erase without a retractor: %v", err)
	}
	st.fail = errors.New("redis down")
	s.Retractor = r
	if _, _, err := s.Put(context.Background(), "u", 20, map[string]bool{}, nil, time.Time{}, time.Time{}, time.Time{}); err == nil {
		t.Fatal("put succeeded although the current record could not be read")
	}
}
