package pipeline

// Accounting is what a processed batch did with every raw message, handed
// to BatchWrittenHook once the batch's writes are acknowledged (so a
// batch abandoned in a rebalance and redelivered is not counted twice).
type Accounting struct {
	Consumed map[string]int // raw topic
	Written  map[string]int // output
	Dropped  map[string]int // reason: events written to no output
	Dead     map[string]int // reason: events dead-lettered
	// Decisions counts output decisions by output, action and reason.
	Decisions map[Decision]int
	// Segments counts, when the policy measures segments, each output's
	// events per segment value and stage (nil: none counted).
	Segments map[SegmentCount]int
	// Contributions are the events the policy's aggregates count (see
	// Contribution), in batch order. Add does not carry them: they are
	// read from each batch's Accounting by the hooks that need them.
	Contributions []Contribution
}

// Contribution is one event an aggregate (policy.Aggregate) counts: an
// event the aggregate's output was eligible for and did not write. It
// holds no subject id, only its keyed hash.
type Contribution struct {
	// Aggregate is the index in Policy.Aggregates.
	Aggregate int
	// Subject is a keyed hash of the event's subject id
	// (ProcessorConfig.AggregateSeed), kept in memory only.
	Subject uint64
	// Group is the event's group: its values at the aggregate's group_by
	// fields (policy.SegmentValue), joined by GroupSep.
	Group string
	// Value is the number at the aggregate's sum field; 0 when it is
	// absent, not a number, or the aggregate has no sum.
	Value float64
	// Excluded, when set, is why the event is not counted
	// (ExcludedKeyNotSubject).
	Excluded string
}

// GroupSep separates the values of Contribution.Group (segment values
// never hold control characters).
const GroupSep = "\x1f"

// ExcludedKeyNotSubject: the event's Kafka key is not its subject id, so
// the subject's events may reach other partitions (and instances), where
// its contributions could not be bounded together.
const ExcludedKeyNotSubject = "key_not_subject"

// Decision labels one per-output decision.
type Decision struct {
	Output string
	Action string // "write" or "skip"
	Reason string // "" when written
}

// NewAccounting returns empty Accounting.
func NewAccounting() Accounting {
	return Accounting{Consumed: map[string]int{}, Written: map[string]int{}, Dropped: map[string]int{}, Dead: map[string]int{}, Decisions: map[Decision]int{}}
}

// Add adds b's counts to a, allocating a's maps as needed.
func (a *Accounting) Add(b *Accounting) {
	if a.Consumed == nil {
		*a = NewAccounting()
	}
	add := func(dst, src map[string]int) {
		for k, v := range src {
			dst[k] += v
		}
	}
	add(a.Consumed, b.Consumed)
	add(a.Written, b.Written)
	add(a.Dropped, b.Dropped)
	add(a.Dead, b.Dead)
	for k, v := range b.Decisions {
		a.Decisions[k] += v
	}
	if len(b.Segments) > 0 && a.Segments == nil {
		a.Segments = map[SegmentCount]int{}
	}
	for k, v := range b.Segments {
		a.Segments[k] += v
	}
}

// Total sums the values of one of Accounting's maps.
func Total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// WriteReport is what the sink could not write as decided: the clean
// messages Kafka refused for good. Each was replaced by the dead letter
// of its raw event (once per raw event).
type WriteReport struct {
	Refused []Refusal
}

// Refusal is one clean message Kafka refused for good.
type Refusal struct {
	// Output is the policy output the message was decided for.
	Output string
	// Reason is the dead-letter reason (ReasonOutputTooLarge, ...).
	Reason string
	// DeadLettered is true for the first refusal of a raw event: the one
	// whose dead letter was written.
	DeadLettered bool
	// Origin is the raw event's index in the batch.
	Origin int
}

// Account returns what a batch did: the decisions of res (the decide
// stage's Accounting) corrected by rep, the refusals of the sink (a
// refused write counts as a skip for that reason, and its raw event as
// dead-lettered once). res is not modified.
func Account(res *Result, rep *WriteReport) *Accounting {
	if rep == nil || len(rep.Refused) == 0 {
		return &res.Accounting
	}
	acc := NewAccounting()
	acc.Add(&res.Accounting)
	acc.Contributions = res.Accounting.Contributions
	for _, r := range rep.Refused {
		acc.Written[r.Output]--
		acc.Decisions[Decision{r.Output, "write", ""}]--
		acc.Decisions[Decision{r.Output, "skip", r.Reason}]++
		res.segments.unwrite(&acc, r.Output, r.Origin)
		if r.DeadLettered {
			acc.Dead[r.Reason]++
		}
	}
	return &acc
}
