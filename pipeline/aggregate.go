package pipeline

import (
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/policy"
)

// contribute adds to res the event's contribution to every aggregate of
// the policy that counts it (policy.Aggregate.Counts). The aggregates
// bound each subject's contributions per instance, which is exact only
// when all of a subject's events reach one partition: an event whose key
// is not its subject id is excluded (and reported as such) rather than
// counted unbounded.
func (p *Processor) contribute(res *Result, m *kafka.Message, doc *event.Doc, subject string, d *policy.Decision) {
	idsRead := false
	for ai, a := range p.cfg.Policy.Aggregates {
		if !a.Counts(doc, d) {
			continue
		}
		c := Contribution{Aggregate: ai}
		if string(m.Key) != subject {
			c.Excluded = ExcludedKeyNotSubject
		} else {
			if !idsRead {
				p.ids, idsRead = p.cfg.Policy.EventIdentifiers(doc, p.ids[:0]), true
			}
			c.Subject = maphash.String(p.cfg.AggregateSeed, subject)
			c.Group = p.group(doc, a.GroupBy, p.ids)
			if a.Sum != nil {
				c.Value = number(doc, a.Sum.Field.Path)
			}
		}
		res.Accounting.Contributions = append(res.Accounting.Contributions, c)
	}
}

// group returns the event's values at fields (policy.SegmentValue, ids
// the event's identifier values), joined by GroupSep.
func (p *Processor) group(doc *event.Doc, fields []policy.SegmentField, ids [][]byte) string {
	switch len(fields) {
	case 0:
		return ""
	case 1:
		return policy.SegmentValue(doc, fields[0].Path, &p.scan, ids)
	}
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteString(GroupSep)
		}
		b.WriteString(policy.SegmentValue(doc, f.Path, &p.scan, ids))
	}
	return b.String()
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
