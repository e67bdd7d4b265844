package e2ebench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Row is one contender's line in the comparison table: each value is the
// median over the rounds, except the latency maximum (the worst round).
type Row struct {
	Name        string
	PerSec      float64       // steady events/s
	CPUPerEvent time.Duration // CPU time (user + system) of the contender's process per event
	MaxRSS      int64         // peak resident set size of the contender's process, bytes
	Outputs     int64         // records written per pass (checked against the expected count)
	Latency     *Latency      // nil when not measured
}

type number interface{ ~int64 | ~float64 }

// median returns the median of xs (the mean of the two middle values
// for an even count); 0 for none.
func median[T number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rows aggregates the rounds of every contender, in the order of names.
func rows(names []string, results []Result, latencies map[string][]Latency) []Row {
	var out []Row
	for _, name := range names {
		var rate []float64
		var cpu []time.Duration
		var rss, outputs []int64
		for _, r := range results {
			if r.Name != name {
				continue
			}
			rate = append(rate, r.PerSec)
			cpu = append(cpu, r.CPU/time.Duration(max(r.Events, 1)))
			rss = append(rss, r.MaxRSS)
			outputs = append(outputs, r.Outputs)
		}
		row := Row{Name: name, PerSec: median(rate), CPUPerEvent: median(cpu), MaxRSS: median(rss), Outputs: median(outputs)}
		if ls := latencies[name]; len(ls) > 0 {
			var offered, achieved []float64
			var p50, p99, first, last []time.Duration
			l := Latency{}
			for _, x := range ls {
				offered, achieved = append(offered, x.Offered), append(achieved, x.Achieved)
				p50, p99 = append(p50, x.P50), append(p99, x.P99)
				first, last = append(first, x.FirstP50), append(last, x.LastP50)
				l.Max = max(l.Max, x.Max)
				l.Events += x.Events
				l.Samples += x.Samples
			}
			l.Offered, l.Achieved, l.P50, l.P99 = median(offered), median(achieved), median(p50), median(p99)
			l.FirstP50, l.LastP50 = median(first), median(last)
			row.Latency = &l
		}
		out = append(out, row)
	}
	return out
}

// Machine describes what a run ran on and with.
type Machine struct {
	Cores      int
	CPU        string // model name, "" when unknown
	Go         string // Go version, OS and architecture
	Kafka      string // Kafka version, "" when unknown
	EventBytes int    // average raw event size
	Partitions int
	Users      int
	Events     int // preloaded raw events per throughput pass
	Rounds     int
	// Latency phase: offered rate, how it was chosen, raw events per pass.
	LatencyRate   float64
	LatencySource string
	LatencyEvents int
}

// thisMachine fills what the process can see of its machine.
func thisMachine() Machine {
	return Machine{Cores: runtime.NumCPU(), CPU: cpuModel(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
}

// cpuModel returns the first model name of /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// String is the one-line description printed above the table.
func (m Machine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d cores", m.Cores)
	if m.CPU != "" {
		fmt.Fprintf(&b, " (%s)", m.CPU)
	}
	kafka := m.Kafka
	if kafka == "" {
		kafka = "(version not given)"
	}
	fmt.Fprintf(&b, ", %s, Kafka %s; events ~%d bytes, %d partitions, %d users; %d events per throughput pass", m.Go, kafka, m.EventBytes, m.Partitions, m.Users, m.Events)
	if m.LatencyEvents > 0 {
		fmt.Fprintf(&b, "; latency: %d events offered at %.0f/s (%s)", m.LatencyEvents, m.LatencyRate, m.LatencySource)
	}
	fmt.Fprintf(&b, "; median of %d round(s) per value, latency max = worst round", m.Rounds)
	return b.String()
}

// renderTable writes the comparison as a markdown table: absolute values
// and, in parentheses, ratios to the row named base (the partition-
// parallel pass-through); the last column is each p99 over the p99 of the
// row named plain (the plain pass-through).
func renderTable(w io.Writer, m Machine, rs []Row, base, plain string) {
	var b, p *Row
	for i := range rs {
		switch rs[i].Name {
		case base:
			b = &rs[i]
		case plain:
			p = &rs[i]
		}
	}
	fmt.Fprintf(w, "machine: %s\n\n", m)
	fmt.Fprintf(w, "| contender | events/s | CPU µs/event | peak RSS MiB | writes/pass | latency p50 ms | p99 ms | max ms | p99 vs plain pass-through |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		var rb Row
		if b != nil {
			rb = *b
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d |", r.Name,
			withRatio(fmt.Sprintf("%.0f", r.PerSec), r.PerSec, rb.PerSec),
			withRatio(fmt.Sprintf("%.1f", micros(r.CPUPerEvent)), micros(r.CPUPerEvent), micros(rb.CPUPerEvent)),
			withRatio(fmt.Sprintf("%.0f", mib(r.MaxRSS)), mib(r.MaxRSS), mib(rb.MaxRSS)),
			r.Outputs)
		if r.Latency == nil {
			fmt.Fprintf(w, " – | – | – | – |\n")
			continue
		}
		var bl, pl Latency
		if b != nil && b.Latency != nil {
			bl = *b.Latency
		}
		if p != nil && p.Latency != nil {
			pl = *p.Latency
		}
		vsPlain := "–"
		if pl.P99 > 0 {
			vsPlain = fmt.Sprintf("%.2f×", ms(r.Latency.P99)/ms(pl.P99))
		}
		fmt.Fprintf(w, " %s | %s | %.0f | %s |\n",
			withRatio(fmt.Sprintf("%.0f", ms(r.Latency.P50)), ms(r.Latency.P50), ms(bl.P50)),
			withRatio(fmt.Sprintf("%.0f", ms(r.Latency.P99)), ms(r.Latency.P99), ms(bl.P99)),
			ms(r.Latency.Max), vsPlain)
	}
	var over, behind []string
	for _, r := range rs {
		switch {
		case r.Latency == nil:
		case r.Latency.Offered > r.PerSec:
			over = append(over, fmt.Sprintf("%s (%.0f/s)", r.Name, r.PerSec))
		case r.Latency.FellBehind():
			behind = append(behind, fmt.Sprintf("%s (p50 %.0f ms over the first tenth of the events, %.0f ms over the last)", r.Name, ms(r.Latency.FirstP50), ms(r.Latency.LastP50)))
		}
	}
	if len(over) > 0 {
		fmt.Fprintf(w, "\nnote: the offered rate is above the steady rate of %s: its latency includes a backlog that grows while events are offered.\n", strings.Join(over, ", "))
	}
	if len(behind) > 0 {
		fmt.Fprintf(w, "\nnote: fell behind the offered rate (a growing backlog, with the broker and the producer on the same machine): %s.\n", strings.Join(behind, "; "))
	}
	fmt.Fprintf(w, "\nratios in parentheses: to the %s. events/s: first message fetched to last offset committed. "+
		"CPU (user + system) and peak RSS: the contender's whole process in a throughput pass, start-up and group join included. "+
		"Latency: per clean record, its broker append time minus its raw event's (LogAppendTime topics).\n", base)
}

// withRatio renders "value (v/base×)", or value alone without a base.
func withRatio(value string, v, base float64) string {
	if base <= 0 {
		return value
	}
	return fmt.Sprintf("%s (%.2f×)", value, v/base)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64     { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64            { return float64(b) / (1 << 20) }
