package barrier

import (
	"context"
	"errors"
	"time"
)

// Lease is one member's entry in the shared registry;
// *redisstore.BarrierMember implements it. Methods are safe for
// concurrent use.
type Lease interface {
	// Heartbeat renews the lease for TTL; an error for which IsFenced
	// reports true when a revoker fenced the member, and one for which
	// IsLapsed reports true (nothing renewed) when the lease had already
	// ended: a member frozen past its lease (a stopped process, a long
	// pause) must not carry on as if nothing happened.
	Heartbeat(ctx context.Context) error
	// Rejoin lifts the member's fence and renews the lease.
	Rejoin(ctx context.Context) error
	// Leave ends the membership at once (clean shutdown).
	Leave(ctx context.Context) error
	// Confirm tells the revoker of barrier id that this member is safe.
	Confirm(ctx context.Context, id string) error
	// Watch calls handle for every barrier published, until ctx ends;
	// barriers published while it cannot listen are missed (the revoker
	// then fences this member).
	Watch(ctx context.Context, handle func(id string, subjects []string))
	// TTL is the lease length.
	TTL() time.Duration
}

// Registry is the revoker's view of the shared registry;
// *redisstore.BarrierRegistry implements it. Safe for concurrent use.
type Registry interface {
	// Live returns the members whose lease has not ended.
	Live(ctx context.Context) ([]string, error)
	// Publish announces barrier id for subjects to every member.
	Publish(ctx context.Context, id string, subjects []string) error
	// NextConfirmation waits at most wait for one confirmation of
	// barrier id and returns the member that confirmed; ok is false when
	// none came in time.
	NextConfirmation(ctx context.Context, id string, wait time.Duration) (member string, ok bool, err error)
	// Fence stops the members' leases from being renewed and returns how
	// long the last of their leases still runs.
	Fence(ctx context.Context, members []string) (time.Duration, error)
}

// Cache is the member's consent cache; *consent.Cache implements it.
type Cache interface {
	// Invalidate drops subject; later lookups read the store.
	Invalidate(subject string)
	// Purge drops everything and makes every earlier decision stale.
	Purge()
	// Seq is the change sequence number, advanced by every Invalidate
	// and Purge.
	Seq() uint64
}

// FencedError is implemented by the error Lease.Heartbeat returns when
// the member was fenced, so that a Lease need not import this package.
type FencedError interface{ Fenced() bool }

// IsFenced reports whether err says the member was fenced.
func IsFenced(err error) bool {
	var fe FencedError
	return errors.As(err, &fe) && fe.Fenced()
}

// LapsedError is implemented by the error Lease.Heartbeat returns when
// the lease had already ended (by the registry's clock) when the renewal
// arrived: revokers may have stopped waiting for the member meanwhile.
type LapsedError interface{ Lapsed() bool }

// IsLapsed reports whether err says the lease had ended before the
// renewal.
func IsLapsed(err error) bool {
	var le LapsedError
	return errors.As(err, &le) && le.Lapsed()
}

// Hook interfaces (see package internal/lib/hooks).
type (
	// FencedHook is called by a Revoker with the number of members it
	// fenced because they did not confirm in time.
	FencedHook interface{ OnMembersFenced(n int) }
	// LeaseLostHook is called by a Member when its own lease is lost:
	// reason "fenced" (a revoker fenced it) or "lapsed" (it could not
	// renew the lease in time). It writes nothing until it rejoined.
	LeaseLostHook interface{ OnLeaseLost(reason string) }
)
