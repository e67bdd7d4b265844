package pipeline

import (
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/policy"
)

// PartitionObserver is told, per batch, the aggregate contributions of
// the batch's events and the raw partition they were read from (every
// message of a batch comes from one partition), before the batch is
// written: evidence of how the raw topic is partitioned (a subject seen
// in two partitions), which the Kafka key cannot prove. A Hook of the
// ProcessorConfig; calls are synchronous and from every partition
// worker: return quickly.
type PartitionObserver interface {
	ObservePartition(topic string, partition int, contributions []Contribution)
}

// observePartition tells the PartitionObservers of the batch's counted
// contributions.
func (p *Processor) observePartition(msgs []kafka.Message, res *Result) {
	if len(res.Accounting.Contributions) == 0 || len(msgs) == 0 {
		return
	}
	m := &msgs[0]
	hooks.Each(p.cfg.Hooks, func(h PartitionObserver) { h.ObservePartition(m.Topic, m.Partition, res.Accounting.Contributions) })
}

// contribute adds to res the event's contribution to every aggregate of
// the policy that counts it (policy.Aggregate.Counts). The aggregates
// bound each subject's contributions per instance, which is exact only
// when all of a subject's events reach one partition: an event whose key
// is not its subject id is excluded (and reported as such) rather than
// counted unbounded.
func (p *Processor) contribute(res *Result, m *kafka.Message, doc *event.Doc, subject string, d *policy.Decision) {
	idsRead := false
	ids := func() [][]byte {
		if !idsRead {
			p.ids, idsRead = p.cfg.Policy.EventIdentifiers(doc, p.ids[:0]), true
		}
		return p.ids
	}
	for ai, a := range p.cfg.Policy.Aggregates {
		if !a.Counts(doc, d) {
			continue
		}
		c := Contribution{Aggregate: ai}
		if string(m.Key) != subject {
			c.Excluded = ExcludedKeyNotSubject
		} else {
			c.Subject = maphash.String(p.cfg.AggregateSeed, subject)
			c.Group = p.group(doc, a.GroupBy, ids)
			if a.Sum != nil {
				c.Value = number(doc, a.Sum.Field.Path)
			}
		}
		res.Accounting.Contributions = append(res.Accounting.Contributions, c)
	}
}

// group returns the event's values at fields (labels), joined by
// GroupSep.
func (p *Processor) group(doc *event.Doc, fields []policy.SegmentField, ids func() [][]byte) string {
	switch len(fields) {
	case 0:
		return ""
	case 1:
		return p.label(doc, fields[0].Path, ids)
	}
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteString(GroupSep)
		}
		b.WriteString(p.label(doc, f.Path, ids))
	}
	return b.String()
}

// MaxGroupLabels bounds the group values a processor remembers as
// admitted (label).
const MaxGroupLabels = 4096

// label returns the event's group value at path (policy.SegmentValue,
// with ids the event's identifier values). A value admitted once is
// remembered, as the segment table does: seen again, it costs a map
// lookup, not a read of the event's identifiers and a scan.
func (p *Processor) label(doc *event.Doc, path event.Path, ids func() [][]byte) string {
	v, found, _ := doc.Get(path)
	switch {
	case !found || v.Kind == event.Null:
		return policy.SegmentNone
	case v.Kind == event.String || v.Kind == event.Number || v.Kind == event.Bool:
		text := v.Raw
		if v.Kind == event.String {
			text = v.Text()
		}
		if l, ok := p.labels[string(text)]; ok {
			return l
		}
	default:
		return policy.SegmentRedacted
	}
	l := policy.SegmentValue(doc, path, &p.scan, ids())
	if l != policy.SegmentNone && l != policy.SegmentRedacted && len(p.labels) < MaxGroupLabels {
		if p.labels == nil {
			p.labels = map[string]string{}
		}
		p.labels[l] = l
	}
	return l
}

// number returns the JSON number at path, 0 when there is none.
func number(doc *event.Doc, path event.Path) float64 {
	v, found, _ := doc.Get(path)
	if !found || v.Kind != event.Number {
		return 0
	}
	f, err := strconv.ParseFloat(string(v.Raw), 64)
	if err != nil {
		return 0
	}
	return f
}
