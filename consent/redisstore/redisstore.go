// Package redisstore is the one place consentd touches Redis: Store
// answers consent lookups (one pipelined round trip per batch), Updater
// makes changes atomically with Lua scripts and announces them,
// WatchInvalidations keeps every instance's cache current.
//
// It also holds the revocation barrier's registry (barrier.go: leases,
// fences, confirmations as Lua scripts and a channel; the protocol is
// package barrier's) and the expiry index and sweeper (expiry.go).
//
// Schema: one hash "<prefix>r:{<subject>}" per subject (RecordKey) with one
// field per purpose ("1" granted), "_v" (version), optional "_exp"
// (expiry, Unix ms) and "_t:<purpose>" (grant times); identity links are
// strings "<prefix>l:{<anonymous id>}" (LinkKey) with the reverse set
// "<prefix>u:{<user id>}"; changes are announced on the channel
// "<prefix>_invalidate". See the README.
//
// Must not import Kafka, Prometheus, the barrier protocol or the policy.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/hooks"
)

// Hook interfaces a Store calls (see internal/lib/hooks). Calls come
// from any goroutine and must return quickly.
type (
	// RoundTripHook is told about each pipelined lookup: its duration and
	// its error (nil on success).
	RoundTripHook interface {
		OnRoundTrip(elapsed time.Duration, err error)
	}
	// InvalidRecordHook is told about each stored record that could not
	// be read and was treated as no consent.
	InvalidRecordHook interface{ OnInvalidRecord() }
)

// Defaults of a Store (configuration: redis.key_prefix, redis.timeout).
const (
	DefaultKeyPrefix = "consent:"
	DefaultTimeout   = 500 * time.Millisecond
)

// VersionField is the hash field holding the record's version.
const VersionField = "_v"

// Store looks consent up in Redis, one pipelined round trip per Lookup.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	hooks   hooks.List
}

// New returns a Store using rdb. prefix is prepended to subjects to form
// keys (normally "consent:"); timeout bounds one lookup. hs may be nil.
func New(rdb redis.UniversalClient, prefix string, timeout time.Duration, hs hooks.List) *Store {
	return &Store{rdb: rdb, prefix: prefix, timeout: timeout, hooks: hs}
}

// Lookup implements consent.Store: HGETALL for every distinct subject,
// pipelined in one round trip.
func (s *Store) Lookup(ctx context.Context, subjects []string) (map[string]consent.Record, error) {
	if len(subjects) == 0 {
		return map[string]consent.Record{}, nil
	}
	subjects = distinct(subjects)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(subjects))
	links := make([]*redis.StringCmd, len(subjects))
	for i, subj := range subjects {
		cmds[i] = pipe.HGetAll(ctx, RecordKey(s.prefix, subj))
		links[i] = pipe.Get(ctx, LinkKey(s.prefix, subj))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
		hooks.Each(s.hooks, func(h RoundTripHook) { h.OnRoundTrip(time.Since(start), err) })
		return nil, fmt.Errorf("consent lookup of %d subjects: %w", len(subjects), err)
	}
	hooks.Each(s.hooks, func(h RoundTripHook) { h.OnRoundTrip(time.Since(start), nil) })
	out := make(map[string]consent.Record, len(subjects))
	now := time.Now()
	for i, subj := range subjects {
		fields, err := cmds[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
			return nil, fmt.Errorf("consent lookup: %w", err)
		}
		rec, derr := Decode(fields, now)
		if err != nil || derr != nil {
			// Fail closed for this subject only: an unreadable record
			// (or a key of the wrong type) grants nothing, and the
			// pipeline goes on.
			hooks.Each(s.hooks, InvalidRecordHook.OnInvalidRecord)
			rec = consent.Record{}
		}
		if user, err := links[i].Result(); err == nil {
			rec.LinkedTo = user
		} else if keyError(err) {
			hooks.Each(s.hooks, InvalidRecordHook.OnInvalidRecord) // a link of the wrong type links nothing
		} else if !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("consent lookup: %w", err)
		}
		out[subj] = rec
	}
	return out, nil
}

// keyError reports an error about one key's content (a value of the wrong
// type), as opposed to the store failing as a whole (connection, timeout,
// authentication, loading, cluster down): the former denies one subject,
// the latter holds the batch.
func keyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

// RecordKey is where subject's consent hash is stored:
// "<prefix>r:{<subject>}". The kind ("r:") comes before any byte a subject
// controls, so no subject value can address another kind of key; the
// braces make the subject a Redis Cluster hash tag, so every key of one
// subject lives in one slot.
func RecordKey(prefix, subject string) string { return prefix + "r:{" + subject + "}" }

// LinkKey is where the identity link of an anonymous id is stored, a
// string holding the user id it was identified as:
// "<prefix>l:{<anonymous id>}".
func LinkKey(prefix, anonymousID string) string { return prefix + "l:{" + anonymousID + "}" }

func distinct(subjects []string) []string {
	seen := make(map[string]struct{}, len(subjects))
	out := subjects[:0:0]
	for _, s := range subjects {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// Decode interprets a consent hash at time now. An empty hash, or one
// whose "_exp" has passed, is "no record". A missing or non-integer "_v"
// (or "_exp") is consent.ErrInvalidRecord.
func Decode(fields map[string]string, now time.Time) (consent.Record, error) {
	if len(fields) == 0 {
		return consent.Record{}, nil
	}
	exp, hasExp, err := Expiry(fields)
	if err != nil {
		return consent.Record{}, err
	}
	if hasExp && !now.Before(exp) {
		return consent.Record{}, nil
	}
	vs, ok := fields[VersionField]
	if !ok {
		return consent.Record{}, fmt.Errorf("%w: no %s field", consent.ErrInvalidRecord, VersionField)
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || v < 0 {
		return consent.Record{}, fmt.Errorf("%w: %s is not a non-negative integer", consent.ErrInvalidRecord, VersionField)
	}
	rec := consent.Record{Found: true, Version: v, Granted: make(map[string]bool, len(fields)-1)}
	if hasExp {
		rec.Expires = exp
	}
	for k, val := range fields {
		if strings.HasPrefix(k, GrantedAtPrefix) {
			if ms, err := strconv.ParseInt(val, 10, 64); err == nil {
				if rec.GrantedAt == nil {
					rec.GrantedAt = map[string]int64{}
				}
				rec.GrantedAt[k[len(GrantedAtPrefix):]] = ms
			}
			continue
		}
		if strings.HasPrefix(k, "_") {
			continue
		}
		if val == "1" {
			rec.Granted[k] = true
		}
	}
	return rec, nil
}

// Expiry returns the record's "_exp" as a time; ok is false when it has
// none. A non-integer "_exp" is consent.ErrInvalidRecord.
func Expiry(fields map[string]string) (exp time.Time, ok bool, err error) {
	es, ok := fields[ExpiresField]
	if !ok {
		return time.Time{}, false, nil
	}
	ms, err := strconv.ParseInt(es, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%w: %s is not an integer", consent.ErrInvalidRecord, ExpiresField)
	}
	return time.UnixMilli(ms), true, nil
}

// Put writes a full record for subject (used by tests, the demo and
// tools): purposes listed map to "1"/"0", plus "_v". Keys not listed are
// removed.
func Put(ctx context.Context, rdb redis.Cmdable, prefix, subject string, version int64, purposes map[string]bool) error {
	fields := make([]any, 0, 2+2*len(purposes))
	fields = append(fields, VersionField, version)
	for p, ok := range purposes {
		v := "0"
		if ok {
			v = "1"
		}
		fields = append(fields, p, v)
	}
	key := RecordKey(prefix, subject)
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, fields...)
		return nil
	})
	return err
}

// Ping checks that the store answers within its timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("consent store does not answer: %w", err)
	}
	return nil
}
