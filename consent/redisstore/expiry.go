package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
)

// ExpiryIndexKey is the sorted set of subjects whose record has an
// "_exp" (score: the expiry, Unix ms). It is one key for all subjects, so
// it is written in its own call, never inside a subject's script; the
// Sweeper tolerates entries that are stale or missing records.
func ExpiryIndexKey(prefix string) string { return prefix + "x:{_expiring}" }

// indexExpiry records subject's expiry in the index (before the record is
// written, so that a record with an _exp is never missing from it).
func (w *Updater) indexExpiry(ctx context.Context, subject string, expMS string) error {
	ms, _ := strconv.ParseInt(expMS, 10, 64)
	if err := w.rdb.ZAdd(ctx, ExpiryIndexKey(w.prefix), redis.Z{Score: float64(ms), Member: subject}).Err(); err != nil {
		return fmt.Errorf("indexing the expiry: %w", err)
	}
	return nil
}

// deleteExpiredScript deletes a record only if its _exp is still the one
// that expired, and announces it. KEYS: record. ARGV: exp, channel,
// subject.
var deleteExpiredScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '_exp') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// Sweeper finds records whose "_exp" has passed, has Expire retract
// them, then deletes them. Run it on every instance: a subject swept
// twice is retracted twice, which is harmless.
type Sweeper struct {
	rdb    redis.UniversalClient
	prefix string
	// Batch bounds the subjects handled per sweep. Default: 100.
	Batch int
	// Expire is called with the record as it was before it expired; it
	// must return only once the retractions are written.
	Expire func(ctx context.Context, subject string, rec consent.Record) error
	Log    *zap.Logger
	// Outage receives failed and successful sweeps. Default: a Tracker of
	// its own, on Log.
	Outage *outage.Tracker
	// Backoff spaces the sweeps after failures (doubling from Min up to
	// Max, with jitter); a sweep that succeeds waits the interval of Run.
	// Default: retry's (100ms to 5s).
	Backoff retry.Backoff
}

// NewSweeper returns a Sweeper for prefix.
func NewSweeper(rdb redis.UniversalClient, prefix string, expire func(ctx context.Context, subject string, rec consent.Record) error, log *zap.Logger) *Sweeper {
	return &Sweeper{rdb: rdb, prefix: prefix, Batch: 100, Expire: expire, Log: log}
}

// SweepInterval is how often each instance looks for expired records.
const SweepInterval = 500 * time.Millisecond

// Run sweeps every interval until ctx ends. After a failed sweep it waits
// the longer of interval and the backoff, and reports each failure to
// Outage rather than logging it.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	loop := outage.OrNew(s.Outage, "Redis", "", s.Log).Loop("expiry sweeper", "expired consent is retracted once Redis is back")
	defer loop.Close()
	failures := 0
	for {
		wait := interval
		if _, err := s.Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			loop.Failed(err)
			failures++
			wait = max(interval, s.Backoff.Delay(failures))
		} else if err == nil {
			loop.OK()
			failures = 0
		}
		if retry.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// Sweep handles up to Batch subjects whose indexed expiry is not after
// now and returns how many records it expired.
func (s *Sweeper) Sweep(ctx context.Context, now time.Time) (int, error) {
	idx := ExpiryIndexKey(s.prefix)
	subjects, err := s.rdb.ZRangeByScore(ctx, idx, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(s.Batch)}).Result()
	if err != nil {
		return 0, fmt.Errorf("reading the expiry index: %w", err)
	}
	n := 0
	for _, subj := range subjects {
		fields, err := s.rdb.HGetAll(ctx, RecordKey(s.prefix, subj)).Result()
		if err != nil && !errors.Is(err, redis.Nil) && !keyError(err) {
			return n, fmt.Errorf("reading an expiring record: %w", err)
		}
		rec, derr := Decode(fields, time.Time{}) // as it was before it expired
		exp, hasExp, _ := Expiry(fields)
		switch {
		case derr != nil || !rec.Found || !hasExp:
			// Gone, rewritten without an expiry, or unreadable: not ours.
		case now.Before(exp):
			// Rewritten with a later expiry: index it there.
			s.rdb.ZAdd(ctx, idx, redis.Z{Score: float64(exp.UnixMilli()), Member: subj})
			continue
		default:
			if err := s.Expire(ctx, subj, rec); err != nil {
				return n, err
			}
			if err := deleteExpiredScript.Run(ctx, s.rdb, []string{RecordKey(s.prefix, subj)}, fields[ExpiresField], InvalidationChannel(s.prefix), subj).Err(); err != nil {
				return n, fmt.Errorf("deleting an expired record: %w", err)
			}
			n++
		}
		s.rdb.ZRem(ctx, idx, subj)
	}
	return n, nil
}
