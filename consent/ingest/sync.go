package ingest

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/pipeline"
)

// Applier stores updates; *redisstore.Writer implements it (monotonic:
// Put reports false for a stale version).
type Applier interface {
	Put(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, grantedAt time.Time) (bool, error)
	Erase(ctx context.Context, subject string) (bool, error)
}

// Syncer applies a consent topic to the consent store: each record is
// parsed, applied (or, for a tombstone, the subject's record erased), and
// its offset committed only once that is done. Invalid records go to the
// dead-letter topic. While the store fails, the Syncer retries the same
// record with backoff.
type Syncer struct {
	Reader     *kafka.Reader // a group reader on the consent topic
	Store      Applier
	DeadLetter interface {
		WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	}
	DeadLetterTopic string
	Mapping         Mapping
	// Current answers what is stored now (uncached), to find purposes an
	// update withdraws.
	Current consent.Store
	// Retract, if set, is called before a withdrawal or erasure is written,
	// so that a crash in between re-emits it rather than losing it.
	Retract func(ctx context.Context, subject string, purposes []string, erased bool, version int64) error
	Backoff time.Duration
	Metrics *metrics.Metrics
	Log     *zap.Logger
}

// Run applies records until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	for {
		m, err := s.Reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.Log.Warn("consent topic fetch failed", zap.Error(err))
			if sleepCtx(ctx, s.Backoff) != nil {
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

func (s *Syncer) retry(ctx context.Context, fn func() error) error {
	backoff := s.Backoff
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.Log.Warn("applying consent record failed; retrying", zap.Duration("retry_in", backoff), zap.Error(err))
		if sleepCtx(ctx, backoff) != nil {
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Syncer) count(format Format, result string) {
	if s.Metrics != nil {
		s.Metrics.Updates.WithLabelValues(string(format), result).Inc()
	}
}

func (s *Syncer) handle(ctx context.Context, m kafka.Message) error {
	if m.Value == nil { // tombstone on the compacted topic: erase the subject
		if len(m.Key) == 0 {
			return s.deadLetter(ctx, m, errors.New("tombstone without a key"))
		}
		if s.Retract != nil {
			prev, err := s.current(ctx, string(m.Key))
			if err != nil {
				return err
			}
			if err := s.Retract(ctx, string(m.Key), s.Mapping.Purposes, true, prev.Version); err != nil {
				return err
			}
		}
		if _, err := s.Store.Erase(ctx, string(m.Key)); err != nil {
			return err
		}
		s.count("tombstone", "erased")
		return nil
	}
	u, err := Parse(m.Value, m.Time, s.Mapping)
	if err != nil {
		return s.deadLetter(ctx, m, err)
	}
	if s.Retract != nil {
		prev, err := s.current(ctx, u.Subject)
		if err != nil {
			return err
		}
		if !prev.Found || u.Version > prev.Version {
			if w := consent.Withdrawn(prev, u.Purposes, s.Mapping.Purposes); len(w) > 0 {
				if err := s.Retract(ctx, u.Subject, w, false, u.Version); err != nil {
					return err
				}
			}
		}
	}
	applied, err := s.Store.Put(ctx, u.Subject, u.Version, u.Purposes, u.Expires, u.GrantedAt)
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

func (s *Syncer) deadLetter(ctx context.Context, m kafka.Message, cause error) error {
	err := s.DeadLetter.WriteMessages(ctx, kafka.Message{
		Topic: s.DeadLetterTopic,
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: pipeline.HeaderDLQReason, Value: []byte("invalid_consent_record")},
			{Key: pipeline.HeaderDLQError, Value: []byte(cause.Error())},
			{Key: pipeline.HeaderSourceTopic, Value: []byte(m.Topic)},
			{Key: pipeline.HeaderSourcePart, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: pipeline.HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	})
	if err == nil {
		s.count("unknown", "invalid")
	}
	return err
}

func (s *Syncer) current(ctx context.Context, subject string) (consent.Record, error) {
	recs, err := s.Current.Lookup(ctx, []string{subject})
	if err != nil {
		return consent.Record{}, err
	}
	return recs[subject], nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
