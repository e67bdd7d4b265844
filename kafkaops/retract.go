package kafkaops

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// RetractTimeout bounds how long Retract retries transient broker errors
// (a leader moving, a topic just created) before giving up.
const RetractTimeout = 10 * time.Second

// Producer writes messages; *kafka.Writer implements it. WriteMessages
// returns once every message is acknowledged or failed. Safe for
// concurrent use.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Retractor tells clean-topic consumers to purge a subject, through
// retraction tombstones (see wire.Retraction). It implements
// changes.Retractor.
type Retractor struct {
	Policy   *policy.Policy
	Producer Producer
	// Backoff bounds the wait between failed writes.
	Backoff retry.Backoff
	// Log, if set, records which topics were written (never the subject).
	Log *zap.Logger
	// Retention is the clean topics' retention: retractions go out under
	// the current pseudonym key and every key retired less than this long
	// ago (policy.RetractionKeys). Default: 7 days.
	Retention time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// DefaultRetention is Retractor.Retention's default.
const DefaultRetention = 7 * 24 * time.Hour

// Retract writes a retraction to every clean topic fed by one of purposes
// (every clean topic when erased), under the subject's key on each output
// writing there and that key's live predecessors (policy.RetractionKeys),
// and returns the topics written. It returns after every write is
// acknowledged.
func (r *Retractor) Retract(ctx context.Context, subject string, purposes []string, erased bool, consentVersion int64) ([]string, error) {
	now, retention := time.Now, r.Retention
	if r.Now != nil {
		now = r.Now
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	reason := wire.RetractRevoked
	if erased {
		reason = wire.RetractErased
	}
	var msgs []kafka.Message
	var topics []string
	sent := map[string]bool{} // topic and key: outputs sharing a topic and keys send one
	for _, o := range r.Policy.Outputs {
		hit := erased
		for _, p := range o.Require {
			hit = hit || slices.Contains(purposes, p)
		}
		if !hit {
			continue
		}
		keys, err := r.Policy.RetractionKeys(o, subject, now(), retention)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
		for _, key := range keys {
			if id := o.Topic + "\x00" + string(key); !sent[id] {
				sent[id] = true
				msgs = append(msgs, wire.Retraction(o.Topic, key, reason, purposes, r.Policy.Version, consentVersion))
			}
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	if err := writeAcked(ctx, r.Producer, r.Backoff, msgs); err != nil {
		return nil, fmt.Errorf("writing retractions: %w", err)
	}
	if r.Log != nil {
		r.Log.Info("retractions written", zap.String("reason", reason), zap.Strings("purposes", purposes), zap.Strings("topics", topics))
	}
	return topics, nil
}

// writeAcked writes msgs and returns once every one is acknowledged,
// retrying transient broker errors (a leader moving, a topic just
// created) for up to RetractTimeout.
func writeAcked(ctx context.Context, p Producer, b retry.Backoff, msgs []kafka.Message) error {
	wctx, cancel := context.WithTimeout(ctx, RetractTimeout)
	defer cancel()
	return retry.Do(wctx, retry.Policy{Backoff: b, Classify: kafkax.Classify}, func() error {
		return p.WriteMessages(wctx, msgs...)
	})
}
