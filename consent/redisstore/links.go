package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Identity links, both ways, and what erasure and export do with them.
//
// An anonymous id's link is the string LinkKey(anon) holding the user id
// it was identified as; the user's reverse index is the set
// LinkedIDsKey(user) of anonymous ids linked to it. The two live under
// different hash tags, so no script touches both: the reverse entry is
// written in its own call, before the link, in the same pipeline. The
// index is therefore a superset hint: an entry whose link now points
// elsewhere (relinked) is stale and skipped, and an entry can only be
// missing for a link written before the index existed (or when the
// pipeline failed half-way, in which case Link returned an error and the
// caller retries it).

// LinkedIDsKey is the set of anonymous ids linked to user:
// "<prefix>u:{<user>}", hash-tagged on the user like its record.
func LinkedIDsKey(prefix, user string) string { return prefix + "u:{" + user + "}" }

// linkScript links one anonymous id to a user id and announces it, unless
// the link is already there. KEYS: link. ARGV: channel, anonymous id, user
// id. One key per call: cluster-safe.
var linkScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return 1
`)

// Link records that each anonymous id (key) was identified as a user id
// (value), with the user's reverse index entry, in one pipelined round
// trip (one call per key, so that it works on a cluster); every consentd
// drops the anonymous ids from its cache. Unchanged links are not
// announced again. An error means some links may be missing: retrying is
// safe.
func (w *Updater) Link(ctx context.Context, links map[string]string) error {
	pipe := w.rdb.Pipeline()
	n := 0
	for anon, user := range links {
		if anon == "" || user == "" || anon == user {
			continue
		}
		pipe.SAdd(ctx, LinkedIDsKey(w.prefix, user), anon)
		linkScript.Eval(ctx, pipe, []string{LinkKey(w.prefix, anon)}, InvalidationChannel(w.prefix), anon, user)
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("writing identity links: %w", err)
	}
	return nil
}

// LinkedIDs returns the anonymous ids whose link points to user now,
// sorted; stale index entries are left out.
func (w *Updater) LinkedIDs(ctx context.Context, user string) ([]string, error) {
	members, err := w.rdb.SMembers(ctx, LinkedIDsKey(w.prefix, user)).Result()
	if err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
		return nil, fmt.Errorf("reading linked ids: %w", err)
	}
	return w.verifyLinks(ctx, user, members)
}

// verifyLinks keeps the anonymous ids whose link points to user.
func (w *Updater) verifyLinks(ctx context.Context, user string, anons []string) ([]string, error) {
	if len(anons) == 0 {
		return []string{}, nil
	}
	pipe := w.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(anons))
	for i, a := range anons {
		gets[i] = pipe.Get(ctx, LinkKey(w.prefix, a))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
		return nil, fmt.Errorf("reading identity links: %w", err)
	}
	out := []string{}
	for i, a := range anons {
		if gets[i].Val() == user && a != user {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

// markErased is Lua that records an erasure in the marker KEYS[4]: the
// highest version erased (the record KEYS[1]'s, before it is deleted) and
// the latest erasure time ARGV[3] (ms), kept ARGV[4] ms.
const markErased = `
local rv = redis.pcall('HGET', KEYS[1], '_v')
if type(rv) ~= 'string' then rv = '0' end
local old = redis.pcall('HMGET', KEYS[4], 'v', 't')
if type(old) ~= 'table' or old.err then old = {}; redis.call('DEL', KEYS[4]) end
local ev = math.max(tonumber(rv) or 0, tonumber(old[1] or '0') or 0)
local et = math.max(tonumber(ARGV[3]), tonumber(old[2] or '0') or 0)
redis.call('HSET', KEYS[4], 'v', string.format('%d', ev), 't', string.format('%d', et))
redis.call('PEXPIRE', KEYS[4], ARGV[4])
`

// eraseScript deletes a subject's record, its own identity link and its
// reverse index, leaves an erasure marker (markErased), and announces it.
// It returns {existed, linked-to user or "", indexed anonymous id...}.
// Values of the wrong type are deleted too. KEYS: record, link, linked
// ids, erasure marker (one hash tag). ARGV: channel, subject, erased at
// (ms), marker lifetime (ms).
var eraseScript = redis.NewScript(`
if ARGV[5] ~= '' then
  local cur = redis.pcall('HGET', KEYS[1], '_v')
  if type(cur) == 'string' and tonumber(cur) and tonumber(cur) > tonumber(ARGV[5]) then return {-1} end
end
` + markErased + `
local n = redis.call('DEL', KEYS[1])
local to = redis.pcall('GET', KEYS[2])
if type(to) ~= 'string' then to = '' end
local ids = redis.pcall('SMEMBERS', KEYS[3])
if type(ids) ~= 'table' or ids.err then ids = {} end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[1], ARGV[2])
local out = {n, to}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
`)

// unlinkScript erases an anonymous id linked to an erased user: its link,
// record and reverse index, leaving an erasure marker, only if the link
// still points to the user (else the index entry was stale and nothing is
// touched), and announces it. KEYS: record, link, linked ids, erasure
// marker (one hash tag). ARGV: user, channel, erased at (ms), marker
// lifetime (ms), anonymous id.
var unlinkScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
` + markErased + `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[2], ARGV[5])
return 1
`)

// ErrNewerRecord is Erase's answer when unlessNewer is set and the stored
// record's version is after the erasure time: nothing was done. It has a
// method NewerRecord() bool returning true (changes.IsNewerRecord).
var ErrNewerRecord error = newerRecordError{}

type newerRecordError struct{}

func (newerRecordError) Error() string     { return "the record is newer than the erasure" }
func (newerRecordError) NewerRecord() bool { return true }

// Erase deletes everything stored for subject: its record (with its grant
// times and expiry), its identity link and its entry in the linked user's
// index, its expiry index entry, and every anonymous id linked to it with
// that id's own link, record and index entries. Each of them keeps an
// erasure marker (ErasedKey) for ErasureRetention: the highest version
// erased and the erasure time at (zero: now), which Put honours, so that a
// replayed or reordered change older than the erasure never re-grants.
// With unlessNewer, a record whose version is after at is left alone
// (ErrNewerRecord): consent given again after an erasure recorded at at.
// existed reports whether subject had a record; linked are the anonymous
// ids erased with it, sorted.
func (w *Updater) Erase(ctx context.Context, subject string, at time.Time, unlessNewer bool) (existed bool, linked []string, err error) {
	ch := InvalidationChannel(w.prefix)
	guard := ""
	if unlessNewer && !at.IsZero() {
		guard = strconv.FormatInt(at.UnixMilli(), 10)
	}
	if at.IsZero() {
		at = w.now()
	}
	atMS, ttl := at.UnixMilli(), w.erasureTTL()
	res, err := eraseScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject), LinkKey(w.prefix, subject), LinkedIDsKey(w.prefix, subject), ErasedKey(w.prefix, subject)}, ch, subject, atMS, ttl, guard).Slice()
	if err != nil {
		return false, nil, fmt.Errorf("erasing consent: %w", err)
	}
	if len(res) == 1 {
		return false, nil, ErrNewerRecord
	}
	if len(res) < 2 {
		return false, nil, fmt.Errorf("erasing consent: unexpected answer %v", res)
	}
	n, _ := res[0].(int64)
	linkedTo, _ := res[1].(string)
	var indexed []string
	for _, v := range res[2:] {
		if s, ok := v.(string); ok && s != subject {
			indexed = append(indexed, s)
		}
	}
	pipe := w.rdb.Pipeline()
	unlinks := make([]*redis.Cmd, len(indexed))
	for i, a := range indexed {
		unlinks[i] = unlinkScript.Eval(ctx, pipe, []string{RecordKey(w.prefix, a), LinkKey(w.prefix, a), LinkedIDsKey(w.prefix, a), ErasedKey(w.prefix, a)}, subject, ch, atMS, ttl, a)
	}
	if linkedTo != "" {
		pipe.SRem(ctx, LinkedIDsKey(w.prefix, linkedTo), subject)
	}
	pipe.ZRem(ctx, ExpiryIndexKey(w.prefix), append([]any{subject}, anySlice(indexed)...)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return n > 0, nil, fmt.Errorf("erasing linked ids: %w", err)
	}
	linked = []string{}
	for i, a := range indexed {
		if v, _ := unlinks[i].Int(); v == 1 {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	return n > 0, linked, nil
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Stored is everything Redis holds about one subject's consent.
type Stored struct {
	Key    string            `json:"redis_key"`
	Fields map[string]string `json:"fields"`
	// LinkedTo is the user id this (anonymous) subject is linked to.
	LinkedTo string `json:"linked_to,omitempty"`
	// LinkedIDs are the anonymous ids linked to this subject (as a user).
	LinkedIDs []string `json:"linked_anonymous_ids"`
	// TTL is the key's Redis expiry; -1 when none, -2 when the key does
	// not exist.
	TTLSeconds int64 `json:"ttl_seconds"`
	// KeyExpiry says TTLSeconds in words: KeyExpiryNone, KeyExpiryNoKey,
	// or when Redis drops the key (RFC 3339, UTC). The consent's own
	// expiry is ExpiryIndexedAt.
	KeyExpiry string `json:"redis_key_expiry"`
	// KeyExpiresIn is the time left until KeyExpiry when it is a time
	// ("71h59m59s").
	KeyExpiresIn string `json:"redis_key_expires_in,omitempty"`
	// ExpiryIndexed is the subject's score in the expiry index (Unix ms),
	// if it has an entry there; ExpiryIndexedAt is the same time in
	// RFC 3339 (UTC).
	ExpiryIndexed   int64  `json:"expiry_index_ms,omitempty"`
	ExpiryIndexedAt string `json:"expiry_index_at,omitempty"`
	// ErasureMarker is the subject's erasure marker, if it was erased
	// within consent.erasure_retention: "v", the highest version erased,
	// and "t", when (Unix ms).
	ErasureMarker map[string]string `json:"erasure_marker,omitempty"`
}

// Stored.KeyExpiry of a record key without a Redis expiry, and of a key
// that does not exist.
const (
	KeyExpiryNone  = "none (kept until changed or erased)"
	KeyExpiryNoKey = "no key (never stored, or erased)"
)

// Read returns the raw record of subject, its identity links both ways
// and its expiry index entry.
func (w *Updater) Read(ctx context.Context, subject string) (Stored, error) {
	key := RecordKey(w.prefix, subject)
	pipe := w.rdb.Pipeline()
	fields := pipe.HGetAll(ctx, key)
	ttl := pipe.TTL(ctx, key)
	link := pipe.Get(ctx, LinkKey(w.prefix, subject))
	members := pipe.SMembers(ctx, LinkedIDsKey(w.prefix, subject))
	exp := pipe.ZScore(ctx, ExpiryIndexKey(w.prefix), subject)
	erased := pipe.HGetAll(ctx, ErasedKey(w.prefix, subject))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
		return Stored{}, fmt.Errorf("reading consent: %w", err)
	}
	linked, err := w.verifyLinks(ctx, subject, members.Val())
	if err != nil {
		return Stored{}, err
	}
	st := Stored{Key: key, Fields: fields.Val(), TTLSeconds: -2, LinkedTo: link.Val(), LinkedIDs: linked, ExpiryIndexed: int64(exp.Val())}
	if m := erased.Val(); len(m) > 0 {
		st.ErasureMarker = m
	}
	now := w.now()
	st.KeyExpiry = KeyExpiryNoKey
	if d := ttl.Val(); d >= 0 {
		st.TTLSeconds = int64(d / time.Second)
		st.KeyExpiry = now.Add(d).UTC().Format(time.RFC3339)
		st.KeyExpiresIn = d.Round(time.Second).String()
	} else if len(st.Fields) > 0 {
		st.TTLSeconds = -1
		st.KeyExpiry = KeyExpiryNone
	}
	if st.ExpiryIndexed != 0 {
		st.ExpiryIndexedAt = time.UnixMilli(st.ExpiryIndexed).UTC().Format(time.RFC3339Nano)
	}
	return st, nil
}
