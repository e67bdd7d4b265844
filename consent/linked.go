package consent

import "context"

// Linked is a Store decorator that applies identity links: a subject
// whose record says it is linked to a user (LinkedTo) is answered with the
// strictest of its own record and the user's (Strictest), so a user's
// revocation reaches the anonymous sessions identified as them. The users
// are resolved in one further call to the inner store, only for the links
// the first answer revealed. The answer keeps LinkedTo, so callers can
// watch the user's changes too.
type Linked struct {
	Store Store
}

// Lookup implements Store.
func (l Linked) Lookup(ctx context.Context, subjects []string) (map[string]Record, error) {
	recs, err := l.Store.Lookup(ctx, subjects)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, r := range recs {
		if r.LinkedTo != "" {
			if _, have := recs[r.LinkedTo]; !have {
				users = append(users, r.LinkedTo)
			}
		}
	}
	var more map[string]Record
	if len(users) > 0 {
		if more, err = l.Store.Lookup(ctx, users); err != nil {
			return nil, err
		}
	}
	// The store's answer is the caller's own (Store): linked records are
	// replaced in it, once every one is combined from the records as read.
	type combined struct {
		subject string
		rec     Record
	}
	var changes []combined
	for s, r := range recs {
		if r.LinkedTo != "" {
			u, ok := recs[r.LinkedTo]
			if !ok {
				u = more[r.LinkedTo]
			}
			changes = append(changes, combined{s, Strictest(r, u)})
		}
	}
	for _, c := range changes {
		recs[c.subject] = c.rec
	}
	return recs, nil
}
