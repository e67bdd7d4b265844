package kafkaops

import (
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestPlanAlterations: only topics in drift are altered, and only in the
// checked settings whose values differ; partition counts are noted,
// never planned.
func TestPlanAlterations(t *testing.T) {
	states := []TopicState{
		{TopicSpec: TopicSpec{Name: "raw", Partitions: 8}, State: "ok", HasPartitions: 8},
		{TopicSpec: TopicSpec{Name: "clean", Partitions: 8, Configs: map[string]string{"retention.ms": "2592000000"}},
			State: "drift", HasPartitions: 3, Current: map[string]string{"retention.ms": "604800000"}},
		{TopicSpec: TopicSpec{Name: "consent", Partitions: 8, Configs: map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "1"}},
			State: "drift", HasPartitions: 8, Current: map[string]string{"cleanup.policy": "delete", "min.compaction.lag.ms": "0"}},
		{TopicSpec: TopicSpec{Name: "same", Partitions: 8, Configs: map[string]string{"retention.ms": "1"}},
			State: "ok", HasPartitions: 8, Current: map[string]string{"retention.ms": "1"}},
		{TopicSpec: TopicSpec{Name: "new", Partitions: 8, Configs: map[string]string{"retention.ms": "1"}}, State: "missing"},
	}
	got := PlanAlterations(states)
	set := kafka.ConfigOperationSet
	want := []kafka.IncrementalAlterConfigsRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "clean", Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "retention.ms", Value: "2592000000", ConfigOperation: set}}},
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "consent", Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "cleanup.policy", Value: "compact", ConfigOperation: set},
			{Name: "segment.ms", Value: "1", ConfigOperation: set}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PlanAlterations:\n got %+v\nwant %+v", got, want)
	}
	for _, s := range states {
		noted := len(s.Notes) == 1 && strings.Contains(s.Notes[0], "has 3 partitions, the plan 8") && strings.Contains(s.Notes[0], "never changed")
		if (s.Name == "clean") != noted {
			t.Errorf("%s: notes %q", s.Name, s.Notes)
		}
	}
}

// TestPlanAlterationsNothingToDo: topics as planned, or missing, need no
// alteration.
func TestPlanAlterationsNothingToDo(t *testing.T) {
	states := []TopicState{
		{TopicSpec: TopicSpec{Name: "a", Partitions: 4, Configs: map[string]string{"cleanup.policy": "compact"}},
			State: "ok", HasPartitions: 4, Current: map[string]string{"cleanup.policy": "compact"}},
		{TopicSpec: TopicSpec{Name: "b", Partitions: 4}, State: "would create"},
	}
	if got := PlanAlterations(states); len(got) != 0 {
		t.Errorf("PlanAlterations = %+v, want nothing", got)
	}
	for _, s := range states {
		if len(s.Notes) != 0 {
			t.Errorf("%s: notes %q", s.Name, s.Notes)
		}
	}
}
