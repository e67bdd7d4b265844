// Package representation builds the representation report: for each
// output and segment field, how the share of every segment value in the
// events an output was decided for (raw) compares with its share in the
// events written (clean), the consent rate per value, and which values
// consent filtering over- or under-represents beyond a ratio.
//
// Owns: the report's arithmetic and its text, JSON and chart forms. The
// counts come from elsewhere (consentd_segment_events_total, or the raw
// and clean topics, read by package kafkaops).
package representation

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Key names one count: an output's events whose segment field held a
// value.
type Key struct{ Output, Field, Value string }

// Pair is a value's count at both stages.
type Pair struct{ Raw, Clean int64 }

// Counts are the inputs of a report.
type Counts map[Key]Pair

// Add adds n events at stage raw (clean false) or clean.
func (c Counts) Add(k Key, clean bool, n int64) {
	p := c[k]
	if clean {
		p.Clean += n
	} else {
		p.Raw += n
	}
	c[k] = p
}

// Options shape a report.
type Options struct {
	// Top bounds the values listed per field, by raw count; the rest are
	// summed into "(other)". Default: 20.
	Top int
	// FlagRatio flags a value whose clean share is more than FlagRatio
	// times its raw share, or less than its raw share divided by it.
	// Default: 1.25.
	FlagRatio float64
	// MinEvents: values with fewer raw events are never flagged (their
	// shares are noise). Default: 30.
	MinEvents int64
}

func (o *Options) defaults() {
	if o.Top <= 0 {
		o.Top = 20
	}
	if o.FlagRatio <= 1 {
		o.FlagRatio = 1.25
	}
	if o.MinEvents <= 0 {
		o.MinEvents = 30
	}
}

// Report is the representation report.
type Report struct {
	FlagRatio float64  `json:"flag_ratio"`
	MinEvents int64    `json:"min_events"`
	Outputs   []Output `json:"outputs"`
	// Flagged counts the flagged rows of every output and field.
	Flagged int `json:"flagged"`
}

// Output is one output's fields.
type Output struct {
	Name   string  `json:"output"`
	Fields []Field `json:"fields"`
}

// Field is one segment field of an output.
type Field struct {
	Name string `json:"field"`
	// Raw and Clean are the output's events at each stage.
	Raw   int64 `json:"raw_events"`
	Clean int64 `json:"clean_events"`
	Rows  []Row `json:"values"`
}

// Row is one value of a field.
type Row struct {
	Value string `json:"value"`
	Raw   int64  `json:"raw_events"`
	Clean int64  `json:"clean_events"`
	// RawShare and CleanShare are the value's share of the field's
	// events at each stage (0 when the stage has none).
	RawShare   float64 `json:"raw_share"`
	CleanShare float64 `json:"clean_share"`
	// ConsentRate is Clean/Raw: the share of the value's events written.
	ConsentRate float64 `json:"consent_rate"`
	// Ratio is CleanShare/RawShare: above 1, consent filtering
	// over-represents the value; below, it under-represents it. In JSON,
	// -1 stands for infinity (clean events of a value with no raw ones,
	// which only inconsistent inputs give).
	Ratio float64 `json:"ratio"`
	// Flag is "over" or "under" when Ratio passes the flag ratio (and
	// the value has MinEvents raw events), else "".
	Flag string `json:"flag,omitempty"`
}

// Other is the row that sums the values past Top.
const Other = "(other)"

// Build computes the report from counts.
func Build(counts Counts, opts Options) *Report {
	opts.defaults()
	type of struct{ output, field string }
	groups := map[of]map[string]Pair{}
	for k, p := range counts {
		g := groups[of{k.Output, k.Field}]
		if g == nil {
			g = map[string]Pair{}
			groups[of{k.Output, k.Field}] = g
		}
		q := g[k.Value]
		q.Raw += p.Raw
		q.Clean += p.Clean
		g[k.Value] = q
	}
	r := &Report{FlagRatio: opts.FlagRatio, MinEvents: opts.MinEvents}
	byOutput := map[string]*Output{}
	var names []string
	for k := range groups {
		if byOutput[k.output] == nil {
			byOutput[k.output] = &Output{Name: k.output}
			names = append(names, k.output)
		}
	}
	sort.Strings(names)
	keys := make([]of, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].output != keys[j].output {
			return keys[i].output < keys[j].output
		}
		return keys[i].field < keys[j].field
	})
	for _, k := range keys {
		f := buildField(k.field, groups[k], opts)
		for _, row := range f.Rows {
			if row.Flag != "" {
				r.Flagged++
			}
		}
		o := byOutput[k.output]
		o.Fields = append(o.Fields, f)
	}
	for _, n := range names {
		r.Outputs = append(r.Outputs, *byOutput[n])
	}
	return r
}

func buildField(name string, values map[string]Pair, opts Options) Field {
	f := Field{Name: name}
	rows := make([]Row, 0, len(values))
	for v, p := range values {
		f.Raw += p.Raw
		f.Clean += p.Clean
		rows = append(rows, Row{Value: v, Raw: p.Raw, Clean: p.Clean})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Raw != rows[j].Raw {
			return rows[i].Raw > rows[j].Raw
		}
		return rows[i].Value < rows[j].Value
	})
	// Values past Top, and the counted "(other)", fold into one row.
	var kept []Row
	other := Row{Value: Other}
	for _, row := range rows {
		if row.Value == Other || len(kept) >= opts.Top {
			other.Raw += row.Raw
			other.Clean += row.Clean
			continue
		}
		kept = append(kept, row)
	}
	if other.Raw > 0 || other.Clean > 0 {
		kept = append(kept, other)
	}
	for i := range kept {
		row := &kept[i]
		row.RawShare = share(row.Raw, f.Raw)
		row.CleanShare = share(row.Clean, f.Clean)
		row.ConsentRate = share(row.Clean, row.Raw)
		switch {
		case row.RawShare > 0:
			row.Ratio = row.CleanShare / row.RawShare
		case row.CleanShare > 0:
			row.Ratio = math.Inf(1)
		}
		if row.Raw >= opts.MinEvents && f.Clean > 0 {
			if row.Ratio > opts.FlagRatio {
				row.Flag = "over"
			} else if row.Ratio < 1/opts.FlagRatio {
				row.Flag = "under"
			}
		}
	}
	f.Rows = kept
	return f
}

func share(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// WriteText prints the report as one table per output and field.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(r.Outputs) == 0 {
		b.WriteString("no segment counts: does the policy name segments (policy segments.fields), and has consentd decided events since?\n")
	}
	for _, o := range r.Outputs {
		for _, f := range o.Fields {
			fmt.Fprintf(&b, "%s / %s: %d raw events, %d clean (consent rate %.1f%%)\n", o.Name, f.Name, f.Raw, f.Clean, 100*share(f.Clean, f.Raw))
			fmt.Fprintf(&b, "  %-24s %9s %9s %8s %8s %8s %6s\n", "value", "raw", "clean", "raw%", "clean%", "consent", "ratio")
			for _, row := range f.Rows {
				flag := ""
				if row.Flag != "" {
					flag = fmt.Sprintf("  <- %s-represented (ratio past %.2f)", row.Flag, r.FlagRatio)
				}
				fmt.Fprintf(&b, "  %-24s %9d %9d %7.1f%% %7.1f%% %7.1f%% %6s%s\n", clip(row.Value, 24), row.Raw, row.Clean, 100*row.RawShare, 100*row.CleanShare, 100*row.ConsentRate, ratioText(row.Ratio), flag)
			}
		}
	}
	fmt.Fprintf(&b, "%d values flagged (clean share differs from raw share by more than %.2fx, values with at least %d raw events)\n", r.Flagged, r.FlagRatio, r.MinEvents)
	_, err := io.WriteString(w, b.String())
	return err
}

func ratioText(x float64) string {
	if math.IsInf(x, 1) {
		return "inf"
	}
	return fmt.Sprintf("%.2f", x)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	// JSON has no infinity: a value absent from raw but present in clean
	// (only possible with inconsistent inputs) gets ratio null.
	out := *r
	out.Outputs = make([]Output, len(r.Outputs))
	for i, o := range r.Outputs {
		o.Fields = append([]Field(nil), o.Fields...)
		for j := range o.Fields {
			rows := append([]Row(nil), o.Fields[j].Rows...)
			for k := range rows {
				if math.IsInf(rows[k].Ratio, 0) {
					rows[k].Ratio = -1
				}
			}
			o.Fields[j].Rows = rows
		}
		out.Outputs[i] = o
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
