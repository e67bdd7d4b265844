package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExpiresField holds a record's expiry as Unix milliseconds; an expired
// record counts as no record.
const ExpiresField = "_exp"

// InvalidationChannel is the pub/sub channel on which every change to a
// record under prefix is announced, with the subject as payload.
func InvalidationChannel(prefix string) string { return prefix + "_invalidate" }

// GrantedAtPrefix prefixes the fields holding, per granted purpose, when
// it was granted (Unix ms): "_t:analytics". A purpose that stays granted
// keeps its grant time.
const GrantedAtPrefix = "_t:"

// putScript replaces a record only if its version is newer than the
// stored one, then announces the change. ARGV: version, expires (ms or ""),
// channel, subject, granted-at (ms), purpose, value, ...
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], '_v')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
local old = redis.call('HGETALL', KEYS[1])
local prev = {}
for i = 1, #old, 2 do prev[old[i]] = old[i + 1] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_v', ARGV[1])
for i = 6, #ARGV, 2 do
  local p, val = ARGV[i], ARGV[i + 1]
  redis.call('HSET', KEYS[1], p, val)
  if val == '1' then
    local t = ARGV[5]
    if prev[p] == '1' and prev['_t:' .. p] then t = prev['_t:' .. p] end
    redis.call('HSET', KEYS[1], '_t:' .. p, t)
  end
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], '_exp', ARGV[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// patchScript sets some purposes and bumps the version to
// max(stored+1, ARGV[1]), then announces the change. A purpose newly
// granted gets ARGV[1] as its grant time. ARGV: now (ms), channel, subject,
// purpose, value, ...
var patchScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], '_v') or '0')
local v = math.max(cur + 1, tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], '_v', string.format('%d', v))
for i = 4, #ARGV, 2 do
  local p, val = ARGV[i], ARGV[i + 1]
  local was = redis.call('HGET', KEYS[1], p)
  redis.call('HSET', KEYS[1], p, val)
  if val == '1' and was ~= '1' then redis.call('HSET', KEYS[1], '_t:' .. p, ARGV[1]) end
  if val ~= '1' then redis.call('HDEL', KEYS[1], '_t:' .. p) end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return v
`)

// eraseScript deletes a record and the subject's identity link, and
// announces it. KEYS: record, link. ARGV: channel, subject.
var eraseScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
`)

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
// (value), in one pipelined round trip (one script per link, so that each
// touches one key and works on a cluster); every consentd drops the
// anonymous ids from its cache. Unchanged links are not announced again.
func (w *Updater) Link(ctx context.Context, links map[string]string) error {
	pipe := w.rdb.Pipeline()
	n := 0
	for anon, user := range links {
		if anon == "" || user == "" || anon == user {
			continue
		}
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

// Updater changes consent records atomically (one Lua script per change)
// and monotonically: an update older than, or as old as, the stored record
// is ignored, so replayed or reordered updates never roll consent back.
// Every change is announced on InvalidationChannel so that every consentd
// instance drops the subject from its local cache at once.
type Updater struct {
	rdb    redis.Cmdable
	prefix string
	now    func() time.Time
}

// NewUpdater returns an Updater for records under prefix.
func NewUpdater(rdb redis.Cmdable, prefix string) *Updater {
	return &Updater{rdb: rdb, prefix: prefix, now: time.Now}
}

// ErrBadPurpose reports a purpose name that cannot be stored.
var ErrBadPurpose = errors.New("invalid purpose name")

func purposeArgs(args []any, purposes map[string]bool) ([]any, error) {
	for p, ok := range purposes {
		if p == "" || p[0] == '_' {
			return nil, fmt.Errorf("%w: %q", ErrBadPurpose, p)
		}
		v := "0"
		if ok {
			v = "1"
		}
		args = append(args, p, v)
	}
	return args, nil
}

// Put replaces subject's record with purposes (purposes not listed are
// denied) if version is newer than the stored one. expires may be zero.
// Purposes granted now and not before get grantedAt as their grant time
// (zero: now). applied is false when a newer or equal version is already
// stored.
func (w *Updater) Put(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, grantedAt time.Time) (applied bool, err error) {
	exp := ""
	if !expires.IsZero() {
		exp = strconv.FormatInt(expires.UnixMilli(), 10)
	}
	if grantedAt.IsZero() {
		grantedAt = w.now()
	}
	args, err := purposeArgs([]any{version, exp, InvalidationChannel(w.prefix), subject, grantedAt.UnixMilli()}, purposes)
	if err != nil {
		return false, err
	}
	if exp != "" {
		if err := w.indexExpiry(ctx, subject, exp); err != nil {
			return false, err
		}
	}
	n, err := putScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject)}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("writing consent: %w", err)
	}
	return n == 1, nil
}

// Patch sets the listed purposes, keeps the others, and gives the record a
// new version: the larger of the stored version plus one and the current
// time in Unix milliseconds. It returns the new version.
func (w *Updater) Patch(ctx context.Context, subject string, purposes map[string]bool) (int64, error) {
	if len(purposes) == 0 {
		return 0, errors.New("patch: no purposes")
	}
	args, err := purposeArgs([]any{w.now().UnixMilli(), InvalidationChannel(w.prefix), subject}, purposes)
	if err != nil {
		return 0, err
	}
	v, err := patchScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject)}, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("writing consent: %w", err)
	}
	return v, nil
}

// Erase deletes subject's record. existed is false when there was none.
func (w *Updater) Erase(ctx context.Context, subject string) (existed bool, err error) {
	n, err := eraseScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject), LinkKey(w.prefix, subject)}, InvalidationChannel(w.prefix), subject).Int()
	if err != nil {
		return false, fmt.Errorf("erasing consent: %w", err)
	}
	return n > 0, nil
}

// Stored is everything Redis holds about one subject's consent.
type Stored struct {
	Key    string            `json:"redis_key"`
	Fields map[string]string `json:"fields"`
	// LinkedTo is the user id this (anonymous) subject is linked to.
	LinkedTo string `json:"linked_to,omitempty"`
	// TTL is the key's Redis expiry; -1 when none, -2 when the key does
	// not exist.
	TTLSeconds int64 `json:"ttl_seconds"`
}

// Read returns the raw record of subject.
func (w *Updater) Read(ctx context.Context, subject string) (Stored, error) {
	key := RecordKey(w.prefix, subject)
	pipe := w.rdb.Pipeline()
	fields := pipe.HGetAll(ctx, key)
	ttl := pipe.TTL(ctx, key)
	link := pipe.Get(ctx, LinkKey(w.prefix, subject))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Stored{}, fmt.Errorf("reading consent: %w", err)
	}
	st := Stored{Key: key, Fields: fields.Val(), TTLSeconds: -2, LinkedTo: link.Val()}
	if d := ttl.Val(); d >= 0 {
		st.TTLSeconds = int64(d / time.Second)
	} else if len(st.Fields) > 0 {
		st.TTLSeconds = -1
	}
	return st, nil
}
