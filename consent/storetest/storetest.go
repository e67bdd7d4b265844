// Package storetest is the conformance suite every consent.Store must
// pass: the cache, redisstore on an in-process Redis and on a real one,
// and any store added later. It states the contract in code. Tests only;
// imports consent alone.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
)

// Backend is a store under test and the means to put state into it.
type Backend struct {
	Store consent.Store
	// Put stores a record: version, the granted purposes (all others
	// denied), and an expiry (zero: none).
	Put func(t *testing.T, subject string, version int64, granted []string, expires time.Time)
	// Link records that anonymousID was identified as userID; nil when
	// the store has no identity links.
	Link func(t *testing.T, anonymousID, userID string)
	// Corrupt, if set, stores something unreadable under subject (a
	// wrong type, an invalid version).
	Corrupt func(t *testing.T, subject string)
}

// Run runs the suite. newBackend is called once per case with a fresh,
// empty backend; prefix-free subject names are unique per case.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	ctx := context.Background()
	t.Run("no record means nothing granted", func(t *testing.T) {
		b := newBackend(t)
		got, err := b.Store.Lookup(ctx, []string{"nobody"})
		if err != nil {
			t.Fatal(err)
		}
		r, ok := got["nobody"]
		if !ok || r.Found || r.Allows("a") {
			t.Fatalf("answer %+v (present %v), want a not-found record", r, ok)
		}
	})
	t.Run("record read back exactly", func(t *testing.T) {
		b := newBackend(t)
		b.Put(t, "u1", 42, []string{"a", "c"}, time.Time{})
		got, err := b.Store.Lookup(ctx, []string{"u1"})
		if err != nil {
			t.Fatal(err)
		}
		r := got["u1"]
		if !r.Found || r.Version != 42 || !r.Allows("a") || r.Allows("b") || !r.Allows("c") {
			t.Fatalf("u1 = %+v", r)
		}
	})
	t.Run("every subject answered once, repeats allowed", func(t *testing.T) {
		b := newBackend(t)
		b.Put(t, "u1", 1, []string{"a"}, time.Time{})
		subjects := []string{"u1", "x", "u1", "y", "x"}
		got, err := b.Store.Lookup(ctx, subjects)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || !got["u1"].Allows("a") || got["x"].Found || got["y"].Found {
			t.Fatalf("answer %+v", got)
		}
	})
	t.Run("empty request", func(t *testing.T) {
		b := newBackend(t)
		got, err := b.Store.Lookup(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("answer %v err %v", got, err)
		}
	})
	t.Run("large batch in one call", func(t *testing.T) {
		b := newBackend(t)
		var subjects []string
		for i := range 2000 {
			s := fmt.Sprintf("s%d", i)
			subjects = append(subjects, s)
			if i%3 == 0 {
				b.Put(t, s, int64(i+1), []string{"a"}, time.Time{})
			}
		}
		got, err := b.Store.Lookup(ctx, subjects)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range subjects {
			if r, ok := got[s]; !ok || r.Allows("a") != (i%3 == 0) {
				t.Fatalf("%s = %+v (present %v)", s, r, ok)
			}
		}
	})
	t.Run("expired record means nothing granted", func(t *testing.T) {
		b := newBackend(t)
		b.Put(t, "old", 5, []string{"a"}, time.Now().Add(-time.Second))
		b.Put(t, "fresh", 5, []string{"a"}, time.Now().Add(time.Hour))
		got, err := b.Store.Lookup(ctx, []string{"old", "fresh"})
		if err != nil {
			t.Fatal(err)
		}
		if got["old"].Allows("a") || !got["fresh"].Allows("a") {
			t.Fatalf("old %+v fresh %+v", got["old"], got["fresh"])
		}
	})
	t.Run("identity link reported", func(t *testing.T) {
		b := newBackend(t)
		if b.Link == nil {
			t.Skip("the store has no identity links")
		}
		b.Put(t, "anon", 1, []string{"a"}, time.Time{})
		b.Link(t, "anon", "user")
		got, err := b.Store.Lookup(ctx, []string{"anon"})
		if err != nil {
			t.Fatal(err)
		}
		if got["anon"].LinkedTo != "user" {
			t.Fatalf("anon = %+v, want LinkedTo user", got["anon"])
		}
	})
	t.Run("an unreadable record denies its subject only", func(t *testing.T) {
		b := newBackend(t)
		if b.Corrupt == nil {
			t.Skip("the backend cannot store unreadable records")
		}
		b.Put(t, "good", 3, []string{"a"}, time.Time{})
		b.Corrupt(t, "bad")
		got, err := b.Store.Lookup(ctx, []string{"good", "bad"})
		if err != nil {
			t.Fatalf("one unreadable record failed the whole lookup: %v", err)
		}
		if got["bad"].Allows("a") || got["bad"].Found || !got["good"].Allows("a") {
			t.Fatalf("good %+v bad %+v", got["good"], got["bad"])
		}
	})
}
