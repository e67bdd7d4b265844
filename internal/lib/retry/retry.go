// Package retry is consentd's one retry helper: exponential backoff with
// equal jitter between a configured minimum and maximum, and a classifier
// that sorts each system's errors into one vocabulary (Class): transient
// (try again), refused (this input will never be accepted: dead-letter it
// and carry on) and fatal (nothing will be accepted: stop).
//
// Each place that talks to a system brings that system's classifier (the
// Kafka table is kafkax.Classify); a consent store's errors are always
// transient, because consentd fails closed and waits for the store.
//
// Owns: Backoff, Class, Do. Imports nothing of consentd.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff bounds the wait between attempts. The n-th wait is drawn
// uniformly from [d/2, d] where d = min(Min·2ⁿ⁻¹, Max) ("equal jitter"),
// so instances that failed together do not retry in lock step, and no
// wait is shorter than half the minimum.
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

// ApplyDefaults fills in Min and Max when zero.
func (b *Backoff) ApplyDefaults() {
	if b.Min == 0 {
		b.Min = DefaultMin
	}
	if b.Max == 0 {
		b.Max = max(b.Min, DefaultMax)
	}
}

// Validate reports a maximum below the minimum, after ApplyDefaults.
func (b Backoff) Validate() error {
	if b.Min < 0 || b.Max < 0 {
		return fmt.Errorf("backoff must not be negative, got %v to %v", b.Min, b.Max)
	}
	if b.Max < b.Min {
		return fmt.Errorf("backoff maximum %v is below the minimum %v", b.Max, b.Min)
	}
	return nil
}

// Delay returns the wait after the given failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	if b.Min <= 0 {
		b.Min = DefaultMin
	}
	if b.Max <= 0 {
		b.Max = DefaultMax
	}
	b.Max = max(b.Max, b.Min)
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

// Class says what to do about an error.
type Class uint8

const (
	// Transient: a timeout, a lost connection, a leader moving, a store
	// down. Try again after a backoff.
	Transient Class = iota
	// Refused: this input will never be accepted (too large, invalid).
	// Dead-letter it and carry on with the rest.
	Refused
	// Fatal: nothing this instance sends will be accepted
	// (authorization). Stop.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Refused:
		return "refused"
	case Fatal:
		return "fatal"
	}
	return "transient"
}

// Classifier sorts one system's errors.
type Classifier func(error) Class

// AlwaysTransient classifies every error as transient: for a system that
// consentd waits for whatever it answers (the consent store).
func AlwaysTransient(error) Class { return Transient }

// Policy says how Do retries.
type Policy struct {
	// Backoff bounds the waits. Default: 100ms to 5s.
	Backoff Backoff
	// Classify sorts the errors of fn. Default: AlwaysTransient.
	Classify Classifier
	// MaxAttempts bounds the attempts. Default: 0, until ctx ends.
	MaxAttempts int
	// OnRetry, if set, is called before each wait with the failed
	// attempt's number, its error and the coming wait.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Do calls fn until it returns nil, an error that is not transient
// (returned as is: the caller dead-letters or stops), MaxAttempts were
// made (the last error is returned), or ctx ends (ctx's error, wrapped
// with the last failure).
func Do(ctx context.Context, p Policy, fn func() error) error {
	classify := p.Classify
	if classify == nil {
		classify = AlwaysTransient
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || classify(err) != Transient {
			return err
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		wait := p.Backoff.Delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}
