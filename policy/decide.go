package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
)

// Reasons an output is not written, as they appear in decisions and metrics.
const (
	// ReasonNoSubject: the event has none of the subject paths.
	ReasonNoSubject = "no_subject"
	// ReasonFiltered: the output's when-filter does not select the event.
	ReasonFiltered = "filtered"
	// ReasonConsentDeniedPrefix is followed by the first missing purpose.
	ReasonConsentDeniedPrefix = "consent_denied:"
	// ReasonPreConsentPrefix is followed by the purpose granted only after
	// the event was collected.
	ReasonPreConsentPrefix = "pre_consent:"
)

// Decision explains what happened to one event.
type Decision struct {
	PolicyVersion  string
	ConsentFound   bool
	ConsentVersion int64
	// EventDenied lists purposes the event's own consent signals deny
	// (strictest wins over the stored record), with EventSignals naming
	// the signals found (segment, rudderstack, gpc).
	EventDenied  []string
	EventSignals []string
	// coarseGeo, when a TC string withholds precise geolocation (special
	// feature 1), rounds coordinates in every output.
	coarseGeo *roundGeo
	// Outputs has one entry per policy output, in policy order.
	Outputs []OutputDecision
}

// OutputDecision is the outcome for one output.
type OutputDecision struct {
	Output *Output
	// Write is true when the event goes to Output.Topic as Value.
	Write bool
	// Reason says why the event is not written ("" when written).
	Reason string
	// Actions lists every change made, in order. Decisions of events of
	// one shape share one slice: read it, never modify it.
	Actions []Action
	// Value is the transformed event, set when Write.
	Value []byte
	// Key is the clean message key, set when Write: the subject's
	// pseudonym under the output's keys (Policy.OutputKey). Outputs share
	// one slice unless the policy pseudonymizes per output.
	Key []byte
}

// Written counts outputs the event is written to.
func (d *Decision) Written() int {
	n := 0
	for i := range d.Outputs {
		if d.Outputs[i].Write {
			n++
		}
	}
	return n
}

// MaxActionsHeader bounds the consentd-actions header. Actions name policy
// paths, so a header is bounded by the policy anyway; the limit keeps a
// large policy's header small. Entries that do not fit are counted in a
// final "+N more".
const MaxActionsHeader = 1024

// maxActionEntries bounds the distinct entries merged per header.
const maxActionEntries = 64

// ActionsHeader renders an output's actions for the consentd-actions header:
// "op:path,op:path(N removed)", or "none". Repeated actions on one policy
// path are merged and counted. It names policy paths only, never a key or
// value of the event.
func (o *OutputDecision) ActionsHeader() string { return string(o.AppendActions(nil)) }

// AppendActions appends ActionsHeader's text to dst.
func (o *OutputDecision) AppendActions(dst []byte) []byte {
	if len(o.Actions) == 0 {
		return append(dst, "none"...)
	}
	var buf [16]Action
	merged := buf[:0]
	more := 0
next:
	for _, a := range o.Actions {
		n := max(a.Count, 1)
		for i := len(merged) - 1; i >= 0; i-- {
			if merged[i].Op == a.Op && merged[i].Path == a.Path {
				merged[i].Count += n
				continue next
			}
		}
		if len(merged) == maxActionEntries {
			more += n
			continue
		}
		a.Count = n
		merged = append(merged, a)
	}
	start := len(dst)
	for i, a := range merged {
		mark := len(dst)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = a.appendTo(dst)
		if len(dst)-start > MaxActionsHeader-16 {
			dst = dst[:mark]
			for _, b := range merged[i:] {
				more += b.Count
			}
			break
		}
	}
	if more > 0 {
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(strconv.AppendInt(append(dst, '+'), int64(more), 10), " more"...)
	}
	return dst
}

// Explain renders the decision for humans and debug logs. It contains no
// event values and no raw subject id.
func (d *Decision) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s, consent ", d.PolicyVersion)
	if d.ConsentFound {
		b.WriteString("v" + strconv.FormatInt(d.ConsentVersion, 10))
	} else {
		b.WriteString("none (nothing granted)")
	}
	if len(d.EventSignals) > 0 {
		fmt.Fprintf(&b, ", event signals %s deny [%s]", strings.Join(d.EventSignals, "+"), strings.Join(d.EventDenied, ", "))
	}
	for _, o := range d.Outputs {
		if o.Write {
			fmt.Fprintf(&b, "; %s: written (%s)", o.Output.Name, o.ActionsHeader())
		} else {
			fmt.Fprintf(&b, "; %s: skipped (%s)", o.Output.Name, o.Reason)
		}
	}
	return b.String()
}

// PseudonymousKey returns subject's pseudonym under the policy's
// pseudonym_key, before any per-output derivation: the clean message key
// of every output unless PerOutputPseudonyms (then see OutputKey). Logs
// use it to correlate calls about one subject.
func (p *Policy) PseudonymousKey(subject string) ([]byte, error) {
	if p.keys == nil {
		return nil, fmt.Errorf("no pseudonymization keys loaded")
	}
	return p.keys.AppendPseudonym(nil, p.PseudonymKey, []byte(subject))
}

// OutputKey returns the clean message key of subject on output o: its
// pseudonym under the policy's pseudonym_key, derived for o when
// PerOutputPseudonyms.
func (p *Policy) OutputKey(o *Output, subject string) ([]byte, error) {
	return p.OutputPseudonym(nil, o, []byte(subject))
}

// OutputPseudonym appends to dst the pseudonym of v on output o, under the
// policy's pseudonym_key (derived for o when PerOutputPseudonyms). The
// renderer writes the source coordinates of a clean record this way when
// outputs must not be joinable.
func (p *Policy) OutputPseudonym(dst []byte, o *Output, v []byte) ([]byte, error) {
	if o.keys == nil {
		return dst, fmt.Errorf("no pseudonymization keys loaded")
	}
	return o.keys.AppendPseudonym(dst, p.PseudonymKey, v)
}

// RetractionKeys returns the clean message keys a retraction of subject on
// output o must be written under: its key on o (OutputKey), then its
// pseudonyms under every key retired less than retention before now
// (see Keyring.Live), derived for o like the current one, so that records
// written before a key rotation are retracted too.
func (p *Policy) RetractionKeys(o *Output, subject string, now time.Time, retention time.Duration) ([][]byte, error) {
	if o.keys == nil {
		return nil, fmt.Errorf("no pseudonymization keys loaded")
	}
	var out [][]byte
	for _, id := range o.keys.Live(p.PseudonymKey, now, retention) {
		k, err := o.keys.AppendPseudonym(nil, id, []byte(subject))
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Subject returns the event's subject: the first subject path holding a
// non-empty string. path is the path it was found at. ok is false when
// there is none (reason no_subject). A subject of the wrong type, or a
// key confusable with a policy path anywhere (CheckKeys), is an *InputError.
func (p *Policy) Subject(doc *event.Doc) (subject, path string, ok bool, err error) {
	if err := p.CheckKeys(doc); err != nil {
		return "", "", false, err
	}
	for _, sp := range p.Subjects {
		s, found, err := doc.GetString(sp)
		if err != nil {
			ie := inputErr(err).(*InputError)
			if ie.Reason == ReasonWrongType {
				ie.Reason = ReasonInvalidSubject
			}
			return "", "", false, ie
		}
		if found && s != "" {
			return s, sp.String(), true, nil
		}
	}
	return "", "", false, nil
}

// Decider evaluates a Policy. It holds reusable buffers: one per goroutine.
type Decider struct {
	Policy *Policy
	ed     event.Edit
	acts   []Action
	ev     eventScratch
	x      run
	sink   signalSink
	out    []byte // the outputs' values and keys, before they are copied out
	// lastActs holds, per output, the actions last returned (actions).
	lastActs [][]Action
}

var (
	pathType  = event.MustPath("type")
	pathEvent = event.MustPath("event")
)

// DefaultMaxClockSkew is the default of Spec.MaxClockSkew.
const DefaultMaxClockSkew = 5 * time.Minute

// Times are the instants a decision depends on besides the event body. The
// policy package reads no clock: the caller says when it decides.
type Times struct {
	// Record is the Kafka record time of the raw event: the timestamp
	// its producer (the collector) stamped when sending it, an upper
	// bound on when the event was collected. An event recorded before a
	// purpose's grant time is pre-consent whatever its own timestamp
	// says. (kafka-go reports the producer's timestamp even on a topic
	// with message.timestamp.type=LogAppendTime.) Zero when unknown.
	Record time.Time
	// Now is when the decision is made: a record whose expiry (Expires)
	// is not after Now counts as no record, and an event timestamp more
	// than MaxClockSkew after Now counts as missing. Zero: neither check
	// is made.
	Now time.Time
}

// DecideAt evaluates every output for the event in doc, whose subject
// (from Subject) and consent record are given, at the times in at. Values
// in the Decision are freshly allocated and stay valid after doc is
// reused. An *InputError means the event must be dead-lettered as a whole;
// no output is written then.
func (dc *Decider) DecideAt(doc *event.Doc, subject string, rec consent.Record, at Times) (*Decision, error) {
	p := dc.Policy
	if !at.Now.IsZero() && rec.ExpiredAt(at.Now) {
		rec = consent.Record{LinkedTo: rec.LinkedTo} // an expired record is no record
	}
	d := newDecision(len(p.Outputs))
	d.PolicyVersion, d.ConsentFound, d.ConsentVersion = p.Version, rec.Found, rec.Version
	if p.keys == nil {
		return nil, &InputError{Reason: ReasonInternal, Err: fmt.Errorf("no pseudonymization keys loaded")}
	}
	dc.ev.reset(doc.Members())
	// Every output's value and key is rendered into dc.out, then copied
	// into one allocation of the exact size; spans say where each output's
	// value, key and actions (in dc.acts) lie.
	dc.out = dc.out[:0]
	var spansBuf [8]outputSpan
	spans := spansBuf[:0]
	if len(p.Outputs) > len(spansBuf) {
		spans = make([]outputSpan, 0, len(p.Outputs))
	}
	spans = spans[:len(p.Outputs)]
	subj := dc.ev.keepString(subject)
	sharedKey := -1 // where the shared key lies in dc.out
	var key []byte  // shared by every output unless PerOutputPseudonyms
	var err error
	if !p.PerOutputPseudonyms {
		if key, err = dc.ev.pseudonym(p.keys, p.PseudonymKey, subj); err != nil {
			return nil, &InputError{Reason: ReasonInternal, Err: err}
		}
		key = key[1 : len(key)-1] // unquoted; copied into dc.out below
	}

	dc.sink = signalSink{p: p, d: d}
	if err := p.eventConsent(doc, &dc.sink); err != nil {
		return nil, err
	}
	var typ, name []byte
	var typeRead bool
	evTime := eventTime{record: at.Record, now: at.Now, skew: p.MaxClockSkew}
	dc.acts = dc.acts[:0]
	x := &dc.x
	*x = run{acts: &dc.acts, ev: &dc.ev}
	for i, o := range p.Outputs {
		od := &d.Outputs[i]
		od.Output = o
		if missing := firstMissing(o.Require, rec, d.EventDenied); missing != "" {
			od.Reason = p.reason(ReasonConsentDeniedPrefix, missing)
			continue
		}
		if !p.AllowPreConsent {
			if early := preConsent(o.Require, rec, doc, &evTime); early != "" {
				od.Reason = p.reason(ReasonPreConsentPrefix, early)
				continue
			}
		}
		if len(o.Types) > 0 || len(o.Events) > 0 {
			if !typeRead {
				typeRead = true
				if typ, _, err = doc.GetText(pathType); err == nil {
					name, _, err = doc.GetText(pathEvent)
				}
				if err != nil {
					return nil, inputErr(err)
				}
			}
			if (len(o.Types) > 0 && !containsText(o.Types, typ)) || (len(o.Events) > 0 && !containsText(o.Events, name)) {
				od.Reason = ReasonFiltered
				continue
			}
		}
		dc.ed.Reset(doc)
		start := len(dc.acts)
		x.keys, x.op = o.keys, ""
		for _, t := range o.Transforms {
			if err := t.Apply(&dc.ed, x); err != nil {
				return nil, inputErr(err)
			}
		}
		if d.coarseGeo != nil {
			x.op = "tcf_round_geo"
			if err := d.coarseGeo.Apply(&dc.ed, x); err != nil {
				return nil, inputErr(err)
			}
		}
		sp := &spans[i]
		sp.acts = [2]int{start, len(dc.acts)}
		sp.value[0] = len(dc.out)
		dc.out = dc.ed.AppendTo(dc.out)
		sp.value[1] = len(dc.out)
		switch {
		case p.PerOutputPseudonyms:
			if dc.out, err = o.keys.AppendPseudonym(dc.out, p.PseudonymKey, subj); err != nil {
				return nil, &InputError{Reason: ReasonInternal, Err: err}
			}
			sp.key = [2]int{sp.value[1], len(dc.out)}
		case sharedKey < 0:
			sharedKey = len(dc.out)
			dc.out = append(dc.out, key...)
			fallthrough
		default:
			sp.key = [2]int{sharedKey, sharedKey + len(key)}
		}
		od.Write = true
	}
	out := slices.Clone(dc.out) // the decision's own bytes, exactly
	if cap(dc.out) > maxArena {
		dc.out = nil
	}
	for i := range d.Outputs {
		od := &d.Outputs[i]
		if !od.Write {
			continue
		}
		sp := spans[i]
		od.Value, od.Key = out[sp.value[0]:sp.value[1]:sp.value[1]], out[sp.key[0]:sp.key[1]:sp.key[1]]
		od.Actions = dc.actions(i, dc.acts[sp.acts[0]:sp.acts[1]])
	}
	return d, nil
}

// outputSpan is where one written output's value and key lie in
// Decider.out, and its actions in Decider.acts (start, end).
type outputSpan struct{ value, key, acts [2]int }

// actions returns acts as output i's actions: the slice it returned for
// the output's last event when they are the same (events of one shape
// get the same actions), else a copy it will return next time. Returned
// slices are shared between decisions and must not be modified.
func (dc *Decider) actions(i int, acts []Action) []Action {
	if len(acts) == 0 {
		return nil
	}
	if len(dc.lastActs) <= i {
		dc.lastActs = append(dc.lastActs, make([][]Action, i+1-len(dc.lastActs))...)
	}
	if last := dc.lastActs[i]; slices.Equal(last, acts) {
		return last
	}
	c := slices.Clip(slices.Clone(acts))
	dc.lastActs[i] = c
	return c
}

// containsText reports whether list holds b.
func containsText(list []string, b []byte) bool {
	for _, s := range list {
		if s == string(b) {
			return true
		}
	}
	return false
}

// newDecision returns a Decision with n outputs, allocated with the
// Decision itself when they are few.
func newDecision(n int) *Decision {
	switch n {
	case 1:
		b := new(struct {
			d    Decision
			outs [1]OutputDecision
		})
		b.d.Outputs = b.outs[:]
		return &b.d
	case 2:
		b := new(struct {
			d    Decision
			outs [2]OutputDecision
		})
		b.d.Outputs = b.outs[:]
		return &b.d
	case 3:
		b := new(struct {
			d    Decision
			outs [3]OutputDecision
		})
		b.d.Outputs = b.outs[:]
		return &b.d
	}
	return &Decision{Outputs: make([]OutputDecision, n)}
}

func firstMissing(require []string, rec consent.Record, denied []string) string {
	for _, pu := range require {
		if !rec.Allows(pu) || slices.Contains(denied, pu) {
			return pu
		}
	}
	return ""
}

// eventTime is an event's collection time, parsed once per decision, with
// the times it is checked against.
type eventTime struct {
	read, ok bool
	ms       int64
	// record and now are Times.Record and Times.Now; skew is
	// Policy.MaxClockSkew.
	record, now time.Time
	skew        time.Duration
}

// parse reads the event's own timestamp: timestamp, else
// originalTimestamp, in RFC 3339. A timestamp more than skew after the
// record time (or after now) counts as missing: an event cannot be
// collected after Kafka recorded it.
func (et *eventTime) parse(doc *event.Doc) {
	et.read = true
	for _, tp := range eventTimePaths {
		s, ok, err := doc.GetText(tp)
		if err != nil || !ok {
			continue
		}
		t, ok := parseTime(s)
		if !ok {
			continue
		}
		if et.future(t) {
			continue // as good as missing
		}
		et.ok, et.ms = true, t.UnixMilli()
		return
	}
}

// future reports whether t lies more than skew after the record time or
// after now.
func (et *eventTime) future(t time.Time) bool {
	for _, ref := range [...]time.Time{et.record, et.now} {
		if !ref.IsZero() && t.After(ref.Add(et.skew)) {
			return true
		}
	}
	return false
}

var eventTimePaths = []event.Path{event.MustPath("timestamp"), event.MustPath("originalTimestamp")}

// preConsent returns the first required purpose that was granted after the
// event was collected: after its Kafka record time, or after its own
// timestamp, or any purpose with a known grant time when the event has no
// usable timestamp (missing, unparseable or in the future).
func preConsent(require []string, rec consent.Record, doc *event.Doc, et *eventTime) string {
	for _, pu := range require {
		granted, known := rec.GrantedAt[pu]
		if !known {
			continue
		}
		if !et.record.IsZero() && et.record.UnixMilli() < granted {
			return pu // in Kafka before the grant, whatever the event says
		}
		if !et.read {
			et.parse(doc)
		}
		if !et.ok || et.ms < granted {
			return pu
		}
	}
	return ""
}
