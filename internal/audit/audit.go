package audit

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header names the auditor reads. They are the published contract of
// clean messages (README, "Clean and dead-letter messages"), spelled
// here again on purpose: the auditor shares no code with the writer.
const (
	hPolicyDigest   = "consentd-policy-sha256"
	hConsentVersion = "consentd-consent-version"
	hRetraction     = "consentd-retraction"
)

// Options configure a run.
type Options struct {
	// Dialer connects to Brokers (TLS, SASL as configured).
	Dialer  *kafka.Dialer
	Brokers []string
	// Topics to audit; default: every output topic of the policy.
	Topics []string
	// Since, when set, starts each partition at the first record at or
	// after it; else at the partition's start.
	Since time.Time
	// Progress, when set, is told the messages read so far and the total
	// to read.
	Progress func(done, total int64)
}

// Report is what a run found.
type Report struct {
	Messages    int64            `json:"messages"`
	Retractions int64            `json:"retractions"`
	ByKind      map[string]int64 `json:"findings_by_kind"`
	// Findings lists each message with findings (the first MaxListed).
	Findings []MessageFindings `json:"findings"`
	Total    int64             `json:"findings_total"`
	// Checked counts the messages of the auditor's subjects (--ids)
	// checked against their current consent records.
	Checked int64 `json:"checked_against_store"`
	// PerOutputVersions: the policy pseudonymizes consent versions per
	// output, so messages after a retraction are reported whatever
	// their version (a re-grant cannot be told from a leak).
	PerOutputVersions bool `json:"per_output_versions,omitempty"`
}

// MessageFindings are one message's findings.
type MessageFindings struct {
	At       string    `json:"at"` // topic/partition/offset
	Output   string    `json:"output"`
	Findings []Finding `json:"findings"`
}

// MaxListed bounds the messages listed in a report (all are counted).
const MaxListed = 1000

// Run reads every message of the topics, checks each, and returns the
// report. It reads up to each partition's end as of its start.
func Run(ctx context.Context, c *Checker, o Options) (*Report, error) {
	topics := o.Topics
	if len(topics) == 0 {
		for t := range c.Policy.Outputs {
			topics = append(topics, t)
		}
		sort.Strings(topics)
	}
	type span struct {
		topic      string
		partition  int
		start, end int64
	}
	var spans []span
	var total int64
	conn, err := dialAny(ctx, o)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, t := range topics {
		if c.Policy.Outputs[t] == nil {
			return nil, fmt.Errorf("topic %s is no output topic of policy %s", t, c.Policy.Version)
		}
		parts, err := conn.ReadPartitions(t)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", t, err)
		}
		for _, p := range parts {
			lc, err := o.Dialer.DialLeader(ctx, "tcp", o.Brokers[0], t, p.ID)
			if err != nil {
				return nil, fmt.Errorf("%s/%d: %w", t, p.ID, err)
			}
			first, last, err := lc.ReadOffsets()
			if err == nil && !o.Since.IsZero() {
				var at int64
				if at, err = lc.ReadOffset(o.Since); err == nil && at > first {
					first = at
				}
			}
			lc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s/%d: reading offsets: %w", t, p.ID, err)
			}
			if last > first {
				spans = append(spans, span{t, p.ID, first, last})
				total += last - first
			}
		}
	}
	rep := &Report{ByKind: map[string]int64{}, PerOutputVersions: c.Policy.PerOutput}
	progress := func() {
		if o.Progress != nil {
			o.Progress(rep.Messages+rep.Retractions, total)
		}
	}
	progress()
	for _, s := range spans {
		if err := c.readSpan(ctx, o, s.topic, s.partition, s.start, s.end, rep, progress); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func dialAny(ctx context.Context, o Options) (*kafka.Conn, error) {
	var err error
	for _, b := range o.Brokers {
		var conn *kafka.Conn
		if conn, err = o.Dialer.DialContext(ctx, "tcp", b); err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("connecting to Kafka: %w", err)
}

// readSpan checks the messages of one partition from start to end.
func (c *Checker) readSpan(ctx context.Context, o Options, topic string, partition int, start, end int64, rep *Report, progress func()) error {
	out := c.Policy.Outputs[topic]
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: o.Brokers, Dialer: o.Dialer, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return err
	}
	// retracted: per key, the consent version of its last retraction
	// (-1: a version that cannot be compared). withdrawn: per key, its
	// messages whose subject's current record denies the output, until a
	// retraction of the key follows (then they were retracted).
	retracted := map[string]int64{}
	withdrawn := map[string][]string{}
	defer func() {
		for _, ats := range withdrawn {
			for _, at := range ats {
				c.report(rep, at, out.Name, []Finding{{Kind: KindWithdrawn, Note: "the subject's current record denies a purpose the output requires, and no retraction of the key followed"}})
			}
		}
	}()
	last := time.Now()
	for {
		// A partition's end can lie past its last record (records
		// compacted away): a read that waits this long ends the span.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil && ctx.Err() == nil && fctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s/%d: %w", topic, partition, err)
		}
		at := fmt.Sprintf("%s/%d/%d", topic, partition, m.Offset)
		if header(&m, hRetraction) != "" {
			rep.Retractions++
			retracted[string(m.Key)] = version(header(&m, hConsentVersion), c.Policy.PerOutput)
			delete(withdrawn, string(m.Key))
		} else {
			rep.Messages++
			fs := c.Value(out, m.Value, m.Time)
			if d := header(&m, hPolicyDigest); d != c.Policy.Digest && !contains(c.AcceptDigests, d) {
				note := "decided by a policy whose digest is not the audited one's"
				if d == "" {
					note = "no policy digest header"
				}
				fs = append(fs, Finding{Kind: KindPolicy, Note: note})
			}
			if rv, ok := retracted[string(m.Key)]; ok {
				v := version(header(&m, hConsentVersion), c.Policy.PerOutput)
				if rv < 0 || v < 0 || v <= rv {
					fs = append(fs, Finding{Kind: KindAfterRetraction, Note: "written after its key's retraction, with no newer consent version"})
				}
			}
			if subject, ok := c.Subjects[string(m.Key)]; ok && c.Records != nil {
				rec, err := c.record(ctx, subject)
				if err != nil {
					return err
				}
				rep.Checked++
				if !rec.grants(out.Require) {
					withdrawn[string(m.Key)] = append(withdrawn[string(m.Key)], at)
				}
				if v := version(header(&m, hConsentVersion), c.Policy.PerOutput); v > 0 && rec.Found && v > rec.Version {
					fs = append(fs, Finding{Kind: KindVersionAhead, Note: fmt.Sprintf("the message names consent version %d, the store holds %d", v, rec.Version)})
				}
			}
			c.report(rep, at, out.Name, fs)
		}
		if time.Since(last) > 200*time.Millisecond || m.Offset+1 >= end {
			progress()
			last = time.Now()
		}
		if m.Offset+1 >= end {
			return nil
		}
	}
}

// report adds a message's findings to rep.
func (c *Checker) report(rep *Report, at, output string, fs []Finding) {
	if len(fs) == 0 {
		return
	}
	rep.Total += int64(len(fs))
	for _, f := range fs {
		rep.ByKind[f.Kind]++
	}
	if len(rep.Findings) < MaxListed {
		rep.Findings = append(rep.Findings, MessageFindings{At: at, Output: output, Findings: fs})
	}
}

// record returns subject's current record, read once per run.
func (c *Checker) record(ctx context.Context, subject string) (Record, error) {
	if r, ok := c.records[subject]; ok {
		return r, nil
	}
	r, err := c.Records.Record(ctx, subject)
	if err != nil {
		return Record{}, err
	}
	if c.records == nil {
		c.records = map[string]Record{}
	}
	c.records[subject] = r
	return r, nil
}

func (r Record) grants(purposes []string) bool {
	for _, p := range purposes {
		if !r.Found || !r.Granted[p] {
			return false
		}
	}
	return true
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// version reads a consent-version header: -1 when it cannot be compared
// (pseudonymized per output, or absent).
func version(s string, perOutput bool) int64 {
	if perOutput {
		return -1
	}
	if s == "none" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer, p *Policy) {
	fmt.Fprintf(w, "audited %d clean messages and %d retractions against policy %s (%s)\n", r.Messages, r.Retractions, p.Version, p.Digest)
	if r.Checked > 0 {
		fmt.Fprintf(w, "%d messages of the listed subjects checked against their current consent records (the store keeps no history)\n", r.Checked)
	}
	if r.PerOutputVersions {
		fmt.Fprintln(w, "note: consent versions are pseudonymized per output: any message after its key's retraction is reported")
	}
	if r.Total == 0 {
		fmt.Fprintln(w, "no findings")
		return
	}
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "%d findings:\n", r.Total)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-28s %d\n", k, r.ByKind[k])
	}
	for _, m := range r.Findings {
		for _, f := range m.Findings {
			fmt.Fprintf(w, "%s (%s): %s", m.At, m.Output, f.Kind)
			if f.Path != "" {
				fmt.Fprintf(w, " at %s", f.Path)
			}
			if f.Note != "" {
				fmt.Fprintf(w, ": %s", f.Note)
			}
			fmt.Fprintln(w)
		}
	}
}
