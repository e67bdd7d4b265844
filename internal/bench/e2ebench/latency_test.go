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
	ms := time.Millisecond
	var l Latency
	// raw events 11 to 30; event 12 has two clean records, 20 none
	samples := []sample{{11, 5 * ms}, {12, ms}, {12, 3 * ms}, {13, 2 * ms}}
	for seq := 14; seq <= 30; seq++ {
		if seq != 20 {
			samples = append(samples, sample{seq, time.Duration(seq) * ms})
		}
	}
	l.summarize(samples, 11, 30)
	if l.Samples != 20 || l.P50 != 19*ms || l.P99 != 30*ms || l.Max != 30*ms {
		t.Errorf("summarize = %+v", l)
	}
	// tenths of 20 events: 11-12 (5, 1, 3 ms) and 29-30
	if l.FirstP50 != 3*ms || l.LastP50 != 29*ms {
		t.Errorf("first/last tenth p50 = %v/%v, want 3ms/29ms", l.FirstP50, l.LastP50)
	}
}

func TestFellBehind(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name        string
		first, last time.Duration
		want        bool
	}{
		{"steady", 10 * ms, 12 * ms, false},
		{"doubled but small", 10 * ms, 60 * ms, false},
		{"grew by seconds", 200 * ms, 3 * time.Second, true},
		{"high but flat", time.Second, 1500 * ms, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Latency{FirstP50: tc.first, LastP50: tc.last}
			if got := l.FellBehind(); got != tc.want {
				t.Errorf("FellBehind(%v, %v) = %v", tc.first, tc.last, got)
			}
		})
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
