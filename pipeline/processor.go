// Package pipeline moves events from raw Kafka topics through consent
// lookups and the policy to clean topics, committing offsets only after
// every write of a message, and of all earlier messages in its partition,
// has been acknowledged.
//
// The Processor is the per-batch core (no Kafka I/O: messages in, messages
// to write out); the Runner wires it to kafka-go consumer groups and a
// writer.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/policy"
)

// Header names on clean and dead-letter messages.
const (
	HeaderPolicyVersion  = "consentd-policy-version"
	HeaderConsentVersion = "consentd-consent-version"
	HeaderActions        = "consentd-actions"
	HeaderOutput         = "consentd-output"
	HeaderSource         = "consentd-source"
	HeaderDLQReason      = "consentd-dlq-reason"
	HeaderDLQError       = "consentd-dlq-error"
	HeaderSourceTopic    = "consentd-source-topic"
	HeaderSourcePart     = "consentd-source-partition"
	HeaderSourceOffset   = "consentd-source-offset"
)

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	Policy *policy.Policy
	// Store answers consent lookups (normally a consent.Cache over Redis).
	Store consent.Store
	// Changes, if set, tells whether consent changed after a batch was
	// decided (normally the consent.Cache, fed by invalidations), so that
	// a batch still waiting to be written is decided again.
	Changes interface {
		Seq() uint64
		ChangedSince(seq uint64, subjects []string) bool
	}
	// Linker, if set, records the identity links that identify and alias
	// events establish (anonymous id -> user id) before the batch's
	// lookups; *redisstore.Writer implements it.
	Linker interface {
		Link(ctx context.Context, links map[string]string) error
	}
	// DeadLetterTopic receives undecidable events.
	DeadLetterTopic string
	// MaxMessageBytes: larger raw events are dead-lettered as too_large.
	MaxMessageBytes int
	// RetryBackoffMin/Max bound the wait between failed lookups.
	RetryBackoffMin, RetryBackoffMax time.Duration
	Metrics                          *metrics.Metrics
	Health                           *Health
	Log                              *zap.Logger
}

// Accounting is what a processed batch did, applied to metrics once its
// writes are acknowledged (so a batch abandoned in a rebalance and
// redelivered is not counted twice).
type Accounting struct {
	Consumed map[string]int // raw topic
	Written  map[string]int // output
	Dropped  map[string]int // reason
	Dead     map[string]int // reason
	// Decisions counts output decisions by output, action and reason.
	Decisions map[[3]string]int
}

// NewAccounting returns empty Accounting.
func NewAccounting() Accounting {
	return Accounting{Consumed: map[string]int{}, Written: map[string]int{}, Dropped: map[string]int{}, Dead: map[string]int{}, Decisions: map[[3]string]int{}}
}

// Apply adds the counts to m.
func (a *Accounting) Apply(m *metrics.Metrics) {
	if m == nil {
		return
	}
	for k, v := range a.Consumed {
		m.Consumed.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Written {
		m.Written.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Dropped {
		m.Dropped.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Dead {
		m.DeadLettered.WithLabelValues(k).Add(float64(v))
	}
	for k, v := range a.Decisions {
		m.Decisions.WithLabelValues(k[0], k[1], k[2]).Add(float64(v))
	}
}

// Result is a processed batch: the messages to write, in order, and the
// accounting of every input message.
type Result struct {
	Out        []kafka.Message
	Accounting Accounting
	// seq and subjects let Stale tell whether consent changed since.
	seq      uint64
	subjects []string
}

// Processor decides a batch of raw messages. Not safe for concurrent use:
// use one per partition worker.
type Processor struct {
	cfg     ProcessorConfig
	docs    []event.Doc
	decider policy.Decider
	// Header values shared by every message (never modified).
	policyVersion []byte
	outputNames   [][]byte
	// Rendered consentd-actions headers, shared between messages with the
	// same actions (most events of one shape).
	actionHdrs map[string][]byte
	scratch    []byte
}

const maxActionHeaders = 1024

// actionsHeader returns od's actions header, reusing an identical earlier one.
func (p *Processor) actionsHeader(od *policy.OutputDecision) []byte {
	p.scratch = od.AppendActions(p.scratch[:0])
	if h, ok := p.actionHdrs[string(p.scratch)]; ok {
		return h
	}
	if p.actionHdrs == nil || len(p.actionHdrs) >= maxActionHeaders {
		p.actionHdrs = make(map[string][]byte, 64)
	}
	h := bytes.Clone(p.scratch)
	p.actionHdrs[string(h)] = h
	return h
}

var noneBytes = []byte("none")

// NewProcessor returns a Processor.
func NewProcessor(cfg ProcessorConfig) *Processor {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Processor{cfg: cfg, decider: policy.Decider{P: cfg.Policy}, policyVersion: []byte(cfg.Policy.Version)}
	for _, o := range cfg.Policy.Outputs {
		p.outputNames = append(p.outputNames, []byte(o.Name))
	}
	return p
}

// sourceHeader renders "topic/partition/offset".
func sourceHeader(m *kafka.Message) []byte {
	b := make([]byte, 0, len(m.Topic)+24)
	b = append(b, m.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(m.Partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, m.Offset, 10)
}

type state uint8

const (
	stPending state = iota
	stDead
	stNoSubject
)

// Process decides msgs. It returns an error only when ctx ends while the
// consent store is failing: then nothing of the batch may be written.
// While the store fails, Process retries with backoff and marks the
// Health not ready (fail closed).
func (p *Processor) Process(ctx context.Context, msgs []kafka.Message) (*Result, error) {
	if cap(p.docs) < len(msgs) {
		p.docs = make([]event.Doc, len(msgs))
	}
	docs := p.docs[:len(msgs)]
	states := make([]state, len(msgs))
	subjects := make([]string, len(msgs))
	paths := make([]string, len(msgs))
	dead := make([]*policy.InputError, len(msgs))
	lookup := make([]string, 0, len(msgs))
	var links map[string]string

	for i := range msgs {
		m := &msgs[i]
		if len(m.Value) > p.cfg.MaxMessageBytes {
			states[i], dead[i] = stDead, &policy.InputError{Reason: policy.ReasonTooLarge, Err: errors.New("event of " + strconv.Itoa(len(m.Value)) + " bytes exceeds max_message_bytes " + strconv.Itoa(p.cfg.MaxMessageBytes))}
			continue
		}
		if err := docs[i].Parse(m.Value); err != nil {
			states[i], dead[i] = stDead, policy.ParseError(err)
			continue
		}
		s, path, ok, err := p.cfg.Policy.Subject(&docs[i])
		if err != nil {
			var ie *policy.InputError
			errors.As(err, &ie)
			states[i], dead[i] = stDead, ie
			continue
		}
		if !ok {
			states[i] = stNoSubject
			continue
		}
		subjects[i], paths[i] = s, path
		lookup = append(lookup, s) // the store deduplicates
		if p.cfg.Linker != nil {
			links = identityLink(&docs[i], links)
		}
	}

	if len(links) > 0 {
		if err := p.retryStore(ctx, len(links), func() error { return p.cfg.Linker.Link(ctx, links) }); err != nil {
			return nil, err
		}
	}
	var seq uint64
	if p.cfg.Changes != nil {
		seq = p.cfg.Changes.Seq()
	}
	records, err := p.lookup(ctx, lookup)
	if err != nil {
		return nil, err
	}
	// An anonymous id linked to a user is decided with the strictest of its
	// own record and the user's.
	var users []string
	for _, r := range records {
		if r.LinkedTo != "" {
			if _, have := records[r.LinkedTo]; !have {
				users = append(users, r.LinkedTo)
			}
		}
	}
	if len(users) > 0 {
		more, err := p.lookup(ctx, users)
		if err != nil {
			return nil, err
		}
		for s, r := range more {
			records[s] = r
		}
	}
	for s, r := range records {
		if r.LinkedTo != "" {
			records[s] = consent.Strictest(r, records[r.LinkedTo])
		}
	}

	res := &Result{Accounting: NewAccounting(), Out: make([]kafka.Message, 0, len(msgs)+len(msgs)/2), seq: seq, subjects: lookup}
	for _, r := range records {
		if r.LinkedTo != "" {
			res.subjects = append(res.subjects, r.LinkedTo) // a user's change affects the linked id
		}
	}
	acc := &res.Accounting
	for i := range msgs {
		m := &msgs[i]
		acc.Consumed[m.Topic]++
		switch states[i] {
		case stDead:
			res.Out = append(res.Out, p.deadLetter(m, dead[i]))
			acc.Dead[dead[i].Reason]++
			continue
		case stNoSubject:
			acc.Dropped[policy.ReasonNoSubject]++
			for _, o := range p.cfg.Policy.Outputs {
				acc.Decisions[[3]string{o.Name, "skip", policy.ReasonNoSubject}]++
			}
			continue
		}
		d, err := p.decider.Decide(&docs[i], subjects[i], paths[i], records[subjects[i]])
		if err != nil {
			var ie *policy.InputError
			if !errors.As(err, &ie) {
				ie = &policy.InputError{Reason: policy.ReasonInternal, Err: err}
			}
			res.Out = append(res.Out, p.deadLetter(m, ie))
			acc.Dead[ie.Reason]++
			continue
		}
		source := sourceHeader(m)
		consentVersion := noneBytes
		if d.ConsentFound {
			consentVersion = strconv.AppendInt(nil, d.ConsentVersion, 10)
		}
		dropReason := ""
		for j := range d.Outputs {
			od := &d.Outputs[j]
			if !od.Write {
				acc.Decisions[[3]string{od.Output.Name, "skip", od.Reason}]++
				if dropReason == "" || (dropReason == policy.ReasonFiltered && od.Reason != policy.ReasonFiltered) {
					dropReason = od.Reason
				}
				continue
			}
			acc.Decisions[[3]string{od.Output.Name, "write", ""}]++
			acc.Written[od.Output.Name]++
			res.Out = append(res.Out, kafka.Message{
				Topic: od.Output.Topic,
				Key:   d.Key,
				Value: od.Value,
				Time:  m.Time,
				Headers: []kafka.Header{
					{Key: HeaderPolicyVersion, Value: p.policyVersion},
					{Key: HeaderConsentVersion, Value: consentVersion},
					{Key: HeaderActions, Value: p.actionsHeader(od)},
					{Key: HeaderOutput, Value: p.outputNames[j]},
					{Key: HeaderSource, Value: source},
				},
			})
		}
		if d.Written() == 0 {
			acc.Dropped[dropReason]++
		}
		if ce := p.cfg.Log.Check(zap.DebugLevel, "decision"); ce != nil {
			ce.Write(zap.ByteString("source", source), zap.String("explain", d.Explain()))
		}
	}
	return res, nil
}

func (p *Processor) deadLetter(m *kafka.Message, ie *policy.InputError) kafka.Message {
	return kafka.Message{
		Topic: p.cfg.DeadLetterTopic,
		Key:   m.Key,
		Value: m.Value,
		Time:  m.Time,
		Headers: []kafka.Header{
			{Key: HeaderDLQReason, Value: []byte(ie.Reason)},
			{Key: HeaderDLQError, Value: []byte(ie.Error())},
			{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
			{Key: HeaderSourcePart, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
			{Key: HeaderPolicyVersion, Value: p.policyVersion},
		},
	}
}

// Stale reports whether the consent of a subject in res changed after res
// was decided: the batch must then be decided again before it is written.
func (p *Processor) Stale(res *Result) bool {
	return p.cfg.Changes != nil && p.cfg.Changes.ChangedSince(res.seq, res.subjects)
}

// lookup resolves subjects, retrying with backoff until it succeeds or ctx
// ends. Nothing is decided while the store cannot answer.
func (p *Processor) lookup(ctx context.Context, subjects []string) (map[string]consent.Record, error) {
	if len(subjects) == 0 {
		return map[string]consent.Record{}, nil
	}
	var recs map[string]consent.Record
	err := p.retryStore(ctx, len(subjects), func() error {
		var err error
		recs, err = p.cfg.Store.Lookup(ctx, subjects)
		return err
	})
	return recs, err
}

// retryStore runs fn until it succeeds or ctx ends, with backoff, marking
// the consent store unhealthy meanwhile (fail closed).
func (p *Processor) retryStore(ctx context.Context, n int, fn func() error) error {
	backoff := p.cfg.RetryBackoffMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			p.cfg.Health.Set(CondConsentStore, nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.cfg.Health.Set(CondConsentStore, err)
		p.cfg.Log.Warn("consent store unavailable; holding the batch (fail closed)",
			zap.Int("attempt", attempt), zap.Int("subjects", n), zap.Duration("retry_in", backoff), zap.Error(err))
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, p.cfg.RetryBackoffMax)
	}
}

var (
	pathType        = event.MustPath("type")
	pathUserID      = event.MustPath("userId")
	pathAnonymousID = event.MustPath("anonymousId")
	pathPreviousID  = event.MustPath("previousId")
)

// identityLink adds the link an identify (anonymousId -> userId) or alias
// (previousId -> userId) event establishes to links.
func identityLink(doc *event.Doc, links map[string]string) map[string]string {
	typ, _, err := doc.GetString(pathType)
	if err != nil || (typ != "identify" && typ != "alias") {
		return links
	}
	from := pathAnonymousID
	if typ == "alias" {
		from = pathPreviousID
	}
	user, ok1, err1 := doc.GetString(pathUserID)
	anon, ok2, err2 := doc.GetString(from)
	if err1 != nil || err2 != nil || !ok1 || !ok2 || user == "" || anon == "" || user == anon {
		return links
	}
	if links == nil {
		links = map[string]string{}
	}
	links[anon] = user
	return links
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
