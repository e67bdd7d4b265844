package pipeline

// This file is where the consent topic is read: each record is parsed
// (package consent/ingest) and applied through the change service.

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/ingest"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/wire"
)

// ReasonInvalidConsentRecord is the dead-letter reason of a consent
// record that cannot be applied.
const ReasonInvalidConsentRecord = "invalid_consent_record"

// ConsentTopicHooks observe a ConsentSyncer; internal/metrics implements
// them. Calls must return quickly.
type ConsentTopicHooks interface {
	// OnConsentUpdate is called once per record applied, with its format
	// (or "tombstone", or "unknown" for an invalid record) and the result:
	// applied, stale, erased or invalid.
	OnConsentUpdate(format, result string)
}

// ConsentSyncer applies a consent topic to the consent store: each record is
// parsed and applied through the change service (or, for a tombstone, the
// subject erased), and its offset committed only once that is done.
// Invalid records go to the dead-letter topic. While the store fails, the
// ConsentSyncer retries the same record with backoff.
type ConsentSyncer struct {
	Reader          *kafka.Reader // a group reader on the consent topic
	Changes         *changes.Service
	DeadLetter      Producer
	DeadLetterTopic string
	PolicyVersion   string
	Mapping         ingest.Mapping
	Backoff         retry.Backoff
	Hooks           ConsentTopicHooks // may be nil
	Log             *zap.Logger
}

// Run applies records until ctx ends.
func (s *ConsentSyncer) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	for {
		m, err := s.Reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.Log.Warn("consent topic fetch failed", zap.Error(err))
			if retry.Sleep(ctx, s.Backoff.Delay(1)) != nil {
				return nil
			}
			continue
		}
		if err := s.retry(ctx, func() error { return s.handle(ctx, m) }); err != nil {
			return nil // ctx ended: the record is not committed and will be read again
		}
		if err := s.retry(ctx, func() error { return s.Reader.CommitMessages(ctx, m) }); err != nil {
			return nil
		}
	}
}

func (s *ConsentSyncer) retry(ctx context.Context, fn func() error) error {
	return retry.Do(ctx, s.Backoff, fn, func(attempt int, err error, wait time.Duration) {
		s.Log.Warn("applying consent record failed; retrying", zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
	})
}

func (s *ConsentSyncer) count(format ingest.Format, result string) {
	if s.Hooks != nil {
		s.Hooks.OnConsentUpdate(string(format), result)
	}
}

func (s *ConsentSyncer) handle(ctx context.Context, m kafka.Message) error {
	if m.Value == nil { // tombstone on the compacted topic: erase the subject
		if len(m.Key) == 0 {
			return s.deadLetter(ctx, m, errors.New("tombstone without a key"))
		}
		if _, _, err := s.Changes.Erase(ctx, string(m.Key)); err != nil {
			return err
		}
		s.count("tombstone", "erased")
		return nil
	}
	u, err := ingest.Parse(m.Value, m.Time, s.Mapping)
	if err != nil {
		return s.deadLetter(ctx, m, err)
	}
	applied, _, err := s.Changes.Put(ctx, u.Subject, u.Version, u.Purposes, u.Keep, u.Expires, u.GrantedAt)
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

func (s *ConsentSyncer) deadLetter(ctx context.Context, m kafka.Message, cause error) error {
	err := s.DeadLetter.WriteMessages(ctx, wire.DeadLetter(s.DeadLetterTopic, &m, ReasonInvalidConsentRecord, cause.Error(), s.PolicyVersion))
	if err == nil {
		s.count("unknown", "invalid")
	}
	return err
}
