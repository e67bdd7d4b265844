package kafkaops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/policy"
)

// ShadowRecord is one event's differences as the shadow report topic
// holds them (the message value, JSON; the key is the event's
// pseudonymous key under the live policy). It never holds a value of the
// event.
type ShadowRecord struct {
	Live   string        `json:"live_policy"`
	Shadow string        `json:"shadow_policy"`
	Digest string        `json:"shadow_digest,omitempty"`
	Diffs  []policy.Diff `json:"diffs"`
}

// ShadowReporter writes a sample of the shadow policy's differences to a
// topic: at most PerSecond records a second, the rest counted as
// dropped. It implements pipeline.ShadowHook; OnShadow never blocks.
type ShadowReporter struct {
	Topic     string
	PerSecond int
	Producer  Producer
	Live      *policy.Policy
	Shadow    *policy.Policy
	Log       *zap.Logger
	// Outage receives the failed writes, so that a Kafka outage is a few
	// lines. Default: a Tracker of its own, on Log.
	Outage *outage.Tracker

	once    sync.Once
	queue   chan kafka.Message
	mu      sync.Mutex
	second  time.Time
	used    int
	dropped atomic.Int64
}

// OnShadow implements pipeline.ShadowHook.
func (r *ShadowReporter) OnShadow(key []byte, diffs []policy.Diff) {
	if len(diffs) == 0 {
		return
	}
	r.once.Do(func() { r.queue = make(chan kafka.Message, 4*max(r.PerSecond, 1)) })
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.second) >= time.Second {
		r.second, r.used = now, 0
	}
	ok := r.used < r.PerSecond
	if ok {
		r.used++
	}
	r.mu.Unlock()
	if !ok {
		r.dropped.Add(1)
		return
	}
	safe := make([]policy.Diff, len(diffs))
	for i, d := range diffs {
		d.Path = safePath(d.Path)
		safe[i] = d
	}
	v, _ := json.Marshal(ShadowRecord{Live: r.Live.Version, Shadow: r.Shadow.Version, Digest: r.Shadow.Digest, Diffs: safe})
	select {
	case r.queue <- kafka.Message{Topic: r.Topic, Key: append([]byte(nil), key...), Value: v, Time: now}:
	default:
		r.dropped.Add(1)
	}
}

// safePath hides the path segments that may be personal data: keys are
// input, and a candidate policy may keep keys the live one scrubs. A
// segment with six digits in a row or more than 64 bytes is written
// "[key]", and so is the rest of the path from a segment with "@".
func safePath(p string) string {
	if p == "" {
		return p
	}
	segs := strings.Split(p, ".")
	for i, seg := range segs {
		digits, run := 0, 0
		for _, c := range seg {
			if c >= '0' && c <= '9' {
				run++
				digits = max(digits, run)
			} else {
				run = 0
			}
		}
		if strings.ContainsRune(seg, '@') {
			// An address's own dots split it: hide the rest of the path.
			return strings.Join(append(segs[:i:i], "[key]"), ".")
		}
		if digits >= 6 || len(seg) > 64 {
			segs[i] = "[key]"
		}
	}
	return strings.Join(segs, ".")
}

// Dropped counts the differences not written (over the rate, or while
// writes lagged).
func (r *ShadowReporter) Dropped() int64 { return r.dropped.Load() }

// Run writes the queued records until ctx ends. A failed write is logged
// and its records dropped: the report is a sample, never worth holding
// events for.
func (r *ShadowReporter) Run(ctx context.Context) {
	r.once.Do(func() { r.queue = make(chan kafka.Message, 4*max(r.PerSecond, 1)) })
	tr := outage.OrNew(r.Outage, "Kafka", "", r.Log)
	for {
		var batch []kafka.Message
		select {
		case <-ctx.Done():
			return
		case m := <-r.queue:
			batch = append(batch, m)
		}
	more:
		for len(batch) < 100 {
			select {
			case m := <-r.queue:
				batch = append(batch, m)
			default:
				break more
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := r.Producer.WriteMessages(wctx, batch...); err != nil && ctx.Err() == nil {
			r.dropped.Add(int64(len(batch)))
			// Not retried, so no success follows: a note, logged at most
			// once a minute and folded into a Kafka outage's summary.
			tr.Note("writing the shadow report failed; those differences are counted only", err.Error())
		}
		cancel()
	}
}

// ShadowSummary is a window of the shadow report topic, summed.
type ShadowSummary struct {
	Records int
	// Counts by output and kind; Paths by output, kind and path.
	Counts map[[2]string]int
	Paths  map[[3]string]int
	// Policies seen (live -> shadow).
	Policies map[string]int
}

// ReadShadowReport sums the records of topic from since on (all
// partitions, up to their end as of the call; since zero: from the
// start).
func ReadShadowReport(ctx context.Context, d *kafka.Dialer, brokers []string, topic string, since time.Time) (*ShadowSummary, error) {
	sum := &ShadowSummary{Counts: map[[2]string]int{}, Paths: map[[3]string]int{}, Policies: map[string]int{}}
	err := readRange(ctx, d, brokers, topic, since, time.Time{}, func(m *kafka.Message) {
		var rec ShadowRecord
		if json.Unmarshal(m.Value, &rec) != nil {
			return
		}
		sum.Records++
		digest := rec.Digest
		if len(digest) > 19 {
			digest = digest[:19] + "…"
		}
		sum.Policies[rec.Live+" -> "+rec.Shadow+" ("+digest+")"]++
		for _, df := range rec.Diffs {
			sum.Counts[[2]string{df.Output, df.Kind}]++
			if df.Path != "" {
				sum.Paths[[3]string{df.Output, df.Kind, df.Path}]++
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// ShadowRow is one output and kind of difference, with the paths most
// often concerned.
type ShadowRow struct {
	Output string `json:"output"` // "" for the event as a whole
	Kind   string `json:"difference"`
	Events int    `json:"events"`
	// Paths are the most frequent first, at most top of them; MorePaths
	// counts the others.
	Paths     []ShadowPath `json:"paths"`
	MorePaths int          `json:"more_paths,omitempty"`
}

// ShadowPath is one path and the events whose difference concerned it.
type ShadowPath struct {
	Path   string `json:"path"`
	Events int    `json:"events"`
}

// Rows are the summary's rows by output and kind, with at most top paths
// each.
func (s *ShadowSummary) Rows(top int) []ShadowRow {
	keys := make([][2]string, 0, len(s.Counts))
	for k := range s.Counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	rows := make([]ShadowRow, 0, len(keys))
	for _, k := range keys {
		var paths [][3]string
		for p := range s.Paths {
			if p[0] == k[0] && p[1] == k[1] {
				paths = append(paths, p)
			}
		}
		sort.Slice(paths, func(i, j int) bool {
			if s.Paths[paths[i]] != s.Paths[paths[j]] {
				return s.Paths[paths[i]] > s.Paths[paths[j]]
			}
			return paths[i][2] < paths[j][2]
		})
		r := ShadowRow{Output: k[0], Kind: k[1], Events: s.Counts[k], Paths: []ShadowPath{}}
		for i, p := range paths {
			if i == top {
				r.MorePaths = len(paths) - top
				break
			}
			r.Paths = append(r.Paths, ShadowPath{Path: p[2], Events: s.Paths[p]})
		}
		rows = append(rows, r)
	}
	return rows
}

// Print writes the summary as a table, with up to top paths per output
// and kind.
func (s *ShadowSummary) Print(w io.Writer, top int) {
	fmt.Fprintf(w, "%d events with differences", s.Records)
	for p, n := range s.Policies {
		fmt.Fprintf(w, "; policy %s: %d", p, n)
	}
	fmt.Fprintln(w)
	if s.Records == 0 {
		return
	}
	fmt.Fprintf(w, "%-20s %-22s %8s  %s\n", "output", "difference", "events", "paths (most frequent first)")
	for _, r := range s.Rows(top) {
		var names []string
		for _, p := range r.Paths {
			names = append(names, fmt.Sprintf("%s (%d)", p.Path, p.Events))
		}
		if r.MorePaths > 0 {
			names = append(names, fmt.Sprintf("+%d more", r.MorePaths))
		}
		out := r.Output
		if out == "" {
			out = "(event)"
		}
		fmt.Fprintf(w, "%-20s %-22s %8d  %s\n", out, r.Kind, r.Events, strings.Join(names, ", "))
	}
}
