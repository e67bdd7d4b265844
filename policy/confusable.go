package policy

import "github.com/consentd/consentd/event"

// Keys that dodge paths. A policy matches keys exactly, byte for byte
// after unescaping. A tracker (or an attacker) that writes "UserId",
// "context.IP", a fullwidth "ｕｓｅｒＩｄ" or "userId " beside a policy
// naming userId and context.ip would pass the field through a drop_fields
// or pseudonymize, and a consumer that reads keys loosely would take it for
// the field the policy meant. consentd does not guess: such an event is
// dead-lettered with reason confusable_key (see event.FoldKey for the
// folding). Matching loosely instead would make two members match one path
// ("userId" and "UserId": which is the subject?).
//
// The check covers every path the policy reads or edits: subjects, event
// consent signals, filters, timestamps and every transform's fields.

// keyGuard builds the guard over every path p reads or edits.
func (p *Policy) keyGuard() *event.KeyGuard {
	var ps []event.Path
	ps = append(ps, p.Subjects...)
	ps = append(ps, p.GPCPaths...)
	ps = append(ps, pathSegmentConsent, pathRudderConsent, pathType, pathEvent)
	ps = append(ps, eventTimePaths...)
	if p.iab != nil {
		ps = append(ps, p.iab.tcfPaths...)
		ps = append(ps, p.iab.gppPaths...)
		ps = append(ps, p.iab.uspPaths...)
	}
	for _, o := range p.Outputs {
		for _, t := range o.Transforms {
			ps = append(ps, transformPaths(t)...)
		}
	}
	return event.NewKeyGuard(ps)
}

// transformPaths returns the paths a transform names.
func transformPaths(t Transform) []event.Path {
	switch t := t.(type) {
	case *dropFields:
		return t.paths
	case *keepOnly:
		return t.paths
	case *pseudonymize:
		return t.paths
	case *truncateIP:
		return t.paths
	case *roundGeo:
		return t.paths
	case *truncateTime:
		return t.paths
	case interface{ fieldPaths() []event.Path }:
		return t.fieldPaths()
	}
	return nil
}

// CheckKeys returns an *InputError (confusable_key) when a key of doc
// folds to a path segment the policy names without being it. Subject
// calls it, so that every event is checked before it is decided.
func (p *Policy) CheckKeys(doc *event.Doc) error {
	if err := doc.CheckKeys(p.guard); err != nil {
		return inputErr(err)
	}
	return nil
}
