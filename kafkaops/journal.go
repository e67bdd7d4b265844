package kafkaops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/lib/retry"
)

// JournalSource is the "source" of the consent records ConsentJournal
// writes.
const JournalSource = "consentd"

// ConsentJournal writes the changes made through the command line and the
// consent API to the consent topic, keyed by subject: a record in the
// native format for a change, a tombstone for an erasure. Read back by
// ConsentSyncer they change nothing (the store already holds them); a new
// consumer group, or a store rebuilt from the topic, gets the same state.
// It implements dsr.Journal.
type ConsentJournal struct {
	Producer Producer
	Topic    string
	Backoff  retry.Backoff
}

type nativeRecord struct {
	Subject   string          `json:"subject"`
	Purposes  map[string]bool `json:"purposes"`
	Version   int64           `json:"version"`
	Source    string          `json:"source"`
	ExpiresAt string          `json:"expires_at,omitempty"`
}

// Record writes subject's record.
func (j *ConsentJournal) Record(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, at time.Time) error {
	r := nativeRecord{Subject: subject, Purposes: purposes, Version: version, Source: JournalSource}
	if !expires.IsZero() {
		r.ExpiresAt = expires.UTC().Format(time.RFC3339Nano)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return j.write(ctx, kafka.Message{Topic: j.Topic, Key: []byte(subject), Value: v, Time: at})
}

// Erased writes a tombstone per subject.
func (j *ConsentJournal) Erased(ctx context.Context, subjects []string, at time.Time) error {
	msgs := make([]kafka.Message, len(subjects))
	for i, s := range subjects {
		msgs[i] = kafka.Message{Topic: j.Topic, Key: []byte(s), Time: at}
	}
	return j.write(ctx, msgs...)
}

func (j *ConsentJournal) write(ctx context.Context, msgs ...kafka.Message) error {
	if j.Topic == "" {
		return errors.New("consent journal: no consent topic")
	}
	if err := writeAcked(ctx, j.Producer, j.Backoff, msgs); err != nil {
		return fmt.Errorf("writing to the consent topic %s: %w", j.Topic, err)
	}
	return nil
}
