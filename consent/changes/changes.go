// Package changes is the one place where consent changes are made: full
// records from the consent topic, patches and revocations from the command
// line and the HTTP API, erasures and identity links. A change that
// withdraws consent first writes retractions to the clean topics the
// withdrawn purposes fed, then stores the change, so that a crash in
// between re-emits the retractions rather than losing them. With a
// Barrier, it then waits until no running consentd can write the subject
// with the old consent any more and writes the retractions again: they
// are the subject's last records, and the call returns after them.
//
// The package does no I/O of its own: the consent store, the current
// state, the retraction writer and the barrier are interfaces
// (implemented by consent/redisstore, kafkaops.Retractor and
// barrier.Revoker). Must not import Kafka, Redis or Prometheus.
package changes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/consentd/consentd/consent"
)

// Store stores changes atomically and monotonically;
// *redisstore.Updater implements it.
type Store interface {
	// Put replaces subject's record if version is newer than the stored
	// one, and than an erasure of subject (by version, and by recorded
	// when it is not zero); applied is false otherwise.
	Put(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, grantedAt, recorded time.Time) (applied bool, err error)
	// Patch sets some purposes and returns the record's new version.
	Patch(ctx context.Context, subject string, purposes map[string]bool) (version int64, err error)
	// Erase deletes everything stored for subject, and every anonymous
	// id linked to it with everything stored for that id, leaving for
	// each a marker of the erasure at time at (zero: now) that Put
	// honours; linked are the ids it erased. With unlessNewer it does
	// nothing to a record whose version is after at, and returns an
	// error for which IsNewerRecord is true.
	Erase(ctx context.Context, subject string, at time.Time, unlessNewer bool) (existed bool, linked []string, err error)
	// LinkedIDs returns the anonymous ids linked to user now.
	LinkedIDs(ctx context.Context, user string) ([]string, error)
	// Link records that each anonymous id (key) was identified as a user
	// id (value).
	Link(ctx context.Context, links map[string]string) error
}

// Retractor tells clean-topic consumers to purge a subject. Retract
// returns only once every retraction is acknowledged, with the topics
// written; erased means every clean topic, whatever the purposes.
type Retractor interface {
	Retract(ctx context.Context, subject string, purposes []string, erased bool, consentVersion int64) (topics []string, err error)
}

// Service applies consent changes. Its fields are read-only after
// construction; it is safe for concurrent use when its parts are.
type Service struct {
	Store Store
	// Current answers what is stored now, uncached, to find the purposes
	// a change withdraws.
	Current consent.Store
	// Retractor writes retractions; without one, a change that needs
	// retractions fails with ErrNoRetractor and nothing is stored.
	Retractor Retractor
	// Purposes are the policy's purposes, in policy order.
	Purposes []string
	// Barrier, if set, makes a withdrawal or erasure wait, after the
	// change is stored, until no running consentd can write the subject
	// again with the old consent; the retractions are then written once
	// more, so that they are the subject's last records. Grants do not
	// wait.
	Barrier Barrier
}

// Barrier waits until every running consentd confirmed that it will not
// write the subjects again with consent older than the call (or was
// fenced); *barrier.Revoker implements it.
type Barrier interface {
	Await(ctx context.Context, subjects []string) error
}

// settle runs after a withdrawal or erasure is stored: the barrier, then
// the retractions again, which are now the last records of the subject.
func (s *Service) settle(ctx context.Context, subjects []string, retract func() error) error {
	if s.Barrier == nil {
		return nil
	}
	if err := s.Barrier.Await(ctx, subjects); err != nil {
		return fmt.Errorf("revocation barrier: %w", err)
	}
	return retract()
}

// ErrNoRetractor reports a withdrawal that needs retractions while the
// Service has no Retractor.
var ErrNoRetractor = errors.New("retractions need a Kafka writer")

func (s *Service) current(ctx context.Context, subject string) (consent.Record, error) {
	recs, err := s.Current.Lookup(ctx, []string{subject})
	if err != nil {
		return consent.Record{}, fmt.Errorf("reading current consent: %w", err)
	}
	return recs[subject], nil
}

func (s *Service) retract(ctx context.Context, subject string, purposes []string, erased bool, version int64) ([]string, error) {
	if len(purposes) == 0 {
		return []string{}, nil
	}
	if s.Retractor == nil {
		return nil, ErrNoRetractor
	}
	topics, err := s.Retractor.Retract(ctx, subject, purposes, erased, version)
	if topics == nil {
		topics = []string{}
	}
	return topics, err
}

// Put applies a record unless a newer or equal version is stored.
// Purposes listed in keep keep their current value; purposes neither in
// purposes nor in keep are denied. Purposes it withdraws are retracted
// first, stamped with the new version, from the subject and from every
// anonymous id linked to it.
func (s *Service) Put(ctx context.Context, subject string, version int64, purposes map[string]bool, keep []string, expires, grantedAt, recorded time.Time) (applied bool, retracted []string, err error) {
	prev, err := s.current(ctx, subject)
	if err != nil {
		return false, nil, err
	}
	if len(keep) > 0 {
		merged := make(map[string]bool, len(purposes)+len(keep))
		for p, g := range purposes {
			merged[p] = g
		}
		for _, p := range keep {
			merged[p] = prev.Allows(p)
		}
		purposes = merged
	}
	retracted = []string{}
	var withdrawn, subjects []string
	if !prev.Found || version > prev.Version {
		withdrawn = consent.Withdrawn(prev, purposes, s.Purposes)
		if len(withdrawn) > 0 {
			if subjects, err = s.withLinked(ctx, subject); err != nil {
				return false, nil, err
			}
			if retracted, err = s.retractEach(ctx, subjects, withdrawn, false, version); err != nil {
				return false, nil, err
			}
		}
	}
	applied, err = s.Store.Put(ctx, subject, version, purposes, expires, grantedAt, recorded)
	if err != nil || !applied || len(withdrawn) == 0 {
		return applied, retracted, err
	}
	err = s.settle(ctx, subjects, func() error {
		_, err := s.retractEach(ctx, subjects, withdrawn, false, version)
		return err
	})
	return applied, retracted, err
}

// Patch grants or denies the listed purposes, keeping the others, under a
// new version. Purposes it withdraws are retracted first, stamped with
// the version they were granted under, from the subject and from every
// anonymous id linked to it.
func (s *Service) Patch(ctx context.Context, subject string, purposes map[string]bool) (version int64, retracted []string, err error) {
	retracted = []string{}
	denies := false
	for _, g := range purposes {
		denies = denies || !g
	}
	var withdrawn, subjects []string
	var prev consent.Record
	if denies {
		if prev, err = s.current(ctx, subject); err != nil {
			return 0, nil, err
		}
		next := make(map[string]bool, len(s.Purposes))
		for _, p := range s.Purposes {
			g, listed := purposes[p]
			next[p] = prev.Allows(p) && (!listed || g)
		}
		withdrawn = consent.Withdrawn(prev, next, s.Purposes)
		if len(withdrawn) > 0 {
			if subjects, err = s.withLinked(ctx, subject); err != nil {
				return 0, nil, err
			}
			if retracted, err = s.retractEach(ctx, subjects, withdrawn, false, prev.Version); err != nil {
				return 0, nil, err
			}
		}
	}
	version, err = s.Store.Patch(ctx, subject, purposes)
	if err != nil || len(withdrawn) == 0 {
		return version, retracted, err
	}
	err = s.settle(ctx, subjects, func() error {
		_, err := s.retractEach(ctx, subjects, withdrawn, false, prev.Version)
		return err
	})
	return version, retracted, err
}

// Erase retracts the subject, and every anonymous id linked to it, from
// every clean topic, then deletes everything stored for them (records,
// grant times, identity links both ways). Ids linked while it runs are
// erased too and retracted after the barrier. existed reports whether the
// subject had a record; retracted are the clean topics retracted from
// (EraseLinked also names the anonymous ids erased).
func (s *Service) Erase(ctx context.Context, subject string, at time.Time) (existed bool, retracted []string, err error) {
	e, err := s.EraseLinked(ctx, subject, at)
	return e.Existed, e.RetractedFrom, err
}

// EraseUnlessNewer is Erase for an erasure recorded at time at (a
// consent-topic tombstone), unless the stored record is newer than at
// (its version, a time in ms for changes made with the CLI or the API, is
// after it): a consent given again after the erasure stands when the
// tombstone is read later, e.g. the tombstone consentd itself wrote to
// the consent topic. erased is false when it did nothing; linked are the
// anonymous ids erased with the subject.
func (s *Service) EraseUnlessNewer(ctx context.Context, subject string, at time.Time) (erased bool, linked []string, err error) {
	if !at.IsZero() {
		prev, err := s.current(ctx, subject)
		if err != nil {
			return false, nil, err
		}
		if prev.Found && prev.Version > at.UnixMilli() {
			return false, nil, nil
		}
	}
	_, linked, _, err = s.erase(ctx, subject, at, true) // the store checks again, atomically
	if IsNewerRecord(err) {
		return false, nil, nil
	}
	return err == nil, linked, err
}

// IsNewerRecord reports whether err is the store's answer that the record
// is newer than the erasure (see Store.Erase).
func IsNewerRecord(err error) bool {
	var e interface{ NewerRecord() bool }
	return errors.As(err, &e) && e.NewerRecord()
}

// Erasure is what EraseLinked did.
type Erasure struct {
	// Existed reports whether the subject had a record.
	Existed bool
	// Linked are the anonymous ids erased with the subject.
	Linked []string
	// RetractedFrom are the clean topics retracted from.
	RetractedFrom []string
}

// EraseLinked is Erase, reporting the anonymous ids erased with the
// subject.
func (s *Service) EraseLinked(ctx context.Context, subject string, at time.Time) (e Erasure, err error) {
	existed, linked, retracted, err := s.erase(ctx, subject, at, false)
	return Erasure{Existed: existed, Linked: linked, RetractedFrom: retracted}, err
}

func (s *Service) erase(ctx context.Context, subject string, at time.Time, unlessNewer bool) (existed bool, linked, retracted []string, err error) {
	prev, err := s.current(ctx, subject)
	if err != nil {
		return false, nil, nil, err
	}
	before, err := s.Store.LinkedIDs(ctx, subject)
	if err != nil {
		return false, nil, nil, fmt.Errorf("reading linked ids: %w", err)
	}
	subjects := append([]string{subject}, before...)
	if retracted, err = s.retractAll(ctx, subjects, prev.Version); err != nil {
		return false, nil, nil, err
	}
	existed, linked, err = s.Store.Erase(ctx, subject, at, unlessNewer)
	if err != nil {
		return existed, nil, retracted, err
	}
	for _, a := range linked {
		if !slices.Contains(subjects, a) {
			subjects = append(subjects, a)
		}
	}
	err = s.settle(ctx, subjects, func() error {
		_, err := s.retractAll(ctx, subjects, prev.Version)
		return err
	})
	return existed, linked, retracted, err
}

// retractAll retracts each subject from every clean topic (an erasure),
// the subjects concurrently; it returns once every retraction is
// acknowledged, or the first error.
func (s *Service) retractAll(ctx context.Context, subjects []string, version int64) ([]string, error) {
	return s.retractEach(ctx, subjects, s.Purposes, true, version)
}

// withLinked returns subject followed by the anonymous ids linked to it:
// their effective consent is the strictest of their own and subject's
// (consent.Linked), so what subject withdraws is withdrawn from them too.
func (s *Service) withLinked(ctx context.Context, subject string) ([]string, error) {
	linked, err := s.Store.LinkedIDs(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("reading linked ids: %w", err)
	}
	return append([]string{subject}, linked...), nil
}

// retractEach retracts each subject for purposes, the subjects
// concurrently; it returns once every retraction is acknowledged, with the
// topics written, or the first error.
func (s *Service) retractEach(ctx context.Context, subjects, purposes []string, erased bool, version int64) ([]string, error) {
	results := make([][]string, len(subjects))
	errs := make([]error, len(subjects))
	var wg sync.WaitGroup
	for i, subj := range subjects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.retract(ctx, subj, purposes, erased, version)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	topics := []string{}
	for _, t := range results {
		for _, x := range t {
			if !slices.Contains(topics, x) {
				topics = append(topics, x)
			}
		}
	}
	return topics, nil
}

// Expire retracts a record that expired by its own "_exp" (rec is the
// record as it was before): every purpose it granted, after the barrier,
// so that the retractions are the subject's last records. The caller
// deletes the record afterwards.
func (s *Service) Expire(ctx context.Context, subject string, rec consent.Record) error {
	var granted []string
	for _, p := range s.Purposes {
		if rec.Allows(p) {
			granted = append(granted, p)
		}
	}
	if len(granted) == 0 {
		return nil
	}
	subjects, err := s.withLinked(ctx, subject)
	if err != nil {
		return err
	}
	if s.Barrier != nil {
		if err := s.Barrier.Await(ctx, subjects); err != nil {
			return fmt.Errorf("revocation barrier: %w", err)
		}
	}
	_, err = s.retractEach(ctx, subjects, granted, false, rec.Version)
	return err
}

// Link records that each anonymous id (key) was identified as a user id
// (value). Links never need retractions: they only ever restrict.
func (s *Service) Link(ctx context.Context, links map[string]string) error {
	return s.Store.Link(ctx, links)
}
