package app

import (
	"testing"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/policy"
)

func TestTopicPlanIncludesAggregates(t *testing.T) {
	pol, err := policy.FromBytes("p.yaml", []byte(`
version: v1
purposes: [analytics]
pseudonym_key: k1
outputs:
  - {name: analytics, topic: clean.analytics, require: [analytics]}
  - {name: dropped, topic: aggregates.dropped, kind: aggregate, of: analytics, epsilon: 1, delta: 1e-6}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Kafka.RawTopics = []string{"raw.events"}
	cfg.Kafka.DeadLetterTopic = "dlq"
	roles := map[string]string{}
	for _, ts := range TopicPlan(cfg, pol, 3) {
		roles[ts.Name] = ts.Role
	}
	if roles["aggregates.dropped"] != "aggregates (output dropped)" || roles["clean.analytics"] != "clean (output analytics)" {
		t.Fatalf("topic plan = %v, want the aggregates topic beside the clean one", roles)
	}
}
