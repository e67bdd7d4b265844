package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/wire"
)

// ReplayConfig configures ReplayDeadLetters.
type ReplayConfig struct {
	// Brokers and Dialer reach the cluster (Dialer default: kafka-go's).
	Brokers []string
	Dialer  *kafka.Dialer
	// DeadLetterTopic is read from its first to its last offset at start.
	DeadLetterTopic string
	// Reasons, if set, replays only dead letters with one of these reasons.
	Reasons []string
	// RawTopics are the raw topics the configuration consumes: the only
	// topics replayed events may be written to (raw events with raw keys
	// and personal data must never reach a clean, consent or dead-letter
	// topic). Required.
	RawTopics []string
	// To overrides the destination; by default each dead letter goes back
	// to the topic it came from (its consentd-source-topic header). It
	// must be one of RawTopics.
	To string
	// Producer writes the replayed events. Required unless DryRun.
	Producer Producer
	// DryRun counts without writing.
	DryRun bool
	// Progress, if set, is called every 1000 dead letters read.
	Progress func(ReplayReport)
}

// ReplayReport counts what ReplayDeadLetters did.
type ReplayReport struct {
	Read      int
	Replayed  int
	Skipped   int // another reason
	Truncated int // cut down when dead-lettered: cannot be replayed
	// Foreign counts dead letters whose source topic is not one of
	// RawTopics (or missing): not replayed.
	Foreign int
}

// ErrNotRawTopic: a replay destination that is not a raw topic the
// configuration consumes.
var ErrNotRawTopic = errors.New("not a raw topic this configuration consumes")

// ReplayDeadLetters re-injects dead letters, once the policy or the
// configuration that refused them is fixed: each one's raw key and value
// go back to the raw topic it came from (or to To), in order per
// dead-letter partition. Truncated dead letters are counted, not replayed:
// their raw event is only in the raw topic, at the coordinates they name.
func ReplayDeadLetters(ctx context.Context, cfg ReplayConfig) (ReplayReport, error) {
	var rep ReplayReport
	if cfg.Dialer == nil {
		cfg.Dialer = kafka.DefaultDialer
	}
	if len(cfg.Brokers) == 0 {
		return rep, errors.New("replay: no brokers")
	}
	if len(cfg.RawTopics) == 0 {
		return rep, errors.New("replay: no raw topics to write to")
	}
	if cfg.To != "" && !slices.Contains(cfg.RawTopics, cfg.To) {
		return rep, fmt.Errorf("replay: %s: %w (%s); dead letters hold raw events and go back only to raw topics", cfg.To, ErrNotRawTopic, strings.Join(cfg.RawTopics, ", "))
	}
	conn, err := cfg.Dialer.DialContext(ctx, "tcp", cfg.Brokers[0])
	if err != nil {
		return rep, fmt.Errorf("connecting: %w", err)
	}
	parts, err := conn.ReadPartitions(cfg.DeadLetterTopic)
	conn.Close()
	if err != nil {
		return rep, fmt.Errorf("reading the partitions of %s: %w", cfg.DeadLetterTopic, err)
	}
	want := map[string]bool{}
	for _, r := range cfg.Reasons {
		want[r] = true
	}
	for _, p := range parts {
		if err := replayPartition(ctx, cfg, p.ID, want, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func replayPartition(ctx context.Context, cfg ReplayConfig, partition int, want map[string]bool, rep *ReplayReport) error {
	leader, err := cfg.Dialer.DialLeader(ctx, "tcp", cfg.Brokers[0], cfg.DeadLetterTopic, partition)
	if err != nil {
		return fmt.Errorf("connecting to the leader of %s/%d: %w", cfg.DeadLetterTopic, partition, err)
	}
	first, last, err := leader.ReadOffsets()
	leader.Close()
	if err != nil {
		return fmt.Errorf("reading the offsets of %s/%d: %w", cfg.DeadLetterTopic, partition, err)
	}
	if last <= first {
		return nil
	}
	r := kafkax.NewReader(kafkax.ReaderConfig{Brokers: cfg.Brokers, Dialer: cfg.Dialer, Topic: cfg.DeadLetterTopic, Partition: partition})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return err
	}
	var batch []kafka.Message
	flush := func() error {
		if len(batch) == 0 || cfg.DryRun {
			batch = batch[:0]
			return nil
		}
		if err := cfg.Producer.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("writing replayed events: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return errors.Join(fmt.Errorf("reading %s/%d: %w", cfg.DeadLetterTopic, partition, err), flush())
		}
		rep.Read++
		switch {
		case len(want) > 0 && !want[string(wire.Header(&m, wire.HeaderDLQReason))]:
			rep.Skipped++
		case wire.Header(&m, wire.HeaderDLQTruncated) != nil:
			rep.Truncated++
		default:
			// A dead letter goes back only if it came from a raw topic
			// (not the consent topic's dead letters, not a forged
			// header), and only to a raw topic.
			src := string(wire.Header(&m, wire.HeaderSourceTopic))
			to := cfg.To
			if to == "" {
				to = src
			}
			if !slices.Contains(cfg.RawTopics, src) || !slices.Contains(cfg.RawTopics, to) {
				rep.Foreign++
				break
			}
			v := m.Value
			if v == nil {
				v = []byte{} // dead letters are never tombstones (see wire.DeadLetter)
			}
			batch = append(batch, kafka.Message{Topic: to, Key: m.Key, Value: v, Time: m.Time})
			rep.Replayed++
		}
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				return err
			}
		}
		if cfg.Progress != nil && rep.Read%1000 == 0 {
			cfg.Progress(*rep)
		}
		if m.Offset+1 >= last {
			return flush()
		}
	}
}
