package policy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
)

// aggregatePolicy is a policy with one clean output and, after it, the
// aggregate output agg (YAML flow mapping fields).
func aggregatePolicy(agg string) string {
	return `
version: v
purposes: [analytics]
pseudonym_key: k1
outputs:
  - {name: analytics, topic: clean.analytics, require: [analytics]}
  - {name: dropped, topic: agg.dropped, kind: aggregate, ` + agg + `}
`
}

func TestAggregateCompiles(t *testing.T) {
	p := compileSpec(t, aggregatePolicy(`of: analytics, window: 1h, group_by: [context.location.country, event], epsilon: 0.5, delta: 1e-6, max_groups: 2, max_per_group: 3, noise: gaussian, sum: {field: properties.revenue, min: 0, max: 200}`))
	if len(p.Outputs) != 1 || p.Outputs[0].Name != "analytics" {
		t.Fatalf("clean outputs = %v, want only analytics", p.Outputs)
	}
	if len(p.Aggregates) != 1 {
		t.Fatalf("aggregates = %v, want one", p.Aggregates)
	}
	a := p.Aggregates[0]
	if a.Name != "dropped" || a.Topic != "agg.dropped" || a.Of != "analytics" || a.OfIndex != 0 || a.Window != time.Hour ||
		len(a.GroupBy) != 2 || a.GroupBy[1].Name != "event" || a.Epsilon != 0.5 || a.Delta != 1e-6 || a.MaxGroups != 2 || a.MaxPerGroup != 3 ||
		a.Noise != NoiseGaussian || a.Sum == nil || a.Sum.Field.Name != "properties.revenue" || a.Sum.Min != 0 || a.Sum.Max != 200 {
		t.Fatalf("aggregate = %+v", a)
	}
	if got, want := a.String(), "aggregate dropped -> topic agg.dropped: events output analytics did not write, per 1h0m0s window by context.location.country, event, with the sum of properties.revenue clipped to [0, 200] per subject; gaussian noise, ε=0.5 δ=1e-06 per window, each subject in at most 2 group(s), 3 event(s) per group"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !strings.Contains(p.Summary(), "- "+a.String()+"\n") {
		t.Errorf("Summary does not list the aggregate:\n%s", p.Summary())
	}
	d := compileSpec(t, aggregatePolicy(`of: analytics, epsilon: 1, delta: 1e-6`)).Aggregates[0]
	if d.MaxSubjects != DefaultAggregateMaxSubjects || d.MaxGroupsPerWindow != DefaultAggregateMaxGroupsPerWindow {
		t.Fatalf("caps = %d subjects, %d groups; want the defaults", d.MaxSubjects, d.MaxGroupsPerWindow)
	}
	if d.Window != DefaultAggregateWindow || d.MaxGroups != 1 || d.MaxPerGroup != 1 || d.Noise != NoiseLaplace || d.Sum != nil || len(d.GroupBy) != 0 {
		t.Fatalf("defaults = %+v", d)
	}
}

func TestAggregateCounts(t *testing.T) {
	y := strings.Replace(aggregatePolicy(`of: analytics, epsilon: 1, delta: 1e-6`), "require: [analytics]}", "require: [analytics], when: {type: [track]}}", 1)
	p := compileSpec(t, y)
	a := p.Aggregates[0]
	for _, tt := range []struct {
		name, event string
		want        bool
	}{
		{"written", `{"type":"track","userId":"u","x":"granted"}`, false},
		{"denied", `{"type":"track","userId":"u"}`, true},
		{"denied, not selected by when", `{"type":"identify","userId":"u"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := consent.Record{}
			if strings.Contains(tt.event, "granted") {
				rec = granted(1, "analytics")
			}
			var doc event.Doc
			if err := doc.Parse([]byte(tt.event)); err != nil {
				t.Fatal(err)
			}
			d, err := (&Decider{Policy: p}).DecideAt(&doc, "u", rec, Times{})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Counts(&doc, d); got != tt.want {
				t.Errorf("Counts = %v, want %v (decision %+v)", got, tt.want, d.Outputs[0])
			}
		})
	}
}

func TestAggregateCompileErrors(t *testing.T) {
	ok := `of: analytics, epsilon: 1, delta: 1e-6`
	for _, tt := range []struct{ name, agg, want string }{
		{"no of", `epsilon: 1, delta: 1e-6`, "of: required"},
		{"unknown of", `of: ads, epsilon: 1, delta: 1e-6`, `of: "ads" is not a clean output`},
		{"of an aggregate", `of: dropped, epsilon: 1, delta: 1e-6`, `of: "dropped" is not a clean output`},
		{"no epsilon", `of: analytics, delta: 1e-6`, "epsilon: 0 must be at least 0.001"},
		{"negative epsilon", `of: analytics, epsilon: -1, delta: 1e-6`, "epsilon: -1 must be at least 0.001"},
		{"huge epsilon", `of: analytics, epsilon: 11, delta: 1e-6`, "epsilon: 11 must be at least 0.001 and at most 10"},
		// A tiny ε makes the threshold overflow (1.8e21 for ε = 1e-13,
		// k = 100, c = 1000 with Laplace noise).
		{"tiny epsilon", `of: analytics, epsilon: 1e-13, delta: 1e-6`, "epsilon: 1e-13 must be at least 0.001"},
		{"no delta", `of: analytics, epsilon: 1`, "delta: 0 must be at least 1e-12"},
		{"large delta", `of: analytics, epsilon: 1, delta: 0.1`, "delta: 0.1 must be at least 1e-12 and at most 0.001"},
		// With δ/2 below 2^-53 the Gaussian threshold is +Inf.
		{"tiny delta", `of: analytics, epsilon: 1, delta: 1e-16, noise: gaussian`, "delta: 1e-16 must be at least 1e-12"},
		{"k·c too large", ok + `, max_groups: 100, max_per_group: 1000`, "max_groups × max_per_group: 100000, at most 10000"},
		{"no subjects", ok + `, max_subjects: -1`, "max_subjects: -1 is out of range 1..100000000"},
		{"too many subjects", ok + `, max_subjects: 100000001`, "max_subjects: 100000001 is out of range"},
		{"too many groups per window", ok + `, max_groups_per_window: 10000001`, "max_groups_per_window: 10000001 is out of range 1..10000000"},
		{"k too large", ok + `, max_groups: 101`, "max_groups: 101 is out of range 1..100"},
		{"negative k", ok + `, max_groups: -1`, "max_groups: -1 is out of range"},
		{"c too large", ok + `, max_per_group: 1001`, "max_per_group: 1001 is out of range 1..1000"},
		{"short window", ok + `, window: 500ms`, "window: 500ms is shorter than 1s"},
		{"fractional window", ok + `, window: 1500ms`, "not a whole number of seconds"},
		{"bad window", ok + `, window: soon`, "window: time: invalid duration"},
		{"subject group", ok + `, group_by: [userId]`, `group_by: "userId" cannot be an aggregate field: it is a subject path`},
		{"identifier group", ok + `, group_by: [context.ip]`, `group_by: "context.ip" cannot be an aggregate field`},
		{"personal name group", ok + `, group_by: [properties.email]`, `group_by: "properties.email" cannot be an aggregate field`},
		{"wildcard group", ok + `, group_by: ["properties.*"]`, "wildcards are not allowed"},
		{"twice", ok + `, group_by: [event, event]`, `"event" listed twice`},
		{"too many groups", ok + `, group_by: [a, b, c, d, e]`, "group_by: 5 fields, at most 4"},
		{"require", ok + `, require: [analytics]`, "require, when, transforms and segments belong to clean outputs"},
		{"transforms", ok + `, transforms: [{drop_fields: [x]}]`, "require, when, transforms and segments belong to clean outputs"},
		{"noise", ok + `, noise: uniform`, `noise: "uniform" is not laplace or gaussian`},
		{"sum without bounds", ok + `, sum: {field: properties.revenue}`, "sum: min and max are required"},
		{"sum bounds reversed", ok + `, sum: {field: properties.revenue, min: 5, max: 5}`, "sum: min 5 must be below max 5"},
		{"personal sum", ok + `, sum: {field: properties.user_id, min: 0, max: 1}`, `sum.field: "properties.user_id" cannot be an aggregate field`},
		{"no topic", ok + `, topic: ""`, "topic: required"},
		{"clean topic", ok + `, topic: clean.analytics`, `topic "clean.analytics" is the clean topic of output analytics`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			y := aggregatePolicy(tt.agg)
			if tt.name == "no topic" || tt.name == "clean topic" {
				y = strings.Replace(y, "topic: agg.dropped, ", "", 1)
			}
			spec, err := ParseSpec("test.yaml", []byte(y))
			if err == nil {
				_, err = Compile(spec, testKeys(t))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCleanOutputErrorsNameTheFileIndex(t *testing.T) {
	spec, err := ParseSpec("test.yaml", []byte(`
version: v
purposes: [analytics]
pseudonym_key: k1
outputs:
  - {name: dropped, topic: aggs, kind: aggregate, of: analytics, epsilon: 1, delta: 1e-6}
  - {name: analytics, topic: clean.analytics}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(spec, nil); err == nil || !strings.Contains(err.Error(), "outputs[1] (analytics): require") {
		t.Fatalf("err = %v, want it to name outputs[1]", err)
	}
}

func TestAggregateFieldsOnCleanOutput(t *testing.T) {
	for _, tt := range []struct{ name, out, want string }{
		{"epsilon", `{name: a, topic: t, require: [analytics], epsilon: 1}`, "belong to outputs of kind aggregate"},
		{"unknown kind", `{name: a, topic: t, require: [analytics], kind: histogram}`, `kind "histogram": unknown`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec("test.yaml", []byte("version: v\npurposes: [analytics]\npseudonym_key: k1\noutputs: ["+tt.out+"]"))
			if err == nil {
				_, err = Compile(spec, testKeys(t))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestShippedAggregateExampleCompiles uncomments the aggregate output
// the shipped policy shows and compiles it.
func TestShippedAggregateExampleCompiles(t *testing.T) {
	data, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, example, found := strings.Cut(string(data), "Uncomment to use:\n")
	if !found {
		t.Fatal("the shipped policy shows no aggregate output")
	}
	var lines []string
	for _, l := range strings.Split(example, "\n") {
		if rest, ok := strings.CutPrefix(l, "  # "); ok {
			lines = append(lines, "  "+rest)
		}
	}
	p := compileSpec(t, text+"\n"+strings.Join(lines, "\n")+"\n")
	if len(p.Aggregates) != 1 || p.Aggregates[0].Of != "analytics" || p.Aggregates[0].Sum == nil || len(p.Outputs) != 3 {
		t.Fatalf("aggregates = %+v, outputs %d", p.Aggregates, len(p.Outputs))
	}
}
