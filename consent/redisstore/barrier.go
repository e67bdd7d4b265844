package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
)

// The revocation barrier's registry in Redis: the primitives that
// package barrier's protocol runs on (barrier.Lease, barrier.Registry).
// A member's lease is its score in the sorted set MembersKey (lease end,
// Redis server time in ms); a barrier is published on BarrierChannel; a
// member confirms by pushing its id onto the barrier's list (AckKey); a
// fenced member is in the set FencedKey, and its lease is not renewed
// until it rejoins. The protocol itself (when to renew, confirm, fence
// and wait) is package barrier's.

// MembersKey is the sorted set of members and their lease ends. Members
// and fences share the hash tag {_members}, so one script sees both on a
// cluster; "m:" keeps it apart from any subject's keys.
func MembersKey(prefix string) string { return prefix + "m:{_members}" }

// FencedKey is the set of fenced members.
func FencedKey(prefix string) string { return prefix + "f:{_members}" }

// AckKey is the list a barrier's confirmations are pushed onto.
func AckKey(prefix, barrierID string) string { return prefix + "b:{" + barrierID + "}" }

// BarrierChannel is where barriers are published.
func BarrierChannel(prefix string) string { return prefix + "_barrier" }

// ackTTL bounds how long a barrier's confirmations stay in Redis.
const ackTTL = time.Minute

// serverNowMS is the Redis server time in ms, inside scripts.
const serverNowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// heartbeatScript renews a member's lease unless it is fenced (-1).
// KEYS: members, fenced. ARGV: id, ttl ms. Returns the lease end.
var heartbeatScript = redis.NewScript(serverNowMS + `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) <= now then return -2 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
return now + tonumber(ARGV[2])
`)

// rejoinScript lifts a member's fence and renews its lease.
var rejoinScript = redis.NewScript(serverNowMS + `
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now + tonumber(ARGV[2])
`)

// liveScript returns the server time and the members whose lease has not
// ended. KEYS: members.
var liveScript = redis.NewScript(serverNowMS + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
table.insert(ids, 1, tostring(now))
return ids
`)

// fenceScript fences members and returns how many ms remain until the
// last of their leases ends (0 when all ended). KEYS: members, fenced.
// ARGV: ids.
var fenceScript = redis.NewScript(serverNowMS + `
local wait = 0
for i = 1, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) - now > wait then wait = tonumber(s) - now end
end
return wait
`)

// BarrierMember is one member's lease in Redis; it implements
// barrier.Lease.
type BarrierMember struct {
	rdb    redis.UniversalClient
	prefix string
	id     string
	ttl    time.Duration
	log    *zap.Logger
	// Outage receives the barrier channel's failures and recoveries, so
	// that an outage is a few lines. Default: a Tracker of its own, on
	// the member's logger.
	Outage *outage.Tracker
}

// NewBarrierMember returns the lease of member id, ttl long. log may be
// nil.
func NewBarrierMember(rdb redis.UniversalClient, prefix, id string, ttl time.Duration, log *zap.Logger) *BarrierMember {
	if log == nil {
		log = zap.NewNop()
	}
	return &BarrierMember{rdb: rdb, prefix: prefix, id: id, ttl: ttl, log: log}
}

// ID is the member's id.
func (m *BarrierMember) ID() string { return m.id }

// TTL implements barrier.Lease.
func (m *BarrierMember) TTL() time.Duration { return m.ttl }

// ErrFenced reports a member that a revoker fenced. It has a method
// Fenced() bool returning true (barrier.IsFenced).
var ErrFenced error = fencedError{}

type fencedError struct{}

func (fencedError) Error() string { return "fenced by a revocation barrier" }
func (fencedError) Fenced() bool  { return true }

// Heartbeat implements barrier.Lease; ErrFenced when the member is fenced.
func (m *BarrierMember) Heartbeat(ctx context.Context) error {
	n, err := heartbeatScript.Run(ctx, m.rdb, []string{MembersKey(m.prefix), FencedKey(m.prefix)}, m.id, m.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("renewing the barrier lease: %w", err)
	}
	switch n {
	case -1:
		return ErrFenced
	case -2:
		return ErrLeaseEnded
	}
	return nil
}

// ErrLeaseEnded reports a renewal that came after the member's lease had
// ended (barrier.IsLapsed): nothing was renewed; the member must catch up
// and rejoin.
var ErrLeaseEnded error = lapsedError{}

type lapsedError struct{}

func (lapsedError) Error() string { return "the barrier lease had ended before this renewal" }
func (lapsedError) Lapsed() bool  { return true }

// Rejoin implements barrier.Lease.
func (m *BarrierMember) Rejoin(ctx context.Context) error {
	if err := rejoinScript.Run(ctx, m.rdb, []string{MembersKey(m.prefix), FencedKey(m.prefix)}, m.id, m.ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("rejoining the barrier: %w", err)
	}
	return nil
}

// Leave implements barrier.Lease.
func (m *BarrierMember) Leave(ctx context.Context) error {
	pipe := m.rdb.Pipeline()
	pipe.ZRem(ctx, MembersKey(m.prefix), m.id)
	pipe.SRem(ctx, FencedKey(m.prefix), m.id)
	_, err := pipe.Exec(ctx)
	return err
}

// Confirm implements barrier.Lease.
func (m *BarrierMember) Confirm(ctx context.Context, barrierID string) error {
	key := AckKey(m.prefix, barrierID)
	pipe := m.rdb.Pipeline()
	pipe.RPush(ctx, key, m.id)
	pipe.PExpire(ctx, key, ackTTL)
	_, err := pipe.Exec(ctx)
	return err
}

// barrierMsg is what BarrierChannel carries.
type barrierMsg struct {
	ID       string   `json:"id"`
	Subjects []string `json:"subjects"`
}

// resubscribeWait is the first pause before subscribing again after the
// channel was lost; it doubles up to maxResubscribeWait (with jitter)
// while the channel stays lost.
const (
	resubscribeWait    = 100 * time.Millisecond
	maxResubscribeWait = 2 * time.Second
)

// Watch implements barrier.Lease: it subscribes to BarrierChannel and
// calls handle for each barrier, in its own goroutine, until ctx ends.
// While the channel is lost it subscribes again with backoff and reports
// each attempt to m.Outage: an outage logs a few lines, not one per
// attempt.
func (m *BarrierMember) Watch(ctx context.Context, handle func(id string, subjects []string)) {
	loop := outage.OrNew(m.Outage, "Redis", "", m.log).Loop("barrier channel", "unconfirmed barriers fence this instance")
	defer loop.Close()
	backoff := retry.Backoff{Min: resubscribeWait, Max: maxResubscribeWait}
	attempt := 0
	for ctx.Err() == nil {
		ps := m.rdb.Subscribe(ctx, BarrierChannel(m.prefix))
		// A blocked receive does not see ctx end: closing the
		// subscription does.
		unblock := context.AfterFunc(ctx, func() { ps.Close() })
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			if ctx.Err() == nil {
				loop.Failed(err)
			}
		} else {
			loop.OK()
			attempt = 0
			for ctx.Err() == nil {
				msg, err := ps.ReceiveMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						loop.Failed(err)
					}
					break
				}
				var b barrierMsg
				if json.Unmarshal([]byte(msg.Payload), &b) != nil || b.ID == "" {
					continue
				}
				go handle(b.ID, b.Subjects)
			}
		}
		unblock()
		ps.Close()
		attempt++
		_ = retry.Sleep(ctx, backoff.Delay(attempt))
	}
}

// BarrierRegistry is the revoker's view of the members in Redis; it
// implements barrier.Registry.
type BarrierRegistry struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewBarrierRegistry returns the registry under prefix.
func NewBarrierRegistry(rdb redis.UniversalClient, prefix string) *BarrierRegistry {
	return &BarrierRegistry{rdb: rdb, prefix: prefix}
}

// Live implements barrier.Registry, by the Redis server's clock.
func (r *BarrierRegistry) Live(ctx context.Context) ([]string, error) {
	res, err := liveScript.Run(ctx, r.rdb, []string{MembersKey(r.prefix)}).StringSlice()
	if err != nil {
		return nil, err
	}
	return res[1:], nil
}

// Publish implements barrier.Registry.
func (r *BarrierRegistry) Publish(ctx context.Context, id string, subjects []string) error {
	payload, err := json.Marshal(barrierMsg{ID: id, Subjects: subjects})
	if err != nil {
		return err
	}
	return r.rdb.Publish(ctx, BarrierChannel(r.prefix), payload).Err()
}

// NextConfirmation implements barrier.Registry.
func (r *BarrierRegistry) NextConfirmation(ctx context.Context, id string, wait time.Duration) (string, bool, error) {
	got, err := r.rdb.BLPop(ctx, wait, AckKey(r.prefix, id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return got[1], true, nil
}

// Fence implements barrier.Registry.
func (r *BarrierRegistry) Fence(ctx context.Context, members []string) (time.Duration, error) {
	ids := make([]any, len(members))
	for i, m := range members {
		ids[i] = m
	}
	ms, err := fenceScript.Run(ctx, r.rdb, []string{MembersKey(r.prefix), FencedKey(r.prefix)}, ids...).Int64()
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}
