// Package consent defines consent records, the Store contract, the
// bounded, short-lived local Cache in front of any store, and Linked, the
// store decorator that applies identity links. It does no I/O: Redis lives
// in consent/redisstore, changes in consent/changes, consent-topic formats
// in consent/ingest. It must not import Kafka, Redis or Prometheus.
//
// The Redis schema is documented in package redisstore and the README.
package consent

import (
	"context"
	"errors"
	"time"
)

// Record is what is known about one subject's consent at lookup time.
//
// A Record returned by a Store is read only, maps included: a Cache hands
// the same Granted map to every record granting the same purposes, and a
// store's answer may be cached and given to later callers. Build a new
// Record (as Strictest does) rather than modify one.
type Record struct {
	// Found is false when the store holds no record: nothing is granted.
	Found bool
	// Version is the record's "_v" field (0 when absent or not found).
	Version int64
	// Granted holds the purposes whose value is "1". Purposes absent from
	// the map are denied.
	Granted map[string]bool
	// GrantedAt holds, where known, when each granted purpose was granted
	// (Unix milliseconds).
	GrantedAt map[string]int64
	// LinkedTo is the user id an anonymous id was identified as (by an
	// identify or alias event, or the API); "" when none.
	LinkedTo string
	// Expires is when the record stops granting anything (the "_exp"
	// field); zero when it does not expire. From then on the record
	// counts as no record: caches do not serve it and decisions made
	// later ignore it.
	Expires time.Time
}

// ExpiredAt reports whether r has an expiry that is not after now.
func (r Record) ExpiredAt(now time.Time) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires)
}

// Strictest combines a subject's record with its linked user's: a purpose
// is granted only when both grant it, at the later of the two grant times.
// The result keeps a's version and expires with the earlier of the two.
func Strictest(a, b Record) Record {
	out := Record{Found: a.Found && b.Found, Version: a.Version, LinkedTo: a.LinkedTo, Granted: map[string]bool{}, Expires: a.Expires}
	if !b.Expires.IsZero() && (out.Expires.IsZero() || b.Expires.Before(out.Expires)) {
		out.Expires = b.Expires // the earlier expiry ends the combination
	}
	for p := range a.Granted {
		if a.Allows(p) && b.Allows(p) {
			out.Granted[p] = true
			ta, tb := a.GrantedAt[p], b.GrantedAt[p]
			if t := max(ta, tb); t > 0 {
				if out.GrantedAt == nil {
					out.GrantedAt = map[string]int64{}
				}
				out.GrantedAt[p] = t
			}
		}
	}
	return out
}

// Allows reports whether purpose is granted. The zero Record allows nothing.
func (r Record) Allows(purpose string) bool {
	return r.Found && r.Granted[purpose]
}

// Store resolves consent for many subjects at once.
//
// Lookup returns one Record per distinct subject (subjects may repeat),
// in a map keyed by subject; subjects without a stored record map to Record{Found: false}.
// It must answer for all subjects or return an error: a partial answer is
// never returned, so callers can fail closed. The map is made for the call
// and is the caller's to change; the records in it, and their maps, are
// read only for the caller and for the store: neither may modify them
// afterwards (a Cache keeps and shares them). Implementations are safe for
// concurrent use and honour ctx cancellation.
type Store interface {
	Lookup(ctx context.Context, subjects []string) (map[string]Record, error)
}

// ErrInvalidRecord reports a stored record that cannot be interpreted, such
// as a non-numeric "_v". Lookups that meet one fail rather than guess.
var ErrInvalidRecord = errors.New("invalid consent record")

// Withdrawn returns, in the order of purposes, the purposes prev grants
// that next (a purpose -> granted map) does not: the purposes whose
// withdrawal must be retracted downstream.
func Withdrawn(prev Record, next map[string]bool, purposes []string) []string {
	var out []string
	for _, p := range purposes {
		if prev.Allows(p) && !next[p] {
			out = append(out, p)
		}
	}
	return out
}
