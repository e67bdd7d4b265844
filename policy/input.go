package policy

import (
	"fmt"

	"github.com/consentd/consentd/event"
)

// CheckSize returns the too_large input error when an event of n bytes
// exceeds limit, nil otherwise.
func CheckSize(n, limit int) *InputError {
	if n <= limit {
		return nil
	}
	return &InputError{Reason: ReasonTooLarge, Err: fmt.Errorf("event of %d bytes exceeds max_message_bytes %d", n, limit)}
}

// ParseEvent checks the size of value and parses it into doc: the first
// stage of every decision. It returns the input error that dead-letters
// the event, or nil.
func ParseEvent(doc *event.Doc, value []byte, limit int) *InputError {
	if ie := CheckSize(len(value), limit); ie != nil {
		return ie
	}
	if err := doc.Parse(value); err != nil {
		return ParseError(err)
	}
	return nil
}

var (
	pathUserID      = event.MustPath("userId")
	pathAnonymousID = event.MustPath("anonymousId")
	pathPreviousID  = event.MustPath("previousId")
)

// IdentityLink returns the link an identify event (anonymousId → userId)
// or an alias event (previousId → userId) establishes; ok is false for
// any other event, or when either id is missing, empty, not a string or
// the same as the other.
func IdentityLink(doc *event.Doc) (anonymousID, userID string, ok bool) {
	typ, _, err := doc.GetString(pathType)
	if err != nil || (typ != "identify" && typ != "alias") {
		return "", "", false
	}
	from := pathAnonymousID
	if typ == "alias" {
		from = pathPreviousID
	}
	user, ok1, err1 := doc.GetString(pathUserID)
	anon, ok2, err2 := doc.GetString(from)
	if err1 != nil || err2 != nil || !ok1 || !ok2 || user == "" || anon == "" || user == anon {
		return "", "", false
	}
	return anon, user, true
}

// DropReason is the reason an event written to no output is counted
// under: the first output's reason, unless that is "filtered" and a later
// output was skipped for another reason (a consent denial explains a drop
// better than a filter). "" when the event is written somewhere.
func (d *Decision) DropReason() string {
	reason := ""
	for i := range d.Outputs {
		od := &d.Outputs[i]
		if od.Write {
			return ""
		}
		if reason == "" || (reason == ReasonFiltered && od.Reason != ReasonFiltered) {
			reason = od.Reason
		}
	}
	return reason
}
