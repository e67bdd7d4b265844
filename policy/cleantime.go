package policy

import "time"

// CleanTime returns the Kafka timestamp for the clean message of this
// output, given the raw message's timestamp.
//
// The record timestamp is event data too: left raw, it would undo
// truncate_time on the body (the raw record time is usually the moment the
// tracker sent the event). When the output truncates any time field, the
// record time is truncated, in UTC, to the coarsest unit its truncate_time
// transforms use (an output that truncates timestamp to the hour and
// sentAt to the day gets day-truncated record times), so the record is
// never more precise than any time field in the body. An output without
// truncate_time keeps the raw record time: the policy does not coarsen
// time for it, and Compile warns about it (Policy.Warnings). A zero time stays zero (the producer then stamps it).
func (od *OutputDecision) CleanTime(raw time.Time) time.Time {
	if od.Output == nil {
		return raw
	}
	return od.Output.CleanTime(raw)
}

// CleanTime is OutputDecision.CleanTime for this output.
func (o *Output) CleanTime(raw time.Time) time.Time {
	if o.recordUnit == 0 || raw.IsZero() {
		return raw
	}
	return raw.UTC().Truncate(o.recordUnit)
}
