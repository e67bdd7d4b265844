package kafkaops

// This file is where the consent topic is read: each record is parsed
// (package consent/ingest) and applied through the change service.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/ingest"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/wire"
)

// ReasonInvalidConsentRecord is the dead-letter reason of a consent
// record that cannot be applied.
const ReasonInvalidConsentRecord = "invalid_consent_record"

// ReasonConsentKeyMismatch is the dead-letter reason of a consent record
// whose Kafka key is not its body's subject (or is missing): compaction
// and tombstones work by key, so such a record could never be erased or
// superseded on the topic.
const ReasonConsentKeyMismatch = "consent_key_mismatch"

// ConsentUpdateHook is told about each consent-topic record applied: its
// format (or "tombstone", or "unknown" for an invalid record) and the
// result: applied, stale, erased or invalid. See internal/lib/hooks.
type ConsentUpdateHook interface {
	OnConsentUpdate(format, result string)
}

// ConsentSyncer applies a consent topic to the consent store: each record is
// parsed and applied through the change service (or, for a tombstone, the
// subject erased), and its offset committed only once that is done.
// Invalid records go to the dead-letter topic. While the store fails, the
// ConsentSyncer retries the same record with backoff.
type ConsentSyncer struct {
	// Brokers and Dialer reach the cluster (Dialer default: kafka-go's).
	Brokers []string
	Dialer  *kafka.Dialer
	// Topic is the consent topic, read by consumer group GroupID from
	// its first offset. Both required.
	Topic, GroupID string
	Changes        *changes.Service
	// DeadLetter writes dead letters, and the tombstones of anonymous ids
	// erased with a subject whose tombstone arrived (to Topic).
	DeadLetter      Producer
	DeadLetterTopic string
	PolicyVersion   string
	Mapping         ingest.Mapping
	Backoff         retry.Backoff
	Hooks           hooks.List // ConsentUpdateHook
	Log             *zap.Logger
	// KafkaOutage receives the failed and successful fetches and commits
	// (and kafka-go's own errors); StoreOutage the applications of
	// records, which the consent store fails first. Default: Trackers of
	// their own, on Log.
	KafkaOutage, StoreOutage *outage.Tracker
}

// ConsentFetchMaxWait bounds how long a consent-topic fetch waits for
// data: consent changes should reach the store promptly.
const ConsentFetchMaxWait = 100 * time.Millisecond

// Run applies records until ctx ends.
func (s *ConsentSyncer) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	if s.Topic == "" || s.GroupID == "" || s.Changes == nil {
		return errors.New("consent sync: a topic, a group id and a change service are required")
	}
	s.KafkaOutage = outage.OrNew(s.KafkaOutage, "Kafka", "", s.Log)
	s.StoreOutage = outage.OrNew(s.StoreOutage, "the consent store", "", s.Log)
	r := kafkax.NewReader(kafkax.ReaderConfig{Brokers: s.Brokers, Dialer: s.Dialer, Topic: s.Topic, GroupID: s.GroupID,
		MaxWait: ConsentFetchMaxWait, Log: s.Log, Name: "kafka consent reader", Outage: s.KafkaOutage})
	defer r.Close()
	s.Log.Info("consent ingestion running", zap.String("topic", s.Topic), zap.String("group", s.GroupID))
	return s.run(ctx, r)
}

func (s *ConsentSyncer) run(ctx context.Context, r *kafka.Reader) error {
	const meanwhile = "consent changes wait on the consent topic"
	fetchLoop := s.KafkaOutage.Loop("consent topic fetch", meanwhile)
	applyLoop := s.StoreOutage.Loop("consent record apply", meanwhile)
	commitLoop := s.KafkaOutage.Loop("consent topic commit", meanwhile)
	for _, l := range []*outage.Loop{fetchLoop, applyLoop, commitLoop} {
		defer l.Close()
	}
	// A failed fetch is tried again soon (consent changes must not wait
	// for a long backoff), yet no faster than once a second at most.
	fetchBackoff := retry.Backoff{Min: s.Backoff.Min, Max: max(s.Backoff.Min, min(s.Backoff.Max, time.Second))}
	for ctx.Err() == nil {
		var m kafka.Message
		if s.retry(ctx, fetchLoop, fetchBackoff, func() (err error) { m, err = r.FetchMessage(ctx); return err }) != nil {
			return nil // ctx ended
		}
		if s.retry(ctx, applyLoop, s.Backoff, func() error { return s.handle(ctx, m) }) != nil {
			return nil // ctx ended: the record is not committed and will be read again
		}
		if s.retry(ctx, commitLoop, s.Backoff, func() error { return r.CommitMessages(ctx, m) }) != nil {
			return nil
		}
	}
	return nil
}

// retry runs fn until it succeeds or ctx ends (every error is transient:
// the consent store and the consent topic are waited for), reporting
// each failure and the success to loop.
func (s *ConsentSyncer) retry(ctx context.Context, loop *outage.Loop, b retry.Backoff, fn func() error) error {
	err := retry.Do(ctx, retry.Policy{Backoff: b, OnRetry: func(attempt int, err error, wait time.Duration) {
		loop.Failed(err)
		s.Log.Debug("retrying", zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
	}}, fn)
	if err == nil {
		loop.OK()
	}
	return err
}

func (s *ConsentSyncer) count(format ingest.Format, result string) {
	hooks.Each(s.Hooks, func(h ConsentUpdateHook) { h.OnConsentUpdate(string(format), result) })
}

func (s *ConsentSyncer) handle(ctx context.Context, m kafka.Message) error {
	if m.Value == nil { // tombstone on the compacted topic: erase the subject
		if len(m.Key) == 0 {
			return s.deadLetter(ctx, m, ReasonInvalidConsentRecord, errors.New("tombstone without a key"))
		}
		if err := consent.CheckSubject(string(m.Key)); err != nil {
			return s.deadLetter(ctx, m, ReasonInvalidConsentRecord, err)
		}
		erased, linked, err := s.Changes.EraseUnlessNewer(ctx, string(m.Key), m.Time) // zero time: now
		if err != nil {
			return err
		}
		if erased {
			// The anonymous ids erased with the subject get their own
			// tombstones, so that the topic no longer holds their records
			// for a replay or a rebuild to bring back.
			if len(linked) > 0 {
				msgs := make([]kafka.Message, len(linked))
				for i, a := range linked {
					msgs[i] = kafka.Message{Topic: s.Topic, Key: []byte(a), Time: m.Time}
				}
				if err := s.DeadLetter.WriteMessages(ctx, msgs...); err != nil {
					return fmt.Errorf("writing the linked ids' tombstones: %w", err)
				}
			}
			s.count("tombstone", "erased")
		} else {
			s.count("tombstone", "stale") // consent given again after the tombstone stands
		}
		return nil
	}
	u, err := ingest.Parse(m.Value, m.Time, s.Mapping)
	if err != nil {
		return s.deadLetter(ctx, m, ReasonInvalidConsentRecord, err)
	}
	if err := consent.CheckSubject(u.Subject); err != nil {
		return s.deadLetter(ctx, m, ReasonInvalidConsentRecord, err)
	}
	if string(m.Key) != u.Subject {
		what := "the record's key is not its subject"
		if len(m.Key) == 0 {
			what = "the record has no key (the subject must be the key)"
		}
		return s.deadLetter(ctx, m, ReasonConsentKeyMismatch, errors.New(what))
	}
	grantedAt := u.GrantedAt
	if grantedAt.IsZero() {
		grantedAt = recordTime(m) // when the record was written: a rebuild from the topic gives the same grant times
	}
	applied, _, err := s.Changes.Put(ctx, u.Subject, u.Version, u.Purposes, u.Keep, u.Expires, grantedAt, recordTime(m))
	if err != nil {
		return err
	}
	result := "applied"
	if !applied {
		result = "stale"
	}
	s.count(u.Format, result)
	s.Log.Debug("consent record", zap.String("result", result), zap.String("update", u.Summary()))
	return nil
}

func (s *ConsentSyncer) deadLetter(ctx context.Context, m kafka.Message, reason string, cause error) error {
	err := s.DeadLetter.WriteMessages(ctx, wire.DeadLetter(s.DeadLetterTopic, &m, reason, cause.Error(), s.PolicyVersion))
	if err == nil {
		s.count("unknown", "invalid")
	}
	return err
}

// recordTime is when a consent-topic record was written. A record without
// a usable timestamp (kafka-go reads one at or before the epoch as zero)
// counts as written at the epoch: older than any erasure, never as "time
// unknown", which would let it past the erasure-time check.
func recordTime(m kafka.Message) time.Time {
	if m.Time.IsZero() {
		return time.UnixMilli(0)
	}
	return m.Time
}
