// Package retry is consentd's one retry policy: exponential backoff with
// full jitter between a configured minimum and maximum, and an explicit
// classification of errors into transient (try again) and permanent
// (trying again cannot help: the caller must dead-letter or stop).
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff bounds the wait between attempts. The n-th wait is drawn
// uniformly from [d/2, d] where d = min(Min·2ⁿ, Max) ("equal jitter"), so
// instances that failed together do not retry in lock step, and no wait is
// shorter than half the minimum.
type Backoff struct {
	// Min is the first wait. Default: 100ms.
	Min time.Duration
	// Max caps every wait. Default: 5s.
	Max time.Duration
}

// Defaults of Backoff.
const (
	DefaultMin = 100 * time.Millisecond
	DefaultMax = 5 * time.Second
)

func (b Backoff) norm() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultMin
	}
	if b.Max < b.Min {
		b.Max = max(b.Min, DefaultMax)
	}
	return b
}

// Delay returns the wait after the given failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.norm()
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d or until ctx ends, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that IsPermanent reports true. nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent. Everything else is transient: a timeout, a lost connection,
// a leader moving. Each place that talks to a system classifies that
// system's errors (pipeline's Kafka sink marks what Kafka refuses for
// good); a consent store's errors are never permanent, because consentd
// fails closed and waits for the store.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// Do calls fn until it returns nil, a permanent error (returned as is), or
// ctx ends (ctx's error is returned, wrapped with the last failure). Between attempts it calls onRetry, if
// set, with the attempt number, the error and the coming wait, then waits
// b.Delay(attempt).
func Do(ctx context.Context, b Backoff, fn func() error, onRetry func(attempt int, err error, wait time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		wait := b.Delay(attempt)
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}
