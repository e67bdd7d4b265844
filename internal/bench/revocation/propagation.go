// Package revocation measures how fast a consent revocation stops a
// subject's events: it compares the broker's append times of clean writes
// (read with kcat from a LogAppendTime topic) with revocation times.
// Benchmark tooling: production code never imports it; it imports nothing
// of consentd.
package revocation

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is what the clean topic shows about a set of revocations.
type Result struct {
	// Latencies, sorted: per revoked subject, from the acknowledged
	// revocation to its last clean write (0 when none came after).
	Latencies []time.Duration
	// Late counts, per revoked key, writes later than the grace period.
	Late map[string]int
	// NoEventsBefore lists revoked keys with no write before their
	// revocation (the measurement says nothing about them).
	NoEventsBefore []string
	// OthersAfter counts writes of other keys after the last revocation
	// plus the grace period (0 means the pipeline had stopped: vacuous).
	OthersAfter int
}

// Percentile returns the q-quantile (0..1) of the latencies.
func (p Result) Percentile(q float64) time.Duration {
	if len(p.Latencies) == 0 {
		return 0
	}
	return p.Latencies[min(len(p.Latencies)-1, int(q*float64(len(p.Latencies))))]
}

// Analyze reads kcat output in the format "%k %T\n" (key and
// broker append time in ms, from a topic with LogAppendTime) against the
// revocation times of pseudonymous keys.
func Analyze(kcatOut []byte, revokedAt map[string]time.Time, grace time.Duration) (Result, error) {
	p := Result{Late: map[string]int{}}
	last := map[string]time.Time{}
	before := map[string]int{}
	var lastRevocation time.Time
	for _, at := range revokedAt {
		if at.After(lastRevocation) {
			lastRevocation = at
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(kcatOut)), "\n") {
		key, tsText, ok := strings.Cut(line, " ")
		ms, err := strconv.ParseInt(tsText, 10, 64)
		if !ok || err != nil {
			return p, fmt.Errorf("kcat line %q: want \"key timestamp\"", line)
		}
		ts := time.UnixMilli(ms)
		at, revoked := revokedAt[key]
		switch {
		case !revoked:
			if ts.After(lastRevocation.Add(grace)) {
				p.OthersAfter++
			}
		case ts.Before(at):
			before[key]++
		default:
			if ts.After(last[key]) {
				last[key] = ts
			}
			if ts.After(at.Add(grace)) {
				p.Late[key]++
			}
		}
	}
	for key, at := range revokedAt {
		if before[key] == 0 {
			p.NoEventsBefore = append(p.NoEventsBefore, key)
		}
		d := time.Duration(0)
		if l, ok := last[key]; ok {
			d = l.Sub(at)
		}
		p.Latencies = append(p.Latencies, d)
	}
	sort.Slice(p.Latencies, func(i, j int) bool { return p.Latencies[i] < p.Latencies[j] })
	return p, nil
}
