package policy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/consentd/consentd/event"
)

// AggregateSpec configures an output of kind aggregate: over tumbling
// windows of processing time, differentially private counts (and
// optionally bounded sums) of the events that the output named by Of
// did not write, grouped by non-personal fields, published to Topic.
// An aggregate has no require, when or transforms: it writes no event.
type AggregateSpec struct {
	// Of names the clean output whose unwritten events are counted: an
	// event counts when that output was eligible for it (a subject, not
	// filtered by when, not dead-lettered) and did not write it (consent
	// denied, pre-consent). Required.
	Of string `yaml:"of"`
	// Window is the length of the tumbling windows, a Go duration;
	// windows are aligned to multiples of it (UTC). Default: 1m; at
	// least 1s.
	Window string `yaml:"window"`
	// GroupBy are the fields counts are grouped by (their values, or
	// "(none)", "(redacted)"); each must be non-personal (see
	// NonPersonalPath). Default: none (one group); at most 4.
	GroupBy []string `yaml:"group_by"`
	// Epsilon is the privacy budget ε of one window. Required, at least
	// 1e-3, at most 10.
	Epsilon float64 `yaml:"epsilon"`
	// Delta is the δ of one window, spent on the threshold that hides
	// groups too small to release (and, with gaussian noise, on the
	// noise). Required, at least 1e-12, at most 1e-3.
	Delta float64 `yaml:"delta"`
	// MaxGroups (k) is how many groups one subject may add to in one
	// window: the first k it is seen in. Default: 1; at most 100.
	MaxGroups int `yaml:"max_groups"`
	// MaxPerGroup (c) is how many events of one subject count in one
	// group in one window. Default: 1; at most 1000, and k·c at most
	// 10000.
	MaxPerGroup int `yaml:"max_per_group"`
	// MaxSubjects caps the subjects one instance counts in one window:
	// a new subject's events beyond it are not counted. It bounds the
	// memory (about 100 to 150 bytes a subject) and release time of a window.
	// Default: 1000000; at most 100000000.
	MaxSubjects int `yaml:"max_subjects"`
	// MaxGroupsPerWindow caps the distinct groups one instance counts in
	// one window: events of a new group beyond it are not counted.
	// Default: 100000; at most 10000000.
	MaxGroupsPerWindow int `yaml:"max_groups_per_window"`
	// Sum, if set, adds a noisy sum of a numeric field per group (each
	// subject's sum per group clipped to [min, max]). Default: none.
	Sum *AggregateSumSpec `yaml:"sum"`
	// Noise is laplace or gaussian. Default: laplace.
	Noise string `yaml:"noise"`
}

// AggregateSumSpec configures an aggregate's bounded sum.
type AggregateSumSpec struct {
	// Field holds the number summed (absent or not a number: 0).
	// Required, non-personal.
	Field string `yaml:"field"`
	// Min and Max clip each subject's sum per group and window. Required,
	// Min < Max.
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
}

// OutputKindAggregate is OutputSpec.Kind of an aggregate output.
const OutputKindAggregate = "aggregate"

// Aggregate defaults and bounds.
const (
	DefaultAggregateWindow = time.Minute
	MinAggregateWindow     = time.Second
	MaxAggregateGroupBy    = 4
	MinAggregateEpsilon    = 1e-3
	MaxAggregateEpsilon    = 10
	MinAggregateDelta      = 1e-12
	MaxAggregateDelta      = 1e-3
	MaxAggregateGroups     = 100
	MaxAggregatePerGroup   = 1000
	// MaxAggregateContribution bounds k·c (max_groups × max_per_group):
	// with the bounds on ε and δ it keeps the release threshold a finite
	// number far below 2^53.
	MaxAggregateContribution = 10000

	DefaultAggregateMaxSubjects        = 1_000_000
	MaxAggregateMaxSubjects            = 100_000_000
	DefaultAggregateMaxGroupsPerWindow = 100_000
	MaxAggregateMaxGroupsPerWindow     = 10_000_000
)

// Aggregate noise mechanisms.
const (
	NoiseLaplace  = "laplace"
	NoiseGaussian = "gaussian"
)

// Aggregate is a compiled aggregate output.
type Aggregate struct {
	Name  string
	Topic string
	// Of is the clean output counted; OfIndex its index in
	// Policy.Outputs.
	Of      string
	OfIndex int
	Window  time.Duration
	GroupBy []SegmentField
	Epsilon float64
	Delta   float64
	// MaxGroups (k) and MaxPerGroup (c) bound one subject's
	// contributions per window.
	MaxGroups   int
	MaxPerGroup int
	// MaxSubjects and MaxGroupsPerWindow cap one instance's window.
	MaxSubjects        int
	MaxGroupsPerWindow int
	// Sum is nil without a sum.
	Sum   *AggregateSum
	Noise string
}

// AggregateSum is a compiled bounded sum.
type AggregateSum struct {
	Field    SegmentField
	Min, Max float64
}

// Counts reports whether the aggregate counts the event doc that d
// decided: the output Of was eligible for it (its when filter selects
// the event) and did not write it. d must not be nil (a dead-lettered
// event is never counted). Consent is decided before the filter, so a
// denied event's reason does not say whether the filter selects it: the
// filter is read here.
func (a *Aggregate) Counts(doc *event.Doc, d *Decision) bool {
	od := &d.Outputs[a.OfIndex]
	if od.Write || od.Reason == ReasonFiltered {
		return false
	}
	typ, name := TypeAndName(doc)
	return od.Output.Selects(typ, name)
}

// String describes the aggregate in one line (consentd policy check).
func (a *Aggregate) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "aggregate %s -> topic %s: events output %s did not write, per %s window", a.Name, a.Topic, a.Of, a.Window)
	if len(a.GroupBy) > 0 {
		names := make([]string, len(a.GroupBy))
		for i, f := range a.GroupBy {
			names[i] = f.Name
		}
		fmt.Fprintf(&b, " by %s", strings.Join(names, ", "))
	}
	if a.Sum != nil {
		fmt.Fprintf(&b, ", with the sum of %s clipped to [%g, %g] per subject", a.Sum.Field.Name, a.Sum.Min, a.Sum.Max)
	}
	fmt.Fprintf(&b, "; %s noise, ε=%g δ=%g per window, each subject in at most %d group(s), %d event(s) per group", a.Noise, a.Epsilon, a.Delta, a.MaxGroups, a.MaxPerGroup)
	return b.String()
}

// splitOutputs returns spec with only its clean outputs, the aggregate
// ones, and the index in the file of each clean output (nil when there
// are no aggregates): the rest of the compiler, and every reader of
// Policy.Outputs, sees clean outputs only.
func splitOutputs(spec *Spec) (*Spec, []OutputSpec, []int) {
	var clean, aggs []OutputSpec
	var index []int
	for i, o := range spec.Outputs {
		if o.Kind == OutputKindAggregate {
			aggs = append(aggs, o)
		} else {
			clean = append(clean, o)
			index = append(index, i)
		}
	}
	if len(aggs) == 0 {
		return spec, nil, nil
	}
	s := *spec
	s.Outputs = clean
	return &s, aggs, index
}

// aggregates compiles the aggregate outputs, after the clean ones.
func (c *compiler) aggregates(specs []OutputSpec) {
	for i := range c.spec.Outputs {
		if k := c.spec.Outputs[i].Kind; k != "" {
			c.fail("outputs[%s]: kind %q: unknown (\"\" for a clean output, or %q)", c.spec.Outputs[i].Name, k, OutputKindAggregate)
		}
		if as := c.spec.Outputs[i].AggregateSpec; as.Of != "" || as.Window != "" || as.GroupBy != nil || as.Epsilon != 0 || as.Delta != 0 || as.MaxGroups != 0 || as.MaxPerGroup != 0 || as.MaxSubjects != 0 || as.MaxGroupsPerWindow != 0 || as.Sum != nil || as.Noise != "" {
			c.fail("outputs[%s]: of, window, group_by, epsilon, delta, max_groups, max_per_group, max_subjects, max_groups_per_window, sum and noise belong to outputs of kind aggregate", c.spec.Outputs[i].Name)
		}
	}
	for i := range specs {
		c.aggregate(&specs[i])
	}
}

func (c *compiler) aggregate(os *OutputSpec) {
	where := fmt.Sprintf("outputs[%s]", os.Name)
	a := &Aggregate{Name: os.Name, Topic: os.Topic, Of: os.Of, OfIndex: -1, Epsilon: os.Epsilon, Delta: os.Delta,
		MaxGroups: os.MaxGroups, MaxPerGroup: os.MaxPerGroup, MaxSubjects: os.MaxSubjects, MaxGroupsPerWindow: os.MaxGroupsPerWindow,
		Window: DefaultAggregateWindow, Noise: os.Noise}
	c.claimName(where, os.Name)
	if strings.TrimSpace(os.Topic) == "" {
		c.fail("%s: topic: required (the aggregates topic)", where)
	}
	if len(os.Require) > 0 || os.When != nil || len(os.Transforms) > 0 || os.Segments != nil {
		c.fail("%s: require, when, transforms and segments belong to clean outputs: an aggregate counts what output %q did not write", where, os.Of)
	}
	for j, o := range c.p.Outputs {
		if o.Name == os.Of {
			a.OfIndex = j
		}
		if o.Topic == os.Topic {
			c.fail("%s: topic %q is the clean topic of output %s", where, os.Topic, o.Name)
		}
	}
	if os.Of == "" {
		c.fail("%s: of: required (the clean output whose unwritten events are counted)", where)
	} else if a.OfIndex < 0 {
		c.fail("%s: of: %q is not a clean output of the policy", where, os.Of)
	}
	if os.Window != "" {
		d, err := time.ParseDuration(os.Window)
		switch {
		case err != nil:
			c.fail("%s: window: %w", where, err)
		case d < MinAggregateWindow:
			c.fail("%s: window: %s is shorter than %s", where, os.Window, MinAggregateWindow)
		case d%time.Second != 0:
			c.fail("%s: window: %s is not a whole number of seconds", where, os.Window)
		default:
			a.Window = d
		}
	}
	if len(os.GroupBy) > MaxAggregateGroupBy {
		c.fail("%s: group_by: %d fields, at most %d (each field multiplies the groups, and small groups are not released)", where, len(os.GroupBy), MaxAggregateGroupBy)
	}
	seen := map[string]bool{}
	for _, f := range os.GroupBy {
		if seen[f] {
			c.fail("%s: group_by: %q listed twice", where, f)
			continue
		}
		seen[f] = true
		if sf, ok := c.aggregateField(where+": group_by", f); ok {
			a.GroupBy = append(a.GroupBy, sf)
		}
	}
	if !(os.Epsilon >= MinAggregateEpsilon) || os.Epsilon > MaxAggregateEpsilon {
		c.fail("%s: epsilon: %v must be at least %g and at most %d (the privacy budget of one window; 1 is common)", where, os.Epsilon, MinAggregateEpsilon, MaxAggregateEpsilon)
	}
	if !(os.Delta >= MinAggregateDelta) || os.Delta > MaxAggregateDelta {
		c.fail("%s: delta: %v must be at least %g and at most %g (it bounds the chance that a group of one subject is released; 1e-6 is common)", where, os.Delta, MinAggregateDelta, MaxAggregateDelta)
	}
	if a.MaxGroups == 0 {
		a.MaxGroups = 1
	}
	if a.MaxGroups < 1 || a.MaxGroups > MaxAggregateGroups {
		c.fail("%s: max_groups: %d is out of range 1..%d", where, a.MaxGroups, MaxAggregateGroups)
	}
	if a.MaxPerGroup == 0 {
		a.MaxPerGroup = 1
	}
	if a.MaxPerGroup < 1 || a.MaxPerGroup > MaxAggregatePerGroup {
		c.fail("%s: max_per_group: %d is out of range 1..%d", where, a.MaxPerGroup, MaxAggregatePerGroup)
	}
	if a.MaxGroups*a.MaxPerGroup > MaxAggregateContribution {
		c.fail("%s: max_groups × max_per_group: %d, at most %d (one subject's largest contribution to a window; the noise and threshold grow with it)", where, a.MaxGroups*a.MaxPerGroup, MaxAggregateContribution)
	}
	if a.MaxSubjects == 0 {
		a.MaxSubjects = DefaultAggregateMaxSubjects
	}
	if a.MaxSubjects < 1 || a.MaxSubjects > MaxAggregateMaxSubjects {
		c.fail("%s: max_subjects: %d is out of range 1..%d", where, a.MaxSubjects, MaxAggregateMaxSubjects)
	}
	if a.MaxGroupsPerWindow == 0 {
		a.MaxGroupsPerWindow = DefaultAggregateMaxGroupsPerWindow
	}
	if a.MaxGroupsPerWindow < 1 || a.MaxGroupsPerWindow > MaxAggregateMaxGroupsPerWindow {
		c.fail("%s: max_groups_per_window: %d is out of range 1..%d", where, a.MaxGroupsPerWindow, MaxAggregateMaxGroupsPerWindow)
	}
	switch a.Noise {
	case "":
		a.Noise = NoiseLaplace
	case NoiseLaplace, NoiseGaussian:
	default:
		c.fail("%s: noise: %q is not laplace or gaussian", where, a.Noise)
	}
	if s := os.Sum; s != nil {
		sum := &AggregateSum{}
		if s.Field == "" {
			c.fail("%s: sum.field: required", where)
		} else if sf, ok := c.aggregateField(where+": sum.field", s.Field); ok {
			sum.Field = sf
		}
		switch {
		case s.Min == nil || s.Max == nil:
			c.fail("%s: sum: min and max are required (each subject's sum per group is clipped to them)", where)
		case math.IsInf(*s.Min, 0) || math.IsNaN(*s.Min) || math.IsInf(*s.Max, 0) || math.IsNaN(*s.Max) || !(*s.Min < *s.Max):
			c.fail("%s: sum: min %v must be below max %v, both finite", where, *s.Min, *s.Max)
		default:
			sum.Min, sum.Max = *s.Min, *s.Max
		}
		a.Sum = sum
	}
	c.p.Aggregates = append(c.p.Aggregates, a)
}

// aggregateField parses an aggregate's field and refuses it when it
// could identify someone.
func (c *compiler) aggregateField(where, f string) (SegmentField, bool) {
	path, err := event.ParsePath(f)
	if err == nil && path.HasWildcard() {
		err = fmt.Errorf("wildcards are not allowed")
	}
	if err != nil {
		c.fail("%s: %q: %w", where, f, err)
		return SegmentField{}, false
	}
	if err := c.NonPersonalPath(path); err != nil {
		c.fail("%s: %q cannot be an aggregate field: %w", where, f, err)
		return SegmentField{}, false
	}
	return SegmentField{Name: f, Path: path}, true
}
