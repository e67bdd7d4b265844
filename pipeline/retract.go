package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/policy"
)

// Retraction headers. A retraction is a record with a null value (a
// tombstone, so compacted clean topics drop the subject's earlier records)
// keyed by the subject's pseudonymous key, the same key its clean events
// carry.
const (
	HeaderRetraction         = "consentd-retraction"          // "consent_revoked" or "erased"
	HeaderRetractionPurposes = "consentd-retraction-purposes" // comma-separated purposes withdrawn
)

// Retraction reasons.
const (
	RetractRevoked = "consent_revoked"
	RetractErased  = "erased"
)

// Retractor tells clean-topic consumers to purge a subject.
type Retractor struct {
	Policy *policy.Policy
	Writer Writer
}

// Retract writes a retraction to every clean topic fed by one of purposes
// (every clean topic when reason is RetractErased), and returns the topics
// written. It returns after every write is acknowledged.
func (r *Retractor) Retract(ctx context.Context, subject string, purposes []string, reason string, consentVersion int64) ([]string, error) {
	key, err := r.Policy.PseudonymousKey(subject)
	if err != nil {
		return nil, err
	}
	var msgs []kafka.Message
	var topics []string
	for _, o := range r.Policy.Outputs {
		hit := reason == RetractErased
		for _, p := range o.Require {
			hit = hit || slices.Contains(purposes, p)
		}
		if !hit || slices.Contains(topics, o.Topic) {
			continue
		}
		topics = append(topics, o.Topic)
		msgs = append(msgs, kafka.Message{
			Topic: o.Topic,
			Key:   key,
			Value: nil,
			Headers: []kafka.Header{
				{Key: HeaderRetraction, Value: []byte(reason)},
				{Key: HeaderRetractionPurposes, Value: []byte(strings.Join(purposes, ","))},
				{Key: HeaderPolicyVersion, Value: []byte(r.Policy.Version)},
				{Key: HeaderConsentVersion, Value: []byte(strconv.FormatInt(consentVersion, 10))},
			},
		})
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	// Retry transient broker errors (a leader moving, a topic just
	// created) for a few seconds before giving up.
	for attempt := 0; attempt < 10; attempt++ {
		if err = r.Writer.WriteMessages(ctx, msgs...); err == nil {
			return topics, nil
		}
		if sleep(ctx, time.Duration(attempt+1)*100*time.Millisecond) != nil {
			break
		}
	}
	return nil, fmt.Errorf("writing retractions: %w", err)
}
