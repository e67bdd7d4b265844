package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	// Progress, if set, is called every 500 dead letters read and once at
	// the end of each pass, with the counts so far and the number of dead
	// letters there are to read (up to the high-water marks at start).
	Progress func(rep ReplayReport, total int64)
	// IdleWait bounds how long a partition may yield nothing while below
	// the high-water mark it had at start before the replay fails.
	// Default: DefaultReplayIdleWait.
	IdleWait time.Duration
}

// replayFetchWait bounds how long one fetch of a replay waits for records.
const replayFetchWait = 20 * time.Millisecond

// DefaultReplayIdleWait is ReplayConfig.IdleWait's default.
const DefaultReplayIdleWait = 10 * time.Second

// ReplayReport counts what ReplayDeadLetters did.
type ReplayReport struct {
	Read int `json:"read"`
	// Replayed counts the dead letters selected for replay (a dry run:
	// that would be); Written those whose writes Kafka acknowledged.
	Replayed  int `json:"replayed"`
	Written   int `json:"written"`
	Skipped   int `json:"skipped"`   // another reason
	Truncated int `json:"truncated"` // cut down when dead-lettered: cannot be replayed
	// Foreign counts dead letters whose source topic is not one of
	// RawTopics (or missing): not replayed.
	Foreign int `json:"foreign"`
	// Reasons counts the dead letters read by reason.
	Reasons map[string]int `json:"reasons"`
}

// ErrNotRawTopic: a replay destination that is not a raw topic the
// configuration consumes.
var ErrNotRawTopic = errors.New("not a raw topic this configuration consumes")

// UnknownReasonError: reasons asked for that no dead letter has (a typo,
// or dead letters already gone). Nothing was replayed.
type UnknownReasonError struct {
	// Unknown are the reasons asked for that no dead letter has.
	Unknown []string
	// Present counts the dead letters by reason.
	Present map[string]int
}

func (e *UnknownReasonError) Error() string {
	s := "no dead letter has reason " + strings.Join(e.Unknown, ", ")
	if len(e.Present) == 0 {
		return s + "; the dead-letter topic holds no dead letters"
	}
	reasons := make([]string, 0, len(e.Present))
	for r := range e.Present {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if c := e.Present[b] - e.Present[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for i, r := range reasons {
		reasons[i] = fmt.Sprintf("%s (%d)", r, e.Present[r])
	}
	return s + "; the reasons present are " + strings.Join(reasons, ", ")
}

// span is the part of one dead-letter partition a replay reads: from its
// first offset to its high-water mark at start.
type span struct {
	partition   int
	first, last int64
}

// ReplayDeadLetters re-injects dead letters, once the policy or the
// configuration that refused them is fixed: each one's raw key and value
// go back to the raw topic it came from (or to To), in order per
// dead-letter partition. Truncated dead letters are counted, not replayed:
// their raw event is only in the raw topic, at the coordinates they name.
//
// It reads each partition up to its high-water mark at start, so dead
// letters written meanwhile wait for the next replay and an idle topic
// costs no wait. With Reasons set, a first pass counts the reasons present
// and a reason no dead letter has is an UnknownReasonError before anything
// is written.
func ReplayDeadLetters(ctx context.Context, cfg ReplayConfig) (ReplayReport, error) {
	if cfg.Dialer == nil {
		cfg.Dialer = kafka.DefaultDialer
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = DefaultReplayIdleWait
	}
	if len(cfg.Brokers) == 0 {
		return ReplayReport{}, errors.New("replay: no brokers")
	}
	if len(cfg.RawTopics) == 0 {
		return ReplayReport{}, errors.New("replay: no raw topics to write to")
	}
	if cfg.To != "" && !slices.Contains(cfg.RawTopics, cfg.To) {
		return ReplayReport{}, fmt.Errorf("replay: %s: %w (%s); dead letters hold raw events and go back only to raw topics", cfg.To, ErrNotRawTopic, strings.Join(cfg.RawTopics, ", "))
	}
	spans, total, err := highWaterMarks(ctx, cfg)
	if err != nil {
		return ReplayReport{}, err
	}
	want := map[string]bool{}
	for _, r := range cfg.Reasons {
		want[r] = true
	}
	pass := func(write bool) (ReplayReport, error) {
		rep := ReplayReport{Reasons: map[string]int{}}
		for _, sp := range spans {
			if err := replayPartition(ctx, cfg, sp, want, write, total, &rep); err != nil {
				return rep, err
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(rep, total)
		}
		return rep, nil
	}
	rep, err := pass(!cfg.DryRun && len(want) == 0)
	if err != nil || len(want) == 0 {
		return rep, err
	}
	var unknown []string
	for _, r := range cfg.Reasons {
		if rep.Reasons[r] == 0 && !slices.Contains(unknown, r) {
			unknown = append(unknown, r)
		}
	}
	if len(unknown) > 0 {
		return rep, &UnknownReasonError{Unknown: unknown, Present: rep.Reasons}
	}
	if cfg.DryRun {
		return rep, nil
	}
	return pass(true)
}

// highWaterMarks reads the first and next offsets of every partition of
// the dead-letter topic that holds records, and how many there are.
func highWaterMarks(ctx context.Context, cfg ReplayConfig) ([]span, int64, error) {
	conn, err := cfg.Dialer.DialContext(ctx, "tcp", cfg.Brokers[0])
	if err != nil {
		return nil, 0, fmt.Errorf("connecting: %w", err)
	}
	parts, err := conn.ReadPartitions(cfg.DeadLetterTopic)
	conn.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the partitions of %s: %w", cfg.DeadLetterTopic, err)
	}
	var spans []span
	var total int64
	for _, p := range parts {
		leader, err := cfg.Dialer.DialLeader(ctx, "tcp", cfg.Brokers[0], cfg.DeadLetterTopic, p.ID)
		if err != nil {
			return nil, 0, fmt.Errorf("connecting to the leader of %s/%d: %w", cfg.DeadLetterTopic, p.ID, err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("reading the offsets of %s/%d: %w", cfg.DeadLetterTopic, p.ID, err)
		}
		if last > first {
			spans = append(spans, span{partition: p.ID, first: first, last: last})
			total += last - first
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.partition - b.partition })
	return spans, total, nil
}

// replayPartition reads sp and, if write, writes the dead letters selected
// back to their raw topics, counting into rep.
func replayPartition(ctx context.Context, cfg ReplayConfig, sp span, want map[string]bool, write bool, total int64, rep *ReplayReport) error {
	// A short fetch wait: the reader fetches ahead, and its last fetch,
	// at the mark, waits this long for records that are not read.
	r := kafkax.NewReader(kafkax.ReaderConfig{Brokers: cfg.Brokers, Dialer: cfg.Dialer, Topic: cfg.DeadLetterTopic, Partition: sp.partition, MaxWait: replayFetchWait})
	defer r.Close()
	if err := r.SetOffset(sp.first); err != nil {
		return err
	}
	var batch []kafka.Message
	flush := func() error {
		if len(batch) == 0 || !write {
			batch = batch[:0]
			return nil
		}
		if err := cfg.Producer.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("writing replayed events: %w", err)
		}
		rep.Written += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		m, err := readBounded(ctx, r, cfg.IdleWait)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				if r.Offset() >= sp.last {
					return flush() // the mark was a gap (a control record)
				}
				err = fmt.Errorf("nothing arrived for %s below the high-water mark %d (at offset %d): %w", cfg.IdleWait, sp.last, r.Offset(), err)
			}
			return errors.Join(fmt.Errorf("reading %s/%d: %w", cfg.DeadLetterTopic, sp.partition, err), flush())
		}
		if m.Offset >= sp.last {
			return flush()
		}
		rep.Read++
		reason := string(wire.Header(&m, wire.HeaderDLQReason))
		rep.Reasons[reason]++
		switch {
		case len(want) > 0 && !want[reason]:
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
			if write {
				batch = append(batch, kafka.Message{Topic: to, Key: m.Key, Value: v, Time: m.Time})
			}
			rep.Replayed++
		}
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				return err
			}
		}
		if cfg.Progress != nil && rep.Read%500 == 0 {
			cfg.Progress(*rep, total)
		}
		if m.Offset+1 >= sp.last {
			return flush()
		}
	}
}

// readBounded reads the next message, waiting at most idle.
func readBounded(ctx context.Context, r *kafka.Reader, idle time.Duration) (kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, idle)
	defer cancel()
	return r.ReadMessage(ctx)
}
