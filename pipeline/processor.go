package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/scrub"
)

// Result is a processed batch: the messages to write, in order, and the
// accounting of every input message as decided. It does not change once
// Process returned: the sink reports what it could not write in a
// WriteReport, and Account combines both.
type Result struct {
	Out []kafka.Message
	// Origin[i] is the index, in the processed batch, of the raw message
	// Out[i] was made from.
	Origin     []int
	Accounting Accounting
	// seq and subjects let Stale tell whether consent changed since;
	// expires is the earliest expiry of a record the batch was decided
	// with (zero: none).
	seq      uint64
	subjects []string
	expires  time.Time
	// segments holds each event's segment labels, for Account to take a
	// refused write out of the clean counts (nil: none measured).
	segments *segmentRecord
}

// Processor decides a batch of raw messages in four stages: parse (size,
// JSON, subject, identity links), link (store the links), resolve (consent
// records, failing closed) and decide (policy, then rendering the clean
// messages and dead letters). Not safe for concurrent use: use one per
// partition worker.
type Processor struct {
	cfg       ProcessorConfig
	storeLoop *outage.Loop
	decider   policy.Decider
	render    renderer
	docs      []event.Doc
	// segments labels segment values (nil: the policy measures none).
	segments *segmentTable
	// shadow decides ProcessorConfig.Shadow; shadowN counts the events
	// seen, for ShadowEvery.
	shadow  *policy.Decider
	shadowN int
	// scan, ids and labels check the aggregates' group values
	// (contribute).
	scan   scrub.Scanner
	ids    [][]byte
	labels map[string]string
	// observe, when set (Explain), is told what decide did with each
	// message.
	observe func(i int, subject string, rec consent.Record, d *policy.Decision, ie *policy.InputError)
}

// NewProcessor applies cfg's defaults, validates it and returns a
// Processor.
func NewProcessor(cfg ProcessorConfig) (*Processor, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newProcessor(cfg, storeLoop(cfg), newSegmentTable(cfg.Policy)), nil
}

// storeLoop is the outage.Loop of the lookups of the processors of cfg:
// one for all, each processor reporting as one of its members, so that
// one partition's failing lookups are one outage while the others'
// succeed.
func storeLoop(cfg ProcessorConfig) *outage.Loop {
	return outage.OrNew(cfg.StoreOutage, "the consent store", "", cfg.Log).Loop("consent lookups", "events are held (fail closed)")
}

func newProcessor(cfg ProcessorConfig, loop *outage.Loop, segments *segmentTable) *Processor {
	p := &Processor{cfg: cfg, storeLoop: loop, decider: policy.Decider{Policy: cfg.Policy}, render: newRenderer(cfg.Policy, cfg.DeadLetterTopic, cfg.CopyHeaders), segments: segments}
	if cfg.Shadow != nil {
		p.shadow = &policy.Decider{Policy: cfg.Shadow}
	}
	return p
}

// NewProcessorFactory validates cfg once and returns the factory of one
// Processor per partition worker (RunnerConfig.NewProcessor).
func NewProcessorFactory(cfg ProcessorConfig) (func() BatchProcessor, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loop := storeLoop(cfg)
	// One table of segment values for all partition workers: the first
	// values seen get their labels process-wide.
	segments := newSegmentTable(cfg.Policy)
	return func() BatchProcessor { return newProcessor(cfg, loop.Member(), segments) }, nil
}

// Process decides msgs. It returns an error only when ctx ends while the
// consent store is failing: then nothing of the batch may be written.
// While the store fails, Process retries with backoff and reports
// CondConsentStore failing (fail closed).
func (p *Processor) Process(ctx context.Context, msgs []kafka.Message) (*Result, error) {
	start := time.Now()
	b := p.parse(msgs)
	parsed := time.Now()
	if err := p.link(ctx, b); err != nil {
		return nil, err
	}
	var seq uint64
	if p.cfg.Changes != nil {
		seq = p.cfg.Changes.Seq()
	}
	records, err := p.resolve(ctx, b.lookup)
	if err != nil {
		return nil, err
	}
	looked := time.Now()
	res := p.decide(msgs, b, records)
	res.seq = seq
	done := time.Now()
	hooks.Each(p.cfg.Hooks, func(h StageHook) {
		h.OnStage(StageLookup, looked.Sub(parsed))
		h.OnStage(StageDecide, parsed.Sub(start)+done.Sub(looked))
	})
	return res, nil
}

// ExpiryGuard is how long before its expiry a record stops granting in
// the pipeline, and how long before it a batch decided with the record
// counts as stale: a write that follows a decision or a check lands at the
// broker before the record expires.
const ExpiryGuard = time.Second

// Stale reports whether the consent of a subject in res changed after res
// was decided, or a record it was decided with expires within ExpiryGuard:
// the batch must then be decided again before it is written.
func (p *Processor) Stale(res *Result) bool {
	if !res.expires.IsZero() && !time.Now().Add(ExpiryGuard).Before(res.expires) {
		return true
	}
	return p.cfg.Changes != nil && p.cfg.Changes.ChangedSince(res.seq, res.subjects)
}

// parsed is the parse stage's view of a batch.
type parsed struct {
	docs     []event.Doc
	subjects []string             // "" when dead or no subject
	dead     []*policy.InputError // non-nil: dead-letter
	lookup   []string             // subjects to resolve (repeats allowed)
	links    map[string]string    // identity links established
	linkedBy map[string][]int     // anonymous id -> the messages linking it
	relinks  int                  // links refused within the batch (another user for an id)
}

// parse checks, parses and reads the subject of every message.
func (p *Processor) parse(msgs []kafka.Message) *parsed {
	if cap(p.docs) < len(msgs) {
		p.docs = make([]event.Doc, len(msgs))
	}
	b := &parsed{
		docs:     p.docs[:len(msgs)],
		subjects: make([]string, len(msgs)),
		dead:     make([]*policy.InputError, len(msgs)),
		lookup:   make([]string, 0, len(msgs)),
	}
	for i := range msgs {
		doc := &b.docs[i]
		if ie := policy.ParseEvent(doc, msgs[i].Value, p.cfg.MaxMessageBytes); ie != nil {
			b.dead[i] = ie
			continue
		}
		s, _, ok, err := p.cfg.Policy.Subject(doc)
		if err != nil {
			b.dead[i] = asInputError(err)
			continue
		}
		if !ok {
			continue
		}
		b.subjects[i] = s
		b.lookup = append(b.lookup, s) // the store deduplicates
		if p.cfg.Linker != nil {
			if anon, user, ok := policy.IdentityLink(doc); ok {
				if b.links == nil {
					b.links, b.linkedBy = map[string]string{}, map[string][]int{}
				}
				// The first link of an anonymous id in the batch stands,
				// as across batches: a later event naming another user
				// for it is refused (counted), never dead-lettered.
				switch cur, seen := b.links[anon]; {
				case !seen:
					b.links[anon] = user
					b.linkedBy[anon] = append(b.linkedBy[anon], i)
				case cur == user:
					b.linkedBy[anon] = append(b.linkedBy[anon], i)
				default:
					b.relinks++
				}
			}
		}
	}
	return b
}

// link stores the batch's identity links before its lookups, so that the
// events of this very batch are decided with them. The events whose link
// would exceed the user's cap are dead-lettered; a refused relink only
// counts (the event is decided as usual, without the link).
func (p *Processor) link(ctx context.Context, b *parsed) error {
	if len(b.links) == 0 {
		return nil
	}
	var before uint64
	if p.cfg.Changes != nil {
		before = p.cfg.Changes.Seq()
	}
	var results map[string]string
	err := p.retryStore(ctx, len(b.links), func() (err error) {
		results, err = p.cfg.Linker.LinkEvents(ctx, b.links)
		return err
	})
	if err != nil {
		return err
	}
	counts := map[string]int{}
	if b.relinks > 0 {
		counts["refused_relink"] = b.relinks
	}
	var linked []string
	for anon, r := range results {
		counts[r]++
		if r == linkLinked {
			linked = append(linked, anon)
		}
		if r != "refused_cap" {
			continue
		}
		for _, i := range b.linkedBy[anon] {
			if b.dead[i] == nil {
				b.dead[i] = &policy.InputError{Reason: ReasonTooManyLinkedIDs, Err: fmt.Errorf("the user already has the most anonymous ids events may link")}
			}
		}
	}
	for r, n := range counts {
		hooks.Each(p.cfg.Hooks, func(h LinkHook) { h.OnIdentityLinks(r, n) })
	}
	p.hearOwnLinks(ctx, before, linked)
	return nil
}

// linkLinked is the Linker's result for a link it made.
const linkLinked = "linked"

// OwnLinkWait bounds how long a batch waits to hear the announcements of
// the identity links it made itself (hearOwnLinks).
const OwnLinkWait = 250 * time.Millisecond

// hearOwnLinks waits, up to OwnLinkWait, until the change tracker has
// heard the change announced for every id in linked after since. A link
// is announced to every instance, this one included; heard after the
// batch's lookups, the batch's own links would make it stale, and it
// would be decided twice. Waiting changes nothing else: a change heard
// later still makes the batch stale, and one that takes longer to arrive
// only costs the second decision.
func (p *Processor) hearOwnLinks(ctx context.Context, since uint64, linked []string) {
	if p.cfg.Changes == nil || len(linked) == 0 {
		return
	}
	deadline := time.Now().Add(OwnLinkWait)
	one := make([]string, 1)
	for {
		linked = slices.DeleteFunc(linked, func(s string) bool {
			one[0] = s
			return p.cfg.Changes.ChangedSince(since, one)
		})
		if len(linked) == 0 || ctx.Err() != nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// resolve looks the subjects' consent up, retrying until the store
// answers or ctx ends: nothing is decided while the store cannot answer.
func (p *Processor) resolve(ctx context.Context, subjects []string) (map[string]consent.Record, error) {
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

// decide runs the policy on every message and renders what it decided.
func (p *Processor) decide(msgs []kafka.Message, b *parsed, records map[string]consent.Record) *Result {
	res := &Result{
		Accounting: NewAccounting(),
		Out:        make([]kafka.Message, 0, len(msgs)+len(msgs)/2),
		Origin:     make([]int, 0, len(msgs)+len(msgs)/2),
		subjects:   b.lookup,
	}
	for _, r := range records {
		if r.LinkedTo != "" {
			res.subjects = append(res.subjects, r.LinkedTo) // a user's change affects the linked id
		}
	}
	acc := &res.Accounting
	now := time.Now()
	// Writes are counted per output here and added to the maps once per
	// batch; so are consumed messages, per run of one topic.
	writes := make([]int, len(p.cfg.Policy.Outputs))
	topic, consumed := "", 0
	seg := p.segments.tally(len(msgs))
	defer func() {
		if seg != nil {
			res.segments = seg.addTo(acc, p.cfg.Policy.Outputs)
		}
		if consumed > 0 {
			acc.Consumed[topic] += consumed
		}
		for j, n := range writes {
			if n > 0 {
				name := p.cfg.Policy.Outputs[j].Name
				acc.Decisions[Decision{name, "write", ""}] += n
				acc.Written[name] += n
			}
		}
	}()
	for i := range msgs {
		m := &msgs[i]
		if m.Topic != topic {
			if consumed > 0 {
				acc.Consumed[topic] += consumed
			}
			topic, consumed = m.Topic, 0
		}
		consumed++
		if b.dead[i] != nil {
			p.deadLetter(res, i, m, b.dead[i])
			p.told(i, "", consent.Record{}, nil, b.dead[i])
			continue
		}
		if b.subjects[i] == "" {
			p.told(i, "", consent.Record{}, nil, nil)
			acc.Dropped[policy.ReasonNoSubject]++
			for _, o := range p.cfg.Policy.Outputs {
				acc.Decisions[Decision{o.Name, "skip", policy.ReasonNoSubject}]++
			}
			continue
		}
		rec := records[b.subjects[i]]
		if rec.ExpiredAt(now.Add(ExpiryGuard)) {
			// Expiring before this batch's writes could land: no record.
			rec = consent.Record{LinkedTo: rec.LinkedTo}
		} else if rec.Found && !rec.Expires.IsZero() && (res.expires.IsZero() || rec.Expires.Before(res.expires)) {
			res.expires = rec.Expires
		}
		at := policy.Times{Record: m.Time, Now: now}
		d, err := p.decider.DecideAt(&b.docs[i], b.subjects[i], rec, at)
		if p.shadow != nil {
			p.decideShadow(&b.docs[i], b.subjects[i], rec, at, d, err)
		}
		if err != nil {
			ie := asInputError(err)
			p.deadLetter(res, i, m, ie)
			p.told(i, b.subjects[i], rec, nil, ie)
			continue
		}
		p.told(i, b.subjects[i], rec, d, nil)
		if seg != nil {
			seg.event(i, &b.docs[i], d)
		}
		source := p.render.clean(res, i, m, d)
		for j := range d.Outputs {
			od := &d.Outputs[j]
			if od.Write {
				writes[j]++
			} else {
				acc.Decisions[Decision{od.Output.Name, "skip", od.Reason}]++
			}
		}
		if reason := d.DropReason(); reason != "" {
			acc.Dropped[reason]++
		}
		if len(p.cfg.Policy.Aggregates) > 0 {
			p.contribute(res, m, &b.docs[i], b.subjects[i], d)
		}
		if ce := p.cfg.Log.Check(zap.DebugLevel, "decision"); ce != nil {
			ce.Write(zap.ByteString("source", source), zap.String("explain", d.Explain()))
		}
	}
	p.observePartition(msgs, res)
	return res
}

// decideShadow decides the shadow policy on the event, when ShadowEvery
// selects it, and tells the ShadowHooks how it differs from the live
// decision (d, err). Values are compared before d is rendered; d is not
// modified.
func (p *Processor) decideShadow(doc *event.Doc, subject string, rec consent.Record, at policy.Times, d *policy.Decision, err error) {
	p.shadowN++
	if every := max(p.cfg.ShadowEvery, 1); p.shadowN%every != 0 {
		return
	}
	sd, serr := p.shadow.DecideAt(doc, subject, rec, at)
	var lie, sie *policy.InputError
	if err != nil {
		lie = asInputError(err)
	}
	if serr != nil {
		sie = asInputError(serr)
	}
	diffs := policy.Compare(d, lie, sd, sie)
	var key []byte
	if d != nil {
		for _, od := range d.Outputs {
			if od.Write {
				key = od.Key
				break
			}
		}
	}
	if key == nil {
		key, _ = p.cfg.Policy.PseudonymousKey(subject)
	}
	hooks.Each(p.cfg.Hooks, func(h ShadowHook) { h.OnShadow(key, diffs) })
}

// told tells observe, if set, what decide did with message i.
func (p *Processor) told(i int, subject string, rec consent.Record, d *policy.Decision, ie *policy.InputError) {
	if p.observe != nil {
		p.observe(i, subject, rec, d, ie)
	}
}

func (p *Processor) deadLetter(res *Result, i int, m *kafka.Message, ie *policy.InputError) {
	res.Out = append(res.Out, p.render.deadLetter(m, ie))
	res.Origin = append(res.Origin, i)
	res.Accounting.Dead[ie.Reason]++
}

// asInputError returns err as an *policy.InputError, classing anything
// else as internal.
func asInputError(err error) *policy.InputError {
	var ie *policy.InputError
	if !errors.As(err, &ie) {
		ie = &policy.InputError{Reason: policy.ReasonInternal, Err: err}
	}
	return ie
}

// retryStore runs fn until it succeeds or ctx ends, with backoff, marking
// the consent store unhealthy meanwhile (fail closed).
func (p *Processor) retryStore(ctx context.Context, n int, fn func() error) error {
	err := retry.Do(ctx, retry.Policy{Backoff: p.cfg.Backoff, Classify: retry.AlwaysTransient, OnRetry: func(attempt int, err error, wait time.Duration) {
		p.cfg.Hooks.Condition(CondConsentStore, err)
		p.storeLoop.Failed(err)
		p.cfg.Log.Debug("consent store unavailable; holding the batch (fail closed)",
			zap.Int("attempt", attempt), zap.Int("subjects", n), zap.Duration("retry_in", wait), zap.Error(err))
	}}, fn)
	if err == nil {
		p.cfg.Hooks.Condition(CondConsentStore, nil)
		p.storeLoop.OK()
	} else {
		// ctx ended (the partition was released): these lookups stop
		// retrying and withdraw their failure.
		p.storeLoop.Close()
	}
	return err
}
