package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

// DSR performs data-subject requests on the consent store, for the
// command line and the HTTP admin API alike. Changes go through the one
// change service (changes.Service), which writes retractions before a
// change that withdraws consent.
type DSR struct {
	Policy  *policy.Policy
	Updater *redisstore.Updater
	Changes *changes.Service
}

// NewDSR wires a DSR from cfg; producer may be nil for read-only use
// (changes that need retractions then fail).
func NewDSR(cfg *config.Config, pol *policy.Policy, rdb redis.UniversalClient, producer pipeline.Producer) *DSR {
	up := redisstore.NewUpdater(rdb, cfg.Redis.KeyPrefix)
	svc := &changes.Service{
		Store:    up,
		Current:  redisstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, nil),
		Purposes: pol.Purposes,
		Barrier:  redisstore.NewBarrier(rdb, cfg.Redis.KeyPrefix),
	}
	if producer != nil {
		svc.Retractor = &pipeline.Retractor{Policy: pol, Producer: producer, Backoff: backoff(cfg), Retention: cfg.Pseudonymization.Retention}
	}
	return &DSR{Policy: pol, Updater: up, Changes: svc}
}

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

// Change is the result of Set, Revoke or Erase.
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
	st, err := d.Updater.Read(ctx, subject)
	if err != nil {
		return ConsentView{}, err
	}
	return d.view(subject, st), nil
}

// Export returns everything stored about the subject: its record, its
// identity links both ways, its expiry index entry, and everything stored
// for each anonymous id linked to it.
func (d *DSR) Export(ctx context.Context, subject string) (map[string]any, error) {
	st, err := d.Updater.Read(ctx, subject)
	if err != nil {
		return nil, err
	}
	linked := map[string]redisstore.Stored{}
	for _, a := range st.LinkedIDs {
		if linked[a], err = d.Updater.Read(ctx, a); err != nil {
			return nil, err
		}
	}
	return map[string]any{"subject": subject, "consent": d.view(subject, st), "stored": st, "linked": linked}, nil
}

// Set grants or denies purposes, keeping the others.
func (d *DSR) Set(ctx context.Context, subject string, purposes map[string]bool) (Change, error) {
	if len(purposes) == 0 {
		return Change{}, &UsageError{"set: give at least one purpose"}
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
	return Change{Subject: subject, Version: v, Changed: purposes, RetractedFrom: topics}, nil
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
	return d.Set(ctx, subject, m)
}

// Erase deletes everything stored for the subject and for the anonymous
// ids linked to it, after retracting them everywhere.
func (d *DSR) Erase(ctx context.Context, subject string) (Change, error) {
	e, err := d.Changes.EraseLinked(ctx, subject)
	if err != nil {
		return Change{}, err
	}
	return Change{Subject: subject, Erased: &e.Existed, ErasedLinked: e.Linked, RetractedFrom: e.RetractedFrom}, nil
}

// Link records that anonymousID was identified as userID: events known
// only by anonymousID are then decided with the strictest of both records.
func (d *DSR) Link(ctx context.Context, anonymousID, userID string) (map[string]string, error) {
	if anonymousID == "" || userID == "" || anonymousID == userID {
		return nil, &UsageError{"link: give an anonymous id and a different user id"}
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
