package retry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestDelayBounds(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 5 * time.Millisecond, 10 * time.Millisecond},
		{2, 10 * time.Millisecond, 20 * time.Millisecond},
		{4, 40 * time.Millisecond, 80 * time.Millisecond},
		{5, 40 * time.Millisecond, 80 * time.Millisecond},
		{1000, 40 * time.Millisecond, 80 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(tc.attempt), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := b.Delay(tc.attempt)
				if d < tc.lo || d > tc.hi {
					t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.lo, tc.hi)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Fatalf("Delay(%d) has no jitter: %v", tc.attempt, seen)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	d := Backoff{}.Delay(100)
	if d < DefaultMax/2 || d > DefaultMax {
		t.Fatalf("zero Backoff: Delay = %v, want within default max", d)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		perm bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"marked", Permanent(errors.New("bad")), true},
		{"wrapped mark", fmt.Errorf("ctx: %w", Permanent(errors.New("bad"))), true},
		{"not marked, even if the system says so", kafka.MessageSizeTooLarge, false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"canceled", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPermanent(tc.err); got != tc.perm {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.perm)
			}
		})
	}
}

func TestDo(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	t.Run("transient until success", func(t *testing.T) {
		n, retries := 0, 0
		err := Do(context.Background(), b, func() error {
			n++
			if n < 4 {
				return errors.New("transient")
			}
			return nil
		}, func(int, error, time.Duration) { retries++ })
		if err != nil || n != 4 || retries != 3 {
			t.Fatalf("err=%v calls=%d retries=%d", err, n, retries)
		}
	})
	t.Run("permanent stops at once", func(t *testing.T) {
		n := 0
		want := Permanent(errors.New("no"))
		err := Do(context.Background(), b, func() error { n++; return want }, nil)
		if !errors.Is(err, want) || n != 1 {
			t.Fatalf("err=%v calls=%d", err, n)
		}
	})
	t.Run("ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := Do(ctx, b, func() error { return errors.New("down") }, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err=%v, want deadline exceeded", err)
		}
	})
}
