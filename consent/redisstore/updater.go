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
// stored one and than the subject's erasure marker, and it was recorded
// after the erasure, then announces the change. KEYS: record, erasure
// marker. ARGV: version, expires (ms or ""), channel, subject, granted-at
// (ms), recorded (ms or ""), purpose, value, ...
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], '_v')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
local ev = redis.call('HMGET', KEYS[2], 'v', 't')
if ev[1] and tonumber(ev[1]) >= tonumber(ARGV[1]) then return 2 end
if ev[2] and ARGV[6] ~= '' and tonumber(ev[2]) >= tonumber(ARGV[6]) then return 2 end
local old = redis.call('HGETALL', KEYS[1])
local prev = {}
for i = 1, #old, 2 do prev[old[i]] = old[i + 1] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_v', ARGV[1])
for i = 7, #ARGV, 2 do
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
// max(stored+1, erased+1, ARGV[1]), then announces the change. A purpose
// newly granted gets ARGV[1] as its grant time. KEYS: record, erasure
// marker. ARGV: now (ms), channel, subject, purpose, value, ...
var patchScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], '_v') or '0')
local erased = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local v = math.max(cur + 1, erased + 1, tonumber(ARGV[1]))
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

// Updater changes consent records atomically (one Lua script per change)
// and monotonically: an update older than, or as old as, the stored record
// is ignored, so replayed or reordered updates never roll consent back.
// Every change is announced on InvalidationChannel so that every consentd
// instance drops the subject from its local cache at once.
type Updater struct {
	rdb    redis.Cmdable
	prefix string
	now    func() time.Time
	// ErasureRetention is how long an erasure marker is kept (see Erase).
	// Default: DefaultErasureRetention.
	ErasureRetention time.Duration
	// Rules bound the links events make (LinkEvents).
	Rules LinkRules
}

// DefaultErasureRetention is Updater.ErasureRetention's default.
const DefaultErasureRetention = 30 * 24 * time.Hour

// ErasedKey is where an erased subject's marker is kept: a hash with "v",
// the highest version erased, and "t", when (Unix ms). Same hash tag as
// the record, so one script sees both on a cluster.
func ErasedKey(prefix, subject string) string { return prefix + "e:{" + subject + "}" }

func (w *Updater) erasureTTL() int64 {
	if w.ErasureRetention > 0 {
		return w.ErasureRetention.Milliseconds()
	}
	return DefaultErasureRetention.Milliseconds()
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
// stored, or when the subject was erased (while its marker lasts) at a
// version as new, or after recorded (when the change was recorded, e.g.
// its consent-topic record time; zero: not known), so that no replayed or
// reordered change older than an erasure re-grants.
func (w *Updater) Put(ctx context.Context, subject string, version int64, purposes map[string]bool, expires, grantedAt, recorded time.Time) (applied bool, err error) {
	exp := ""
	if !expires.IsZero() {
		exp = strconv.FormatInt(expires.UnixMilli(), 10)
	}
	if grantedAt.IsZero() {
		grantedAt = w.now()
	}
	rec := ""
	if !recorded.IsZero() {
		rec = strconv.FormatInt(recorded.UnixMilli(), 10)
	}
	args, err := purposeArgs([]any{version, exp, InvalidationChannel(w.prefix), subject, grantedAt.UnixMilli(), rec}, purposes)
	if err != nil {
		return false, err
	}
	if exp != "" {
		if err := w.indexExpiry(ctx, subject, exp); err != nil {
			return false, err
		}
	}
	n, err := putScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject), ErasedKey(w.prefix, subject)}, args...).Int()
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
	v, err := patchScript.Run(ctx, w.rdb, []string{RecordKey(w.prefix, subject), ErasedKey(w.prefix, subject)}, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("writing consent: %w", err)
	}
	return v, nil
}
