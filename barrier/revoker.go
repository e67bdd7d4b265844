package barrier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// Revoker is the side of whoever changes consent: Await returns once
// every live member confirmed that it will not write the subjects again
// with consent older than the call, or was fenced and its lease ended.
// It implements changes.Barrier. Safe for concurrent use.
type Revoker struct {
	// Registry is the shared registry; required.
	Registry Registry
	// Timeout bounds the wait for confirmations. Default: DefaultTimeout.
	Timeout time.Duration
	// Hooks are told how many members were fenced (FencedHook).
	Hooks hooks.List
}

// minConfirmWait is the shortest single wait for a confirmation.
const minConfirmWait = 10 * time.Millisecond

// Await publishes a barrier for subjects and waits as described on
// Revoker. The change must be stored before the call.
func (r *Revoker) Await(ctx context.Context, subjects []string) error {
	ids, err := r.Registry.Live(ctx)
	if err != nil {
		return fmt.Errorf("barrier: reading members: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	live := make(map[string]bool, len(ids))
	for _, id := range ids {
		live[id] = true
	}
	id := NewID()
	if err := r.Registry.Publish(ctx, id, subjects); err != nil {
		return fmt.Errorf("barrier: publishing: %w", err)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	for len(live) > 0 {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		member, ok, err := r.Registry.NextConfirmation(ctx, id, max(wait, minConfirmWait))
		if err != nil {
			return fmt.Errorf("barrier: waiting for confirmations: %w", err)
		}
		if !ok {
			break
		}
		delete(live, member)
	}
	if len(live) == 0 {
		return nil
	}
	late := make([]string, 0, len(live))
	for m := range live {
		late = append(late, m)
	}
	remaining, err := r.Registry.Fence(ctx, late)
	if err != nil {
		return fmt.Errorf("barrier: fencing %d members: %w", len(late), err)
	}
	hooks.Each(r.Hooks, func(h FencedHook) { h.OnMembersFenced(len(late)) })
	t := time.NewTimer(remaining + LeaseMargin)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("barrier: waiting for fenced members: %w", ctx.Err())
	}
}

// NewID returns a random member or barrier id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
