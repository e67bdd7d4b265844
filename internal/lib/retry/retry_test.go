package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
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

func TestDo(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	t.Run("transient until success", func(t *testing.T) {
		n, retries := 0, 0
		err := Do(context.Background(), Policy{Backoff: b, OnRetry: func(int, error, time.Duration) { retries++ }}, func() error {
			n++
			if n < 4 {
				return errors.New("transient")
			}
			return nil
		})
		if err != nil || n != 4 || retries != 3 {
			t.Fatalf("err=%v calls=%d retries=%d", err, n, retries)
		}
	})
	for _, class := range []Class{Refused, Fatal} {
		t.Run(class.String()+" stops at once", func(t *testing.T) {
			n := 0
			want := errors.New("no")
			classify := func(err error) Class {
				if err == want {
					return class
				}
				return Transient
			}
			err := Do(context.Background(), Policy{Backoff: b, Classify: classify}, func() error { n++; return want })
			if !errors.Is(err, want) || n != 1 {
				t.Fatalf("err=%v calls=%d", err, n)
			}
		})
	}
	t.Run("max attempts", func(t *testing.T) {
		n := 0
		err := Do(context.Background(), Policy{Backoff: b, MaxAttempts: 2}, func() error { n++; return errors.New("down") })
		if err == nil || n != 2 {
			t.Fatalf("err=%v calls=%d, want 2 calls and the last error", err, n)
		}
	})
	t.Run("ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := Do(ctx, Policy{Backoff: b}, func() error { return errors.New("down") })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err=%v, want deadline exceeded", err)
		}
	})
}
