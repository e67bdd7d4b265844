package e2ebench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{3}, 3},
		{"odd count, unsorted", []float64{9, 1, 5}, 5},
		{"even count: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.xs); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
}

func TestRows(t *testing.T) {
	results := []Result{
		{Name: "a", Round: 1, Events: 1000, PerSec: 100, CPU: 10 * time.Millisecond, MaxRSS: 30 << 20, Outputs: 1000},
		{Name: "b", Round: 1, Events: 1000, PerSec: 50, CPU: 40 * time.Millisecond, MaxRSS: 90 << 20, Outputs: 700},
		{Name: "a", Round: 2, Events: 1000, PerSec: 300, CPU: 30 * time.Millisecond, MaxRSS: 50 << 20, Outputs: 1000},
		{Name: "a", Round: 3, Events: 1000, PerSec: 200, CPU: 20 * time.Millisecond, MaxRSS: 40 << 20, Outputs: 1000},
	}
	lat := map[string][]Latency{"a": {
		{Offered: 10, Achieved: 9, Events: 5, Samples: 5, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond, Max: 20 * time.Millisecond},
		{Offered: 10, Achieved: 10, Events: 5, Samples: 5, P50: 4 * time.Millisecond, P99: 7 * time.Millisecond, Max: 90 * time.Millisecond},
		{Offered: 10, Achieved: 8, Events: 5, Samples: 5, P50: 3 * time.Millisecond, P99: 8 * time.Millisecond, Max: 30 * time.Millisecond},
	}}
	rs := rows([]string{"b", "a"}, results, lat)
	if len(rs) != 2 || rs[0].Name != "b" || rs[1].Name != "a" {
		t.Fatalf("rows in the wrong order: %+v", rs)
	}
	a := rs[1]
	if a.PerSec != 200 || a.CPUPerEvent != 20*time.Microsecond || a.MaxRSS != 40<<20 || a.Outputs != 1000 {
		t.Errorf("row a = %+v, want the medians 200/s, 20µs, 40 MiB", a)
	}
	if a.Latency == nil || a.Latency.P50 != 3*time.Millisecond || a.Latency.P99 != 8*time.Millisecond || a.Latency.Max != 90*time.Millisecond || a.Latency.Samples != 15 {
		t.Errorf("latency of a = %+v, want median p50 3ms, p99 8ms, worst max 90ms", a.Latency)
	}
	if rs[0].Latency != nil {
		t.Errorf("b had no latency pass: %+v", rs[0].Latency)
	}
}

func TestRenderTable(t *testing.T) {
	m := Machine{Cores: 2, CPU: "Test CPU", Go: "go1.99 linux/amd64", Kafka: "4.1.1", EventBytes: 610, Partitions: 4, Users: 20000, Events: 200000, Rounds: 3,
		LatencyRate: 9000, LatencySource: "half the consentd 1-output rate above", LatencyEvents: 90000}
	rs := []Row{
		{Name: "plain", PerSec: 40000, CPUPerEvent: 8 * time.Microsecond, MaxRSS: 30 << 20, Outputs: 200000,
			Latency: &Latency{P50: 10 * time.Millisecond, P99: 40 * time.Millisecond, Max: 80 * time.Millisecond}},
		{Name: "parallel", PerSec: 80000, CPUPerEvent: 5 * time.Microsecond, MaxRSS: 50 << 20, Outputs: 200000,
			Latency: &Latency{P50: 5 * time.Millisecond, P99: 20 * time.Millisecond, Max: 30 * time.Millisecond}},
		{Name: "consentd", PerSec: 20000, CPUPerEvent: 25 * time.Microsecond, MaxRSS: 100 << 20, Outputs: 270992,
			Latency: &Latency{Offered: 9000, P50: 15 * time.Millisecond, P99: 60 * time.Millisecond, Max: 200 * time.Millisecond}},
		{Name: "slow", PerSec: 8000, CPUPerEvent: 50 * time.Microsecond, MaxRSS: 100 << 20, Outputs: 270992,
			Latency: &Latency{Offered: 9000, P50: 150 * time.Millisecond, P99: 600 * time.Millisecond, Max: 700 * time.Millisecond}},
		{Name: "behind", PerSec: 30000, CPUPerEvent: 30 * time.Microsecond, MaxRSS: 100 << 20, Outputs: 270992,
			Latency: &Latency{Offered: 9000, P50: 900 * time.Millisecond, P99: 3 * time.Second, Max: 3 * time.Second, FirstP50: 200 * time.Millisecond, LastP50: 3 * time.Second}},
		{Name: "not measured", PerSec: 10000, CPUPerEvent: 10 * time.Microsecond, MaxRSS: 60 << 20, Outputs: 5},
	}
	var b bytes.Buffer
	renderTable(&b, m, rs, "parallel", "plain")
	got := b.String()
	for _, want := range []string{
		"machine: 2 cores (Test CPU), go1.99 linux/amd64, Kafka 4.1.1; events ~610 bytes, 4 partitions, 20000 users; 200000 events per throughput pass; latency: 90000 events offered at 9000/s (half the consentd 1-output rate above); median of 3 round(s) per value, latency max = worst round\n",
		"| contender | events/s | CPU µs/event | peak RSS MiB | writes/pass | latency p50 ms | p99 ms | max ms | p99 vs plain pass-through |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
		"| plain | 40000 (0.50×) | 8.0 (1.60×) | 30 (0.60×) | 200000 | 10 (2.00×) | 40 (2.00×) | 80 | 1.00× |\n",
		"| parallel | 80000 (1.00×) | 5.0 (1.00×) | 50 (1.00×) | 200000 | 5 (1.00×) | 20 (1.00×) | 30 | 0.50× |\n",
		"| consentd | 20000 (0.25×) | 25.0 (5.00×) | 100 (2.00×) | 270992 | 15 (3.00×) | 60 (3.00×) | 200 | 1.50× |\n",
		"| not measured | 10000 (0.12×) | 10.0 (2.00×) | 60 (1.20×) | 5 | – | – | – | – |\n",
		"note: fell behind the offered rate (a growing backlog, with the broker and the producer on the same machine): behind (p50 200 ms over the first tenth of the events, 3000 ms over the last).\n",
		"note: the offered rate is above the steady rate of slow (8000/s): its latency includes a backlog that grows while events are offered.\n",
		"ratios in parentheses: to the parallel. events/s:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}

func TestRenderTableWithoutBaseline(t *testing.T) {
	var b bytes.Buffer
	renderTable(&b, Machine{Cores: 1, Rounds: 1}, []Row{{Name: "x", PerSec: 5, Outputs: 1}}, "parallel", "plain")
	if !strings.Contains(b.String(), "| x | 5 | 0.0 | 0 | 1 | – | – | – | – |\n") {
		t.Errorf("got:\n%s", b.String())
	}
	if strings.Contains(b.String(), "note:") {
		t.Errorf("a backlog note without a latency pass: %s", b.String())
	}
	if !strings.Contains(b.String(), "Kafka (version not given)") {
		t.Errorf("an unknown Kafka version is not said: %s", b.String())
	}
}
