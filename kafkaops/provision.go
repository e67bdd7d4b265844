package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"sort"

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
	// State: "ok", "created", "would create", "missing", "drift".
	State string `json:"state"`
	// Drift lists the settings that differ ("cleanup.policy is delete,
	// want compact").
	Drift []string `json:"drift,omitempty"`
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
			var keys []string
			for k := range s.Configs {
				keys = append(keys, k)
			}
			req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: keys})
		}
	}
	have := map[string]map[string]string{}
	if len(req.Resources) > 0 {
		resp, err := client.DescribeConfigs(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("reading topic settings: %w", err)
		}
		for _, r := range resp.Resources {
			m := map[string]string{}
			for _, e := range r.ConfigEntries {
				m[e.ConfigName] = e.ConfigValue
			}
			have[r.ResourceName] = m
		}
	}
	var out []TopicState
	for _, s := range specs {
		st := TopicState{TopicSpec: s, State: "ok"}
		if missing[s.Name] {
			st.State = "missing"
			out = append(out, st)
			continue
		}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
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
// (their drift is reported, never changed). It returns every topic's
// state afterwards.
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
