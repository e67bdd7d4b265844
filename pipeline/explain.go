package pipeline

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/policy"
)

// Explanation is what the pipeline does with one raw message, as Explain
// found it.
type Explanation struct {
	// Subject is the event's subject ("" when it has none or was
	// dead-lettered before one was read).
	Subject string
	// Record is the consent record the decision used (identity links
	// applied; an expired one as no record).
	Record consent.Record
	// Decision is the policy's decision, nil when the event was
	// dead-lettered or has no subject.
	Decision *policy.Decision
	// Dead is why the event is dead-lettered, nil when it is not.
	Dead *policy.InputError
	// Out holds the clean messages and the dead letter exactly as they
	// would be written: topic, key, headers, value and time.
	Out []kafka.Message
	// Accounting is what the event counts as.
	Accounting Accounting
}

// Explain runs msg through the stages Process runs on every batch (parse,
// resolve, decide, render), as a batch of one, and reports what they did.
// It writes nothing: the identity link an identify or alias event would
// store is not stored (the event is explained with the links already
// stored). Like Process, it waits while the consent store fails; it
// returns an error only when ctx ends first.
func (p *Processor) Explain(ctx context.Context, msg kafka.Message) (*Explanation, error) {
	var ex Explanation
	linker := p.cfg.Linker
	p.cfg.Linker = nil
	p.observe = func(_ int, subject string, rec consent.Record, d *policy.Decision, ie *policy.InputError) {
		ex.Subject, ex.Record, ex.Decision, ex.Dead = subject, rec, d, ie
	}
	defer func() { p.cfg.Linker, p.observe = linker, nil }()
	res, err := p.Process(ctx, []kafka.Message{msg})
	if err != nil {
		return nil, err
	}
	ex.Out, ex.Accounting = res.Out, res.Accounting
	return &ex, nil
}
