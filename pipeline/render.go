package pipeline

import (
	"bytes"
	"slices"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// renderer turns decisions into Kafka messages through the wire contract,
// sharing the header values that repeat from message to message.
type renderer struct {
	deadLetterTopic string
	policyVersion   []byte // never modified: shared by every message
	policyDigest    []byte // the same
	policyVersionS  string
	outputNames     [][]byte
	// Rendered consentd-actions headers, shared between messages with the
	// same actions (most events of one shape).
	actionHdrs map[string][]byte
	scratch    []byte
	last       []lastActions // per output
	// copyHeaders names the raw headers copied to every clean message.
	copyHeaders []string
	// pol is set when outputs must not be joinable (per-output
	// pseudonyms): each clean message's source and consent-version
	// headers are then pseudonyms under its output's keys.
	pol *policy.Policy
	// Slabs the messages of a batch take their headers and small header
	// values from: never reused (the messages keep them), refilled when
	// spent, so a batch costs a few allocations rather than some per
	// message.
	hdrSlab  []kafka.Header
	byteSlab []byte
}

const (
	hdrSlabLen  = 1024
	byteSlabLen = 16 << 10
)

// headers returns an empty header slice with room for n, from the slab.
func (r *renderer) headers(n int) []kafka.Header {
	if cap(r.hdrSlab)-len(r.hdrSlab) < n {
		r.hdrSlab = make([]kafka.Header, 0, max(hdrSlabLen, n))
	}
	start := len(r.hdrSlab)
	r.hdrSlab = r.hdrSlab[:start+n]
	return r.hdrSlab[start : start : start+n]
}

// grow makes room for n more slab bytes (more may be appended: the slab
// then grows) and returns where they start.
func (r *renderer) grow(n int) int {
	if cap(r.byteSlab)-len(r.byteSlab) < n {
		r.byteSlab = make([]byte, 0, max(byteSlabLen, n))
	}
	return len(r.byteSlab)
}

// bytesFrom returns the slab bytes appended since start, capped.
func (r *renderer) bytesFrom(start int) []byte {
	return r.byteSlab[start:len(r.byteSlab):len(r.byteSlab)]
}

const maxActionHeaders = 1024

func newRenderer(p *policy.Policy, deadLetterTopic string, copyHeaders []string) renderer {
	r := renderer{deadLetterTopic: deadLetterTopic, policyVersion: []byte(p.Version), policyDigest: []byte(p.Digest), policyVersionS: p.Version, copyHeaders: copyHeaders}
	for _, o := range p.Outputs {
		r.outputNames = append(r.outputNames, []byte(o.Name))
	}
	if p.PerOutputPseudonyms {
		r.pol = p
	}
	return r
}

// actionsHeader returns od's actions header, reusing an identical earlier
// one: at once when od shares the action list of the output's previous
// message (Decider shares the lists of events of one shape).
func (r *renderer) actionsHeader(j int, od *policy.OutputDecision) []byte {
	if len(r.last) <= j {
		r.last = append(r.last, make([]lastActions, j+1-len(r.last))...)
	}
	l := &r.last[j]
	if n := len(od.Actions); n > 0 && l.hdr != nil && &od.Actions[0] == l.first && n == l.n {
		return l.hdr
	}
	h := r.render(od)
	if len(od.Actions) > 0 {
		*l = lastActions{first: &od.Actions[0], n: len(od.Actions), hdr: h}
	}
	return h
}

// lastActions is the action list an output's previous message had, and
// its header.
type lastActions struct {
	first *policy.Action
	n     int
	hdr   []byte
}

// render renders od's actions header, sharing identical ones.
func (r *renderer) render(od *policy.OutputDecision) []byte {
	r.scratch = od.AppendActions(r.scratch[:0])
	if h, ok := r.actionHdrs[string(r.scratch)]; ok {
		return h
	}
	if r.actionHdrs == nil || len(r.actionHdrs) >= maxActionHeaders {
		r.actionHdrs = make(map[string][]byte, 64)
	}
	h := bytes.Clone(r.scratch)
	r.actionHdrs[string(h)] = h
	return h
}

// clean appends to res one clean message per output d writes raw message
// i (m) to, and returns its source header value.
func (r *renderer) clean(res *Result, i int, m *kafka.Message, d *policy.Decision) []byte {
	c := wire.Clean{
		PolicyVersion:  r.policyVersion,
		PolicyDigest:   r.policyDigest,
		ConsentVersion: wire.None,
	}
	start := r.grow(len(m.Topic) + 48)
	r.byteSlab = wire.AppendSource(r.byteSlab, m.Topic, m.Partition, m.Offset)
	c.Source = r.bytesFrom(start)
	if d.ConsentFound {
		start = len(r.byteSlab)
		r.byteSlab = strconv.AppendInt(r.byteSlab, d.ConsentVersion, 10)
		c.ConsentVersion = r.bytesFrom(start)
	}
	source, version := c.Source, c.ConsentVersion
	for j := range d.Outputs {
		od := &d.Outputs[j]
		if !od.Write {
			continue
		}
		c.Topic, c.Key, c.Value, c.Output, c.Actions = od.Output.Topic, od.Key, od.Value, r.outputNames[j], r.actionsHeader(j, od)
		c.Time = od.CleanTime(m.Time) // the record time says no more than the body's
		if r.pol != nil {
			// The raw coordinates are one per event and the consent
			// version (a time in ms) one per subject: shared by outputs,
			// they would join them. Decide already used these keys.
			c.Source, _ = r.pol.OutputPseudonym(nil, od.Output, source)
			if d.ConsentFound {
				c.ConsentVersion, _ = r.pol.OutputPseudonym(nil, od.Output, version)
			}
		}
		out := c.AppendMessage(r.headers(wire.CleanHeaders + r.copied(m)))
		out.Headers = r.appendCopied(out.Headers, m)
		res.Out = append(res.Out, out)
		res.Origin = append(res.Origin, i)
	}
	return source
}

// copied counts the raw headers of m appendCopied copies.
func (r *renderer) copied(m *kafka.Message) int {
	if len(r.copyHeaders) == 0 {
		return 0
	}
	n := 0
	for _, h := range m.Headers {
		if slices.Contains(r.copyHeaders, h.Key) {
			n++
		}
	}
	return n
}

// appendCopied appends to hs the raw headers of m whose key is in
// pipeline.copy_headers, in the raw order.
func (r *renderer) appendCopied(hs []kafka.Header, m *kafka.Message) []kafka.Header {
	if len(r.copyHeaders) == 0 {
		return hs
	}
	for _, h := range m.Headers {
		if slices.Contains(r.copyHeaders, h.Key) {
			hs = append(hs, kafka.Header{Key: h.Key, Value: h.Value})
		}
	}
	return hs
}

// deadLetter renders m's dead letter for ie.
func (r *renderer) deadLetter(m *kafka.Message, ie *policy.InputError) kafka.Message {
	return wire.DeadLetter(r.deadLetterTopic, m, ie.Reason, ie.Error(), r.policyVersionS)
}
