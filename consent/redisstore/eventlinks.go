package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// LinkRules bound what identify and alias events, which anyone who can
// send events can forge, may do to identity links (LinkEvents). Links
// made through Link (the command line and the consent API) are trusted
// and not bounded.
type LinkRules struct {
	// EventsMayRelink lets an event re-point an anonymous id already
	// linked to a different user. Default: false (the first link stands;
	// only Link re-points).
	EventsMayRelink bool
	// MaxLinkedIDs caps the anonymous ids events may link to one user.
	// Default (0): DefaultMaxLinkedIDs.
	MaxLinkedIDs int
}

// DefaultMaxLinkedIDs is LinkRules.MaxLinkedIDs' default.
const DefaultMaxLinkedIDs = 100

// Results of LinkEvents, per anonymous id.
const (
	LinkLinked        = "linked"
	LinkUnchanged     = "unchanged"
	LinkRefusedRelink = "refused_relink" // already linked to another user
	LinkRefusedCap    = "refused_cap"    // the user has MaxLinkedIDs already
	// LinkRefusedUser: the "anonymous" id is itself a user (ids are linked
	// to it) or the user is itself linked to another: an alias naming a
	// user as its previousId could otherwise hand that user's record and
	// linked ids to whoever sent it.
	LinkRefusedUser = "refused_user"
)

// linkIfScript links one anonymous id to a user only if its link is still
// what was read (compare and set), and announces it. KEYS: link. ARGV:
// channel, anonymous id, user id, expected current user ("" for none).
var linkIfScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`)

// LinkEvents records the links that identify and alias events establish
// (anonymous id → user id) under w.Rules, in two pipelined round trips,
// and returns the result of each anonymous id: linked, unchanged, or
// refused (refused_relink, refused_cap), which links nothing. A link that
// changed between the read and the write is refused as a relink. An error
// means some links may be missing: retrying is safe.
func (w *Updater) LinkEvents(ctx context.Context, links map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(links))
	type cand struct {
		anon, user string
		cur        *redis.StringCmd
		n          *redis.IntCmd
		anonUsers  *redis.IntCmd    // ids linked to anon
		userLink   *redis.StringCmd // user's own link
	}
	var cs []cand
	pipe := w.rdb.Pipeline()
	for anon, user := range links {
		if anon == "" || user == "" || anon == user {
			continue
		}
		cs = append(cs, cand{anon: anon, user: user, cur: pipe.Get(ctx, LinkKey(w.prefix, anon)), n: pipe.SCard(ctx, LinkedIDsKey(w.prefix, user)),
			anonUsers: pipe.SCard(ctx, LinkedIDsKey(w.prefix, anon)), userLink: pipe.Get(ctx, LinkKey(w.prefix, user))})
	}
	if len(cs) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
		return nil, fmt.Errorf("reading identity links: %w", err)
	}
	limit := w.Rules.MaxLinkedIDs
	if limit <= 0 {
		limit = DefaultMaxLinkedIDs
	}
	added := map[string]int64{} // links granted per user in this call
	type write struct {
		anon, user, was string
		cmd             *redis.Cmd
	}
	var ws []write
	pipe = w.rdb.Pipeline()
	ch := InvalidationChannel(w.prefix)
	for _, c := range cs {
		cur := c.cur.Val()
		switch {
		case cur == c.user:
			out[c.anon] = LinkUnchanged
			continue
		case c.anonUsers.Val() > 0 || c.userLink.Val() != "":
			out[c.anon] = LinkRefusedUser
			continue
		case cur != "" && !w.Rules.EventsMayRelink:
			out[c.anon] = LinkRefusedRelink
			continue
		case c.n.Val()+added[c.user] >= int64(limit):
			out[c.anon] = LinkRefusedCap
			continue
		}
		added[c.user]++
		pipe.SAdd(ctx, LinkedIDsKey(w.prefix, c.user), c.anon)
		ws = append(ws, write{c.anon, c.user, cur, linkIfScript.Eval(ctx, pipe, []string{LinkKey(w.prefix, c.anon)}, ch, c.anon, c.user, cur)})
	}
	if len(ws) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("writing identity links: %w", err)
	}
	stale := w.rdb.Pipeline()
	nStale := 0
	for _, x := range ws {
		if v, _ := x.cmd.Int(); v == 1 {
			out[x.anon] = LinkLinked
			if x.was != "" {
				stale.SRem(ctx, LinkedIDsKey(w.prefix, x.was), x.anon) // re-pointed: no longer the old user's
				nStale++
			}
		} else {
			out[x.anon] = LinkRefusedRelink
		}
	}
	if nStale > 0 {
		if _, err := stale.Exec(ctx); err != nil {
			return nil, fmt.Errorf("updating identity indexes: %w", err)
		}
	}
	return out, nil
}
