package config

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

type noStore struct{}

func (noStore) Lookup(context.Context, []string) (map[string]consent.Record, error) {
	return map[string]consent.Record{}, nil
}

type noProducer struct{}

func (noProducer) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// TestComponentDefaultsAreTheConfigDefaults: every component config
// validates its zero value with defaults applied (given only what is
// required), and the configuration's defaults are the components' own:
// one source per setting.
func TestComponentDefaultsAreTheConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()

	rc := pipeline.RunnerConfig{Brokers: []string{"b:9092"}, Topics: []string{"raw"}, GroupID: "g", DeadLetterTopic: "dlq",
		NewProcessor: func() pipeline.BatchProcessor { return nil }, Producer: noProducer{}}
	rc.ApplyDefaults()
	if err := rc.Validate(); err != nil {
		t.Fatalf("RunnerConfig with defaults: %v", err)
	}
	pc := pipeline.ProcessorConfig{Policy: &policy.Policy{}, Store: noStore{}, DeadLetterTopic: "dlq"}
	pc.ApplyDefaults()
	if err := pc.Validate(); err != nil {
		t.Fatalf("ProcessorConfig with defaults: %v", err)
	}
	var b retry.Backoff
	b.ApplyDefaults()
	if err := b.Validate(); err != nil {
		t.Fatalf("Backoff with defaults: %v", err)
	}
	for _, tc := range []struct {
		setting        string
		config, compon any
	}{
		{"kafka.session_timeout", c.Kafka.SessionTimeout, rc.SessionTimeout},
		{"kafka.rebalance_timeout", c.Kafka.RebalanceTimeout, rc.RebalanceTimeout},
		{"kafka.max_message_bytes", c.Kafka.MaxMessageBytes, pc.MaxMessageBytes},
		{"pipeline.batch_size", c.Pipeline.BatchSize, rc.BatchSize},
		{"pipeline.batch_linger", c.Pipeline.BatchLinger, rc.BatchLinger},
		{"pipeline.commit_interval", c.Pipeline.CommitInterval, rc.CommitInterval},
		{"pipeline.shutdown_grace", c.Pipeline.ShutdownGrace, rc.ShutdownGrace},
		{"pipeline.retry_backoff_min", c.Pipeline.RetryBackoffMin, rc.Backoff.Min},
		{"pipeline.retry_backoff_max", c.Pipeline.RetryBackoffMax, rc.Backoff.Max},
		{"pipeline.retry_backoff_min (processor)", c.Pipeline.RetryBackoffMin, pc.Backoff.Min},
		{"pipeline.retry_backoff_min (backoff)", c.Pipeline.RetryBackoffMin, b.Min},
	} {
		if tc.config != tc.compon {
			t.Errorf("%s: configuration default %v, component default %v", tc.setting, tc.config, tc.compon)
		}
	}
	if c.Pseudonymization.Retention != 7*24*time.Hour || *c.Cache.Size <= 0 || c.Cache.TTL <= 0 || c.Redis.Timeout <= 0 {
		t.Errorf("defaults: retention %v, cache %d/%v, redis timeout %v", c.Pseudonymization.Retention, *c.Cache.Size, c.Cache.TTL, c.Redis.Timeout)
	}
}
