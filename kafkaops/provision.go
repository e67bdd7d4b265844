package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/segmentio/kafka-go"
)

// TopicSpec is a topic consentd reads or writes, with the settings it
// must have (consentd topics create|check).
type TopicSpec struct {
	Name string `json:"name"`
	// Role says why consentd needs it: raw, clean (output NAME),
	// dead-letter, consent, shadow report.
	Role string `json:"role"`
	// Partitions to create it with.
	Partitions int `json:"partitions"`
	// Configs are settings it must have (checked; set when created).
	Configs map[string]string `json:"configs,omitempty"`
}

// TopicState is what check or create found for one topic.
type TopicState struct {
	TopicSpec
	// State: "ok", "created", "would create", "missing", "drift",
	// "altered", "would alter".
	State string `json:"state"`
	// Drift lists the settings that differ ("cleanup.policy is delete,
	// want compact"); for an altered topic, the settings changed.
	Drift []string `json:"drift,omitempty"`
	// Current holds the checked settings as the broker has them (a
	// setting the broker does not report is absent).
	Current map[string]string `json:"current,omitempty"`
	// HasPartitions is the partition count of an existing topic.
	HasPartitions int `json:"has_partitions,omitempty"`
	// Notes are what create --alter saw but leaves alone (a partition
	// count other than the plan's).
	Notes []string `json:"notes,omitempty"`
}

// CheckTopicSpecs reports, for every spec, whether its topic exists with
// the settings it must have.
func CheckTopicSpecs(ctx context.Context, client *kafka.Client, specs []TopicSpec) ([]TopicState, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("reading topic metadata: %w", err)
	}
	parts := map[string]int{}
	missing := map[string]bool{}
	for _, t := range meta.Topics {
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			missing[t.Name] = true
			continue
		}
		parts[t.Name] = len(t.Partitions)
	}
	req := &kafka.DescribeConfigsRequest{}
	for _, s := range specs {
		if !missing[s.Name] && len(s.Configs) > 0 {
			req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: slices.Sorted(maps.Keys(s.Configs))})
		}
	}
	have := map[string]map[string]string{}
	if len(req.Resources) > 0 {
		resp, err := client.DescribeConfigs(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("reading topic settings: %w", err)
		}
		for _, r := range resp.Resources {
			if r.Error != nil {
				return nil, fmt.Errorf("reading the settings of %s: %w", r.ResourceName, r.Error)
			}
			m := map[string]string{}
			for _, e := range r.ConfigEntries {
				m[e.ConfigName] = e.ConfigValue
			}
			have[r.ResourceName] = m
		}
	}
	var out []TopicState
	for _, s := range specs {
		st := TopicState{TopicSpec: s, State: "ok", HasPartitions: parts[s.Name], Current: have[s.Name]}
		if missing[s.Name] {
			st.State = "missing"
			out = append(out, st)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			if got := have[s.Name][k]; got != s.Configs[k] {
				st.Drift = append(st.Drift, fmt.Sprintf("%s is %q, want %q", k, got, s.Configs[k]))
			}
		}
		if len(st.Drift) > 0 {
			st.State = "drift"
		}
		out = append(out, st)
	}
	return out, nil
}

// CreateTopicSpecs creates the missing topics of specs with their
// partitions and settings (replication: the broker's default when
// replication is 0), unless dryRun; existing topics are left as they are
// (their drift is reported, never changed: AlterTopicSpecs changes it).
// It returns every topic's state afterwards.
func CreateTopicSpecs(ctx context.Context, client *kafka.Client, specs []TopicSpec, replication int, dryRun bool) ([]TopicState, error) {
	states, err := CheckTopicSpecs(ctx, client, specs)
	if err != nil {
		return nil, err
	}
	req := &kafka.CreateTopicsRequest{}
	for i := range states {
		if states[i].State != "missing" {
			continue
		}
		if dryRun {
			states[i].State = "would create"
			continue
		}
		tc := kafka.TopicConfig{Topic: states[i].Name, NumPartitions: states[i].Partitions, ReplicationFactor: -1}
		if replication > 0 {
			tc.ReplicationFactor = replication
		}
		for k, v := range states[i].Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	if len(req.Topics) == 0 {
		return states, nil
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("creating topics: %w", err)
	}
	for i := range states {
		if states[i].State != "missing" {
			continue
		}
		if e := resp.Errors[states[i].Name]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			return states, fmt.Errorf("creating %s: %w", states[i].Name, e)
		}
		states[i].State = "created"
	}
	return states, nil
}

// AlterTopicSpecs is CreateTopicSpecs, then sets the checked settings of
// every existing topic whose settings differ to the plan's (Kafka's
// IncrementalAlterConfigs: only those settings change, the topic's
// other settings stay). An altered topic's state is "altered" ("would
// alter" with dryRun, which changes nothing) and its Drift says what
// changed; a topic the broker refused to alter stays "drift", with the
// broker's answer in its Drift. Partition counts are never changed (see
// PlanAlterations).
func AlterTopicSpecs(ctx context.Context, client *kafka.Client, specs []TopicSpec, replication int, dryRun bool) ([]TopicState, error) {
	states, err := CreateTopicSpecs(ctx, client, specs, replication, dryRun)
	if err != nil {
		return states, err
	}
	req := &kafka.IncrementalAlterConfigsRequest{Resources: PlanAlterations(states)}
	if len(req.Resources) == 0 {
		return states, nil
	}
	if dryRun {
		for i := range states {
			if states[i].State == "drift" {
				states[i].State = "would alter"
			}
		}
		return states, nil
	}
	resp, err := client.IncrementalAlterConfigs(ctx, req)
	if err != nil {
		return states, fmt.Errorf("altering topic settings: %w", err)
	}
	failed := map[string]error{}
	for _, r := range resp.Resources {
		if r.Error != nil {
			failed[r.ResourceName] = r.Error
		}
	}
	for i := range states {
		if states[i].State != "drift" {
			continue
		}
		if e := failed[states[i].Name]; e != nil {
			states[i].Drift = append(states[i].Drift, fmt.Sprintf("not altered: %v", e))
			continue
		}
		states[i].State = "altered"
	}
	return states, nil
}

// PlanAlterations returns the settings to set, per topic in the "drift"
// state, for its checked settings to be the plan's; it adds a note to
// every existing topic whose partition count is not the plan's and
// leaves the count alone: Kafka cannot remove partitions, and adding
// some moves keys to other partitions, so that a key's records (a
// subject's consent, the events of a user) would no longer be in order.
func PlanAlterations(states []TopicState) []kafka.IncrementalAlterConfigsRequestResource {
	var out []kafka.IncrementalAlterConfigsRequestResource
	for i := range states {
		s := &states[i]
		if s.HasPartitions > 0 && s.Partitions > 0 && s.HasPartitions != s.Partitions {
			s.Notes = append(s.Notes, fmt.Sprintf("has %d partitions, the plan %d: partition counts are never changed", s.HasPartitions, s.Partitions))
		}
		if s.State != "drift" {
			continue
		}
		res := kafka.IncrementalAlterConfigsRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name}
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			if s.Current[k] != s.Configs[k] {
				res.Configs = append(res.Configs, kafka.IncrementalAlterConfigsRequestConfig{Name: k, Value: s.Configs[k], ConfigOperation: kafka.ConfigOperationSet})
			}
		}
		if len(res.Configs) > 0 {
			out = append(out, res)
		}
	}
	return out
}
