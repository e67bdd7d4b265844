package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The revocation barrier. Every running consentd is a member: it renews a
// lease in the sorted set MembersKey (score: lease end, Redis server time
// in ms) and stops writing clean records by itself before its lease ends
// unless renewed. A revoker publishes a barrier (an id and the subjects)
// on BarrierChannel after the change is stored; each member drops the
// subjects from its cache, waits until no clean write decided before that
// is still in flight, and confirms by pushing its id onto the barrier's
// list (AckKey). Members that do not confirm within the timeout are
// fenced (FencedKey): their lease is not renewed any more, and the revoker
// waits until it has ended. A fenced member purges its cache, drains its
// writes and joins again.

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

// Barrier defaults.
const (
	// DefaultLeaseTTL is how long a member's lease lasts unless renewed.
	DefaultLeaseTTL = 3 * time.Second
	// DefaultBarrierTimeout is how long a revoker waits for confirmations
	// before it fences the members that did not confirm.
	DefaultBarrierTimeout = 2 * time.Second
	// LeaseMargin is how long before its lease ends a member stops
	// starting clean writes, and how long after a fenced member's lease
	// ended the revoker still waits: a write started before the member
	// stopped has that long to land.
	LeaseMargin = time.Second
	// ackTTL bounds how long a barrier's confirmations stay in Redis.
	ackTTL = time.Minute
)

// serverNowMS is the Redis server time in ms, inside scripts.
const serverNowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// heartbeatScript renews a member's lease unless it is fenced (-1).
// KEYS: members, fenced. ARGV: id, ttl ms. Returns the lease end.
var heartbeatScript = redis.NewScript(serverNowMS + `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
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

// Member is one consentd's membership in the barrier.
type Member struct {
	rdb    redis.UniversalClient
	prefix string
	// ID names the member; random per process.
	ID string
	// TTL is the lease length. Default: DefaultLeaseTTL.
	TTL time.Duration
}

// NewMember returns a member with a random id.
func NewMember(rdb redis.UniversalClient, prefix string) *Member {
	return &Member{rdb: rdb, prefix: prefix, ID: randomID(), TTL: DefaultLeaseTTL}
}

// ErrFenced reports a member that a revoker fenced: it must purge its
// cache, drain its writes and Rejoin. It has a method Fenced() bool
// returning true, so that callers can tell it without importing this
// package.
var ErrFenced error = fencedError{}

type fencedError struct{}

func (fencedError) Error() string { return "fenced by a revocation barrier" }
func (fencedError) Fenced() bool  { return true }

// Heartbeat renews the lease; ErrFenced when the member is fenced.
func (m *Member) Heartbeat(ctx context.Context) error {
	n, err := heartbeatScript.Run(ctx, m.rdb, []string{MembersKey(m.prefix), FencedKey(m.prefix)}, m.ID, m.TTL.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("renewing the barrier lease: %w", err)
	}
	if n < 0 {
		return ErrFenced
	}
	return nil
}

// Rejoin lifts the member's fence and renews its lease.
func (m *Member) Rejoin(ctx context.Context) error {
	if err := rejoinScript.Run(ctx, m.rdb, []string{MembersKey(m.prefix), FencedKey(m.prefix)}, m.ID, m.TTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("rejoining the barrier: %w", err)
	}
	return nil
}

// Leave ends the membership at once (clean shutdown, nothing in flight).
func (m *Member) Leave(ctx context.Context) error {
	pipe := m.rdb.Pipeline()
	pipe.ZRem(ctx, MembersKey(m.prefix), m.ID)
	pipe.SRem(ctx, FencedKey(m.prefix), m.ID)
	_, err := pipe.Exec(ctx)
	return err
}

// Confirm tells the revoker of barrierID that this member is safe.
func (m *Member) Confirm(ctx context.Context, barrierID string) error {
	key := AckKey(m.prefix, barrierID)
	pipe := m.rdb.Pipeline()
	pipe.RPush(ctx, key, m.ID)
	pipe.PExpire(ctx, key, ackTTL)
	_, err := pipe.Exec(ctx)
	return err
}

// barrierMsg is what BarrierChannel carries.
type barrierMsg struct {
	ID       string   `json:"id"`
	Subjects []string `json:"subjects"`
}

// WatchBarriers subscribes to BarrierChannel and calls handle for each
// barrier, in its own goroutine, until ctx ends. handle must confirm (or
// not, if it cannot promise).
func WatchBarriers(ctx context.Context, rdb redis.UniversalClient, prefix string, handle func(id string, subjects []string), log *zap.Logger) {
	for ctx.Err() == nil {
		ps := rdb.Subscribe(ctx, BarrierChannel(prefix))
		for ctx.Err() == nil {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("barrier channel lost; resubscribing (unconfirmed barriers fence this instance)", zap.Error(err))
				}
				break
			}
			var b barrierMsg
			if json.Unmarshal([]byte(msg.Payload), &b) != nil || b.ID == "" {
				continue
			}
			go handle(b.ID, b.Subjects)
		}
		ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Barrier is the revoker's side: Await returns once every live member
// confirmed that it will not write the subjects again with consent older
// than the call, or was fenced and its lease ended.
type Barrier struct {
	rdb    redis.UniversalClient
	prefix string
	// Timeout bounds the wait for confirmations. Default:
	// DefaultBarrierTimeout.
	Timeout time.Duration
	// OnFenced, if set, is called with the number of members fenced.
	OnFenced func(n int)
}

// NewBarrier returns the revoker's side of the barrier for prefix.
func NewBarrier(rdb redis.UniversalClient, prefix string) *Barrier {
	return &Barrier{rdb: rdb, prefix: prefix, Timeout: DefaultBarrierTimeout}
}

// Await publishes a barrier for subjects and waits as described on
// Barrier. The change must be stored before the call.
func (b *Barrier) Await(ctx context.Context, subjects []string) error {
	res, err := liveScript.Run(ctx, b.rdb, []string{MembersKey(b.prefix)}).StringSlice()
	if err != nil {
		return fmt.Errorf("barrier: reading members: %w", err)
	}
	live := map[string]bool{}
	for _, id := range res[1:] {
		live[id] = true
	}
	if len(live) == 0 {
		return nil
	}
	id := randomID()
	payload, _ := json.Marshal(barrierMsg{ID: id, Subjects: subjects})
	if err := b.rdb.Publish(ctx, BarrierChannel(b.prefix), payload).Err(); err != nil {
		return fmt.Errorf("barrier: publishing: %w", err)
	}
	key := AckKey(b.prefix, id)
	deadline := time.Now().Add(b.Timeout)
	for len(live) > 0 {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		got, err := b.rdb.BLPop(ctx, max(wait, 10*time.Millisecond), key).Result()
		if errors.Is(err, redis.Nil) {
			break
		}
		if err != nil {
			return fmt.Errorf("barrier: waiting for confirmations: %w", err)
		}
		delete(live, got[1])
	}
	if len(live) == 0 {
		return nil
	}
	ids := make([]any, 0, len(live))
	for m := range live {
		ids = append(ids, m)
	}
	ms, err := fenceScript.Run(ctx, b.rdb, []string{MembersKey(b.prefix), FencedKey(b.prefix)}, ids...).Int64()
	if err != nil {
		return fmt.Errorf("barrier: fencing %d members: %w", len(ids), err)
	}
	if b.OnFenced != nil {
		b.OnFenced(len(ids))
	}
	t := time.NewTimer(time.Duration(ms)*time.Millisecond + LeaseMargin)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("barrier: waiting for fenced members: %w", ctx.Err())
	}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
