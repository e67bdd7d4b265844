package representation

import (
	"fmt"
	"io"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricName is the counter the pipeline keeps the counts in.
const MetricName = "consentd_segment_events_total"

// FromMetrics reads the counts from a Prometheus text exposition (a
// consentd admin server's /metrics): the series of MetricName, by their
// purpose (the output's name), field, value and stage labels. The
// counts are those since the process started.
func FromMetrics(r io.Reader) (Counts, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	counts := Counts{}
	fam, ok := fams[MetricName]
	if !ok {
		return counts, nil
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		stage := labels["stage"]
		if stage != "raw" && stage != "clean" {
			return nil, fmt.Errorf("reading metrics: %s has stage %q, want raw or clean", MetricName, stage)
		}
		v := m.GetCounter().GetValue()
		counts.Add(Key{Output: labels["purpose"], Field: labels["field"], Value: labels["value"]}, stage == "clean", int64(v))
	}
	return counts, nil
}
