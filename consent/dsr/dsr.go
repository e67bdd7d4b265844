// Package dsr serves data-subject requests (get, export, set, revoke,
// erase, link) on the consent store, for the command line and the HTTP
// consent API alike: it validates requests against the policy's
// purposes, views stored records the way the pipeline decodes them, and
// sends every change through the one change service (changes.Service),
// which writes retractions before a change that withdraws consent and
// waits for the revocation barrier.
//
// Owns: request validation, the consent view and export, the HTTP
// handlers and their audit line. Must not import Kafka, Prometheus, the
// engine or the composition root.
package dsr

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/policy"
)

// DSR performs data-subject requests on the consent store. Safe for
// concurrent use.
type DSR struct {
	Policy *policy.Policy
	// Store reads what is stored for a subject.
	Store *redisstore.Updater
	// Changes applies every change; its Retractor may be nil for
	// read-only use (changes that need retractions then fail).
	Changes *changes.Service
	// NoLinks refuses Link (identity.link_sources without api).
	NoLinks bool
	// Journal, if set, records every change made here on the consent
	// topic once it is stored, so that the topic holds what the store
	// holds and a rebuild from it reproduces the same state.
	Journal Journal
}

// Journal writes changes to the consent topic; kafkaops.ConsentJournal
// implements it. Both return once the write is acknowledged.
type Journal interface {
	// Record writes subject's record as stored: its version, every
	// purpose and its expiry (zero: none), recorded at time at.
	Record(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, at time.Time) error
	// Erased writes the erasure of subjects at time at (tombstones).
	Erased(ctx context.Context, subjects []string, at time.Time) error
}

// ErrNotJournaled wraps a journal failure after the change was stored:
// the consent topic does not have it yet; repeating the request is safe.
type ErrNotJournaled struct{ Err error }

func (e *ErrNotJournaled) Error() string {
	return "the change is stored but not yet on the consent topic (repeat the request): " + e.Err.Error()
}

func (e *ErrNotJournaled) Unwrap() error { return e.Err }

// UsageError is a request the DSR refuses (unknown purpose, bad value).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ConsentView is a subject's consent as the pipeline sees it.
type ConsentView struct {
	Subject   string          `json:"subject"`
	Found     bool            `json:"found"`
	Expired   bool            `json:"expired,omitempty"`
	Invalid   string          `json:"invalid,omitempty"`
	Version   int64           `json:"version,omitempty"`
	ExpiresAt string          `json:"expires_at,omitempty"`
	Purposes  map[string]bool `json:"purposes"`
}

// Change is the result of Patch, Revoke or Erase.
type Change struct {
	Subject string          `json:"subject"`
	Version int64           `json:"version,omitempty"`
	Changed map[string]bool `json:"changed,omitempty"`
	Erased  *bool           `json:"erased,omitempty"`
	// ErasedLinked are the anonymous ids linked to the subject, erased
	// with it.
	ErasedLinked  []string `json:"erased_linked_ids,omitempty"`
	RetractedFrom []string `json:"retracted_from"`
}

// Get returns the subject's consent for every policy purpose.
func (d *DSR) Get(ctx context.Context, subject string) (ConsentView, error) {
	st, err := d.Store.Read(ctx, subject)
	if err != nil {
		return ConsentView{}, err
	}
	return d.view(subject, st), nil
}

// Export returns everything stored about the subject: its record, its
// identity links both ways, its expiry index entry, and everything stored
// for each anonymous id linked to it.
func (d *DSR) Export(ctx context.Context, subject string) (map[string]any, error) {
	return d.ExportProgress(ctx, subject, nil)
}

// ExportProgress is Export telling progress, when not nil, how many of
// the subject's linked ids it has read, of how many.
func (d *DSR) ExportProgress(ctx context.Context, subject string, progress func(done, total int)) (map[string]any, error) {
	st, err := d.Store.Read(ctx, subject)
	if err != nil {
		return nil, err
	}
	linked := map[string]redisstore.Stored{}
	for i, a := range st.LinkedIDs {
		if linked[a], err = d.Store.Read(ctx, a); err != nil {
			return nil, err
		}
		if progress != nil {
			progress(i+1, len(st.LinkedIDs))
		}
	}
	return map[string]any{"subject": subject, "consent": d.view(subject, st), "stored": st, "linked": linked}, nil
}

// Patch grants or denies purposes, keeping the others.
func (d *DSR) Patch(ctx context.Context, subject string, purposes map[string]bool) (Change, error) {
	if len(purposes) == 0 {
		return Change{}, &UsageError{"give at least one purpose"}
	}
	if err := consent.CheckSubject(subject); err != nil {
		return Change{}, &UsageError{err.Error()}
	}
	for p := range purposes {
		if err := d.known(p); err != nil {
			return Change{}, err
		}
	}
	v, topics, err := d.Changes.Patch(ctx, subject, purposes)
	if err != nil {
		return Change{}, err
	}
	ch := Change{Subject: subject, Version: v, Changed: purposes, RetractedFrom: topics}
	if d.Journal != nil {
		st, err := d.Store.Read(ctx, subject)
		if err != nil {
			return ch, &ErrNotJournaled{err}
		}
		rec, err := redisstore.Decode(st.Fields, time.Time{})
		if err != nil {
			return ch, &ErrNotJournaled{err}
		}
		exp, _, _ := redisstore.Expiry(st.Fields)
		all := make(map[string]bool, len(d.Policy.Purposes))
		for _, p := range d.Policy.Purposes {
			all[p] = rec.Allows(p)
		}
		// Recorded at its version: a change's version is the time it was
		// made (ms), so a rebuild gives the same grant times. A version
		// ahead of the clock (a source that counts in µs, say) is recorded
		// now: brokers refuse timestamps far in the future.
		at := time.UnixMilli(rec.Version)
		if now := time.Now(); at.After(now) {
			at = now
		}
		if err := d.Journal.Record(ctx, subject, rec.Version, all, exp, at); err != nil {
			return ch, &ErrNotJournaled{err}
		}
		// An erasure that ran between the change and its record would
		// leave the record last on the compacted topic: tombstone again.
		if after, err := d.Store.Read(ctx, subject); err != nil {
			return ch, &ErrNotJournaled{err}
		} else if len(after.Fields) == 0 {
			if err := d.Journal.Erased(ctx, []string{subject}, time.Now()); err != nil {
				return ch, &ErrNotJournaled{err}
			}
		}
	}
	return ch, nil
}

// Revoke denies the purposes (every policy purpose when none are given).
func (d *DSR) Revoke(ctx context.Context, subject string, purposes []string) (Change, error) {
	if len(purposes) == 0 {
		purposes = d.Policy.Purposes
	}
	m := map[string]bool{}
	for _, p := range purposes {
		m[p] = false
	}
	return d.Patch(ctx, subject, m)
}

// Erase deletes everything stored for the subject and for the anonymous
// ids linked to it, after retracting them everywhere.
func (d *DSR) Erase(ctx context.Context, subject string) (Change, error) {
	if err := consent.CheckSubject(subject); err != nil {
		return Change{}, &UsageError{err.Error()}
	}
	at := time.Now()
	var journaled []string
	existed := false
	if d.Journal != nil {
		// The tombstones go first, the linked ids' with them: an erasure
		// repeated after a failure here still finds the links, and the
		// topic never keeps an erased id's grant as its last record.
		st, err := d.Store.Read(ctx, subject)
		if err != nil {
			return Change{}, err
		}
		existed = len(st.Fields) > 0
		journaled = append([]string{subject}, st.LinkedIDs...)
		if err := d.Journal.Erased(ctx, journaled, at); err != nil {
			return Change{}, &ErrNotJournaled{err}
		}
	}
	e, err := d.Changes.EraseLinked(ctx, subject, at)
	if err != nil {
		return Change{}, err
	}
	// The consent topic's reader may have applied the tombstones first.
	e.Existed = e.Existed || existed
	linked := slices.Clone(e.Linked)
	for _, a := range journaled[min(1, len(journaled)):] {
		if !slices.Contains(linked, a) {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	ch := Change{Subject: subject, Erased: &e.Existed, ErasedLinked: linked, RetractedFrom: e.RetractedFrom}
	var late []string // linked while the erasure ran
	for _, a := range e.Linked {
		if !slices.Contains(journaled, a) {
			late = append(late, a)
		}
	}
	if d.Journal != nil && len(late) > 0 {
		if err := d.Journal.Erased(ctx, late, at); err != nil {
			return ch, &ErrNotJournaled{err}
		}
	}
	return ch, nil
}

// Link records that anonymousID was identified as userID: events known
// only by anonymousID are then decided with the strictest of both records.
// Unlike identify events, it re-points a link to another user (trusted:
// authenticated and audited).
func (d *DSR) Link(ctx context.Context, anonymousID, userID string) (map[string]string, error) {
	if d.NoLinks {
		return nil, &UsageError{"link: identity links through the command line and the API are off (identity.link_sources)"}
	}
	if anonymousID == "" || userID == "" || anonymousID == userID {
		return nil, &UsageError{"link: give an anonymous id and a different user id"}
	}
	for _, s := range []string{anonymousID, userID} {
		if err := consent.CheckSubject(s); err != nil {
			return nil, &UsageError{err.Error()}
		}
	}
	if err := d.Changes.Link(ctx, map[string]string{anonymousID: userID}); err != nil {
		return nil, err
	}
	return map[string]string{"anonymous_id": anonymousID, "linked_to": userID}, nil
}

func (d *DSR) known(p string) error {
	if !slices.Contains(d.Policy.Purposes, p) {
		return &UsageError{fmt.Sprintf("unknown purpose %q (policy purposes: %s)", p, strings.Join(d.Policy.Purposes, ", "))}
	}
	return nil
}

// view decodes a stored record the way the pipeline does.
func (d *DSR) view(subject string, st redisstore.Stored) ConsentView {
	now := time.Now()
	rec, err := redisstore.Decode(st.Fields, now)
	v := ConsentView{Subject: subject, Found: rec.Found, Version: rec.Version, Purposes: map[string]bool{}}
	if err != nil {
		v.Invalid = err.Error()
	}
	if exp, ok, err := redisstore.Expiry(st.Fields); err == nil && ok {
		v.ExpiresAt = exp.UTC().Format(time.RFC3339Nano)
		v.Expired = !now.Before(exp)
	}
	for _, p := range d.Policy.Purposes {
		v.Purposes[p] = rec.Allows(p)
	}
	return v
}
