package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/scrub"
	"github.com/consentd/consentd/wire"
)

// RepresentationSource says where a representation report reads.
type RepresentationSource struct {
	Dialer  *kafka.Dialer
	Brokers []string
	// RawTopics are the raw topics consentd consumes.
	RawTopics []string
	// From and To bound the raw records read by their record time
	// [From, To).
	From, To time.Time
	// Progress, if set, is told the records read so far, now and then.
	Progress func(records int)
}

// rawRef names one raw record.
type rawRef struct {
	topic     string
	partition int
	offset    int64
}

// RepresentationFromTopics counts the events of [From, To) the way the
// pipeline's consentd_segment_events_total does, from the topics:
//
//   - stage raw: every raw record that parses as an event with a
//     subject, for each output whose filter selects it, by the value of
//     each of the output's segment fields. The consent is not known here,
//     and events the pipeline dead-lettered for a reason only the
//     decision finds (a bad consent string) are counted too.
//   - stage clean: every record of an output's clean topic whose
//     consentd-source header names one of those raw records, by its own
//     value at each segment field. An output that pseudonymizes per
//     output carries no readable source: its clean records are counted
//     by record time instead, from the start of the truncation unit of
//     From (its clean record times are truncated) to To.
//
// Values are labelled as the pipeline labels them (policy.SegmentValue);
// a value no clean record of the range holds counts as (other), as in
// the metric; every other distinct value is counted (the report keeps
// the top ones).
func RepresentationFromTopics(ctx context.Context, pol *policy.Policy, src RepresentationSource) (representation.Counts, error) {
	if pol.Segments == nil {
		return nil, fmt.Errorf("the policy names no segment fields (segments.fields): nothing to report")
	}
	if !src.To.After(src.From) {
		return nil, fmt.Errorf("the range is empty: --to %s is not after --from %s", src.To.Format(time.RFC3339), src.From.Format(time.RFC3339))
	}
	counts := representation.Counts{}
	seen := map[rawRef]bool{}
	sc := &scrub.Scanner{}
	var doc event.Doc
	var ids [][]byte
	read := 0
	tick := func() {
		read++
		if src.Progress != nil && read%10000 == 0 {
			src.Progress(read)
		}
	}
	seg := pol.Segments
	for _, topic := range src.RawTopics {
		err := readRange(ctx, src.Dialer, src.Brokers, topic, src.From, src.To, func(m *kafka.Message) {
			tick()
			if doc.Parse(m.Value) != nil {
				return
			}
			if _, _, ok, err := pol.Subject(&doc); !ok || err != nil {
				return
			}
			seen[rawRef{m.Topic, m.Partition, m.Offset}] = true
			typ, name := policy.TypeAndName(&doc)
			ids = pol.EventIdentifiers(&doc, ids[:0])
			for j, o := range pol.Outputs {
				if !o.Selects(typ, name) {
					continue
				}
				for _, f := range seg.ByOutput[j] {
					field := seg.Fields[f]
					counts.Add(representation.Key{Output: o.Name, Field: field.Name, Value: policy.SegmentValue(&doc, field.Path, sc, ids)}, false, 1)
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	for j, o := range pol.Outputs {
		if len(seg.ByOutput[j]) == 0 {
			continue
		}
		from := o.CleanTime(src.From)
		err := readRange(ctx, src.Dialer, src.Brokers, o.Topic, from, src.To, func(m *kafka.Message) {
			tick()
			if ref, ok := sourceOf(m); ok {
				if !seen[ref] {
					return
				}
			} else if m.Time.Before(from) || !m.Time.Before(src.To) {
				return
			}
			if doc.Parse(m.Value) != nil {
				return
			}
			// A clean event's identifiers are pseudonyms: its values
			// were checked against the raw ids by scrub already.
			ids = pol.EventIdentifiers(&doc, ids[:0])
			for _, f := range seg.ByOutput[j] {
				field := seg.Fields[f]
				counts.Add(representation.Key{Output: o.Name, Field: field.Name, Value: policy.SegmentValue(&doc, field.Path, sc, ids)}, true, 1)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if src.Progress != nil {
		src.Progress(read)
	}
	return foldUnwritten(counts), nil
}

// foldUnwritten counts every value of a field that no clean topic holds
// as representation.Other, as the pipeline's metric does: the report
// (which an ML team may be given) never shows a value that only
// subjects without consent sent.
func foldUnwritten(counts representation.Counts) representation.Counts {
	written := map[[2]string]bool{} // field, value
	for k, p := range counts {
		if p.Clean > 0 {
			written[[2]string{k.Field, k.Value}] = true
		}
	}
	out := representation.Counts{}
	for k, p := range counts {
		switch k.Value {
		case policy.SegmentNone, policy.SegmentRedacted, representation.Other:
		default:
			if !written[[2]string{k.Field, k.Value}] {
				k.Value = representation.Other
			}
		}
		q := out[k]
		q.Raw += p.Raw
		q.Clean += p.Clean
		out[k] = q
	}
	return out
}

// sourceOf reads a clean record's consentd-source header: the raw
// record it was made from, when written as topic/partition/offset.
func sourceOf(m *kafka.Message) (rawRef, bool) {
	h := wire.Header(m, wire.HeaderSource)
	if h == nil {
		return rawRef{}, false
	}
	topic, partition, offset, err := wire.ParseSource(string(h))
	if err != nil {
		return rawRef{}, false
	}
	return rawRef{topic, partition, offset}, true
}

// readRange calls fn with every record of topic whose offset lies
// between the first record at or after from (zero: the partition's
// start) and the first at or after to (zero, or none there: the
// partition's end as of the call), partition by partition. A topic that
// does not exist, or a partition that stops answering before the end of
// its range, is an error naming it.
func readRange(ctx context.Context, d *kafka.Dialer, brokers []string, topic string, from, to time.Time, fn func(*kafka.Message)) error {
	var conn *kafka.Conn
	var err error
	for _, b := range brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("connecting to Kafka (kafka.brokers): %w", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	for _, p := range parts {
		if p.Topic != topic {
			continue
		}
		first, last, err := offsetsBetween(ctx, d, brokers, topic, p.ID, from, to)
		if err != nil {
			return err
		}
		if first >= last {
			continue
		}
		if err := readOffsets(ctx, d, brokers, topic, p.ID, first, last, fn); err != nil {
			return err
		}
	}
	return nil
}

// offsetsBetween returns the offsets of the first records at or after
// from and to (see readRange for zero times).
func offsetsBetween(ctx context.Context, d *kafka.Dialer, brokers []string, topic string, partition int, from, to time.Time) (first, last int64, err error) {
	lc, err := d.DialLeader(ctx, "tcp", brokers[0], topic, partition)
	if err != nil {
		return 0, 0, fmt.Errorf("%s/%d: %w", topic, partition, err)
	}
	defer lc.Close()
	start, end, err := lc.ReadOffsets()
	if err != nil {
		return 0, 0, fmt.Errorf("%s/%d: reading offsets: %w", topic, partition, err)
	}
	first, last = start, end
	if !from.IsZero() {
		if at, err := lc.ReadOffset(from); err == nil && at > first {
			first = at
		}
	}
	if !to.IsZero() {
		if at, err := lc.ReadOffset(to); err == nil && at >= 0 && at < last {
			last = at
		}
	}
	return first, last, nil
}

// rangeIdleWait bounds how long readOffsets waits for the next record.
const rangeIdleWait = 10 * time.Second

// readOffsets calls fn with the records of [first, last). Each read
// waits at most rangeIdleWait: when it ends with the reader at or past
// last, the rest of the range held no records to read (transaction
// markers, or records compacted away), as in the dead-letter replay;
// before last, the partition stopped answering: an error rather than a
// hang or a silently short read.
func readOffsets(ctx context.Context, d *kafka.Dialer, brokers []string, topic string, partition int, first, last int64, fn func(*kafka.Message)) error {
	r := kafkax.NewReader(kafkax.ReaderConfig{Brokers: brokers, Dialer: d, Topic: topic, Partition: partition, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return err
	}
	for {
		m, err := readBounded(ctx, r, rangeIdleWait)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && r.Offset() >= last {
				return nil
			}
			return fmt.Errorf("%s/%d: reading [%d, %d) at offset %d: %w", topic, partition, first, last, r.Offset(), err)
		}
		if m.Offset >= last {
			return nil
		}
		fn(&m)
		if m.Offset+1 >= last {
			return nil
		}
	}
}
