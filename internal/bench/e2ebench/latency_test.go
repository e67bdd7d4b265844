package e2ebench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"no samples", nil, 0.5, 0},
		{"one sample", ms(7), 0.99, 7 * time.Millisecond},
		{"median of an odd count", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"median of an even count is the lower middle (nearest rank)", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 100 is the 50th", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"p99 of 10 is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{"max", ms(1, 2, 3), 1, 3 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.q); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.q, got, tc.want)
			}
		})
	}
}

func TestLatencySummarize(t *testing.T) {
	var l Latency
	l.summarize([]time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond})
	if l.Samples != 5 || l.P50 != 3*time.Millisecond || l.P99 != 5*time.Millisecond || l.Max != 5*time.Millisecond {
		t.Errorf("summarize = %+v", l)
	}
}

func TestMessageSeq(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  int
		ok    bool
	}{
		{"raw event", `{"type":"track","messageId":"msg-42","timestamp":"2026-11-22T09:00:00Z"}`, 42, true},
		{"last field", `{"messageId":"msg-7"}`, 7, true},
		{"no messageId", `{"type":"track"}`, 0, false},
		{"not synthetic", `{"messageId":"abc"}`, 0, false},
		{"not a number", `{"messageId":"msg-x1"}`, 0, false},
		{"empty", `{"messageId":"msg-"}`, 0, false},
		{"unterminated", `{"messageId":"msg-12`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := messageSeq([]byte(tc.value))
			if got != tc.want || ok != tc.ok {
				t.Errorf("messageSeq(%s) = %d, %v, want %d, %v", tc.value, got, ok, tc.want, tc.ok)
			}
		})
	}
}
