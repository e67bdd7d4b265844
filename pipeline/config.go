package pipeline

import (
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/policy"
)

// Tuning constants: fixed behaviour that is not worth a setting, named
// and documented here in one place.
const (
	// FetchMaxWait bounds how long a partition fetch waits for data.
	FetchMaxWait = 250 * time.Millisecond
	// JoinGroupBackoff is the wait between failed attempts to join the
	// consumer group.
	JoinGroupBackoff = time.Second
	// FetchBackoffMax caps the wait between failed fetches (from
	// RunnerConfig.Backoff's Min, doubling): a fetch recovers by itself,
	// and a longer wait only delays events.
	FetchBackoffMax = time.Second
	// WriteQueueDepth is how many decided batches per partition may wait
	// for their writes (bounds memory, latency and the work redone after
	// a rebalance). One batch decided while another is written keeps
	// both busy; more only hold events longer.
	WriteQueueDepth = 2
	// UnknownTopicGrace is how long a topic may be unknown to the broker
	// before its messages count as refused for good (a deleted topic)
	// rather than as a metadata delay (a topic just created).
	UnknownTopicGrace = 30 * time.Second
)

// Defaults of RunnerConfig.
const (
	DefaultSessionTimeout   = 10 * time.Second
	DefaultRebalanceTimeout = 30 * time.Second
	DefaultMaxFetchBytes    = kafkax.DefaultMaxFetchBytes
	DefaultBatchSize        = 1000
	DefaultBatchLinger      = 5 * time.Millisecond
	DefaultCommitInterval   = 500 * time.Millisecond
	DefaultShutdownGrace    = 20 * time.Second
	DefaultMaxWriteBytes    = 1000000
)

// RunnerConfig configures a Runner. Call ApplyDefaults, then Validate
// (NewRunner does both).
type RunnerConfig struct {
	// Brokers to bootstrap from. Required.
	Brokers []string
	// Topics are the raw topics to consume. Required.
	Topics []string
	// GroupID of the consumer group. Required.
	GroupID string
	// Dialer connects to the brokers (TLS, SASL). Default: kafka-go's
	// default dialer.
	Dialer *kafka.Dialer
	// SessionTimeout of the group membership. Default: 10s.
	SessionTimeout time.Duration
	// RebalanceTimeout of the group. Default: 30s.
	RebalanceTimeout time.Duration
	// StartOffset for partitions without a committed offset:
	// kafka.FirstOffset or kafka.LastOffset. Default: kafka.FirstOffset.
	StartOffset int64
	// MaxFetchBytes bounds one fetch response; it must exceed the largest
	// raw message. Default: 10 MiB.
	MaxFetchBytes int
	// BatchSize is the most messages decided together per partition.
	// Default: 1000.
	BatchSize int
	// BatchLinger is the longest wait to fill a batch once it has one
	// message; the batch goes sooner when the partition's writer has
	// nothing left to write (adaptive linger). Default: 5ms.
	BatchLinger time.Duration
	// CommitInterval between commits of acknowledged offsets.
	// Default: 500ms.
	CommitInterval time.Duration
	// Backoff bounds the wait between failed writes. Default: 100ms to 5s.
	Backoff retry.Backoff
	// ShutdownGrace bounds draining after the context ends. Default: 20s.
	ShutdownGrace time.Duration
	// DeadLetterTopic receives the raw events whose clean writes Kafka
	// refuses for good (too large, invalid, topic gone). Required.
	DeadLetterTopic string
	// MaxWriteBytes is the largest message the target topics accept (the
	// smallest max.message.bytes among them, less overhead); a larger
	// clean message is dead-lettered and a larger dead letter truncated
	// before any write. The Producer must not batch more than this.
	// Default: 1000000.
	MaxWriteBytes int
	// NewProcessor returns a processor for one partition worker. Required.
	NewProcessor func() BatchProcessor
	// Producer writes clean messages and dead letters. Required.
	Producer Producer
	// Hooks observe the runner: BatchWrittenHook, ProduceHook, StageHook,
	// CommitHook, GenerationHook and hooks.ConditionHook (CondGroup and
	// CondKafkaWrite). Default: none.
	Hooks hooks.List
	// Fence holds clean writes while the instance may not write and lets
	// revocation barriers wait for the writes in flight. Default: every
	// write passes (no barrier).
	Fence WriteFence
	// Log receives progress and warnings. Default: none.
	Log *zap.Logger
	// Outage receives the failures and recoveries of every Kafka loop
	// (group join, fetches, writes, commits, kafka-go's own errors), so
	// that an outage logs a few lines rather than one per retry.
	// Default: a Tracker of its own, on Log.
	Outage *outage.Tracker
}

// ApplyDefaults fills in every unset optional field.
func (c *RunnerConfig) ApplyDefaults() {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.SessionTimeout, DefaultSessionTimeout)
	setDur(&c.RebalanceTimeout, DefaultRebalanceTimeout)
	setDur(&c.BatchLinger, DefaultBatchLinger)
	setDur(&c.CommitInterval, DefaultCommitInterval)
	setDur(&c.ShutdownGrace, DefaultShutdownGrace)
	c.Backoff.ApplyDefaults()
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxWriteBytes == 0 {
		c.MaxWriteBytes = DefaultMaxWriteBytes
	}
	if c.Fence == nil {
		c.Fence = openFence{}
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	c.Outage = outage.OrNew(c.Outage, "Kafka", "", c.Log)
}

// Validate reports every problem with c, after ApplyDefaults.
func (c *RunnerConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Brokers) == 0 {
		bad("brokers: at least one is required")
	}
	if len(c.Topics) == 0 {
		bad("topics: at least one raw topic is required")
	}
	if c.GroupID == "" {
		bad("group id is required")
	}
	if c.DeadLetterTopic == "" {
		bad("dead-letter topic is required")
	}
	if c.NewProcessor == nil || c.Producer == nil {
		bad("a processor factory and a producer are required")
	}
	if c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset {
		bad("start offset must be kafka.FirstOffset or kafka.LastOffset, not %d", c.StartOffset)
	}
	for name, d := range map[string]time.Duration{"session timeout": c.SessionTimeout, "rebalance timeout": c.RebalanceTimeout,
		"batch linger": c.BatchLinger, "commit interval": c.CommitInterval, "shutdown grace": c.ShutdownGrace} {
		if d < 0 {
			bad("%s must not be negative, got %v", name, d)
		}
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.BatchSize < 0 || c.MaxFetchBytes < 0 || c.MaxWriteBytes < 0 {
		bad("batch size, max fetch bytes and max write bytes must not be negative")
	}
	if c.MaxWriteBytes > 0 && c.MaxWriteBytes < 4096 {
		bad("max write bytes %d is too small to hold a truncated dead letter (at least 4096)", c.MaxWriteBytes)
	}
	return errors.Join(errs...)
}

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	// Policy decides; required.
	Policy *policy.Policy
	// Store answers consent lookups (normally consent.Linked over a
	// consent.Cache over Redis); required.
	Store consent.Store
	// Changes, if set, makes batches decided before a consent change be
	// decided again just before they are written.
	Changes ChangeTracker
	// Linker, if set, stores identity links before the batch's lookups.
	Linker Linker
	// DeadLetterTopic receives undecidable events; required.
	DeadLetterTopic string
	// MaxMessageBytes: larger raw events are dead-lettered as too_large.
	// Default: 1 MiB.
	MaxMessageBytes int
	// Backoff bounds the wait between failed lookups (they are retried
	// until they succeed: fail closed). Default: 100ms to 5s.
	Backoff retry.Backoff
	// Hooks are told when the consent store fails and recovers
	// (hooks.ConditionHook, CondConsentStore). Default: none.
	Hooks hooks.List
	// CopyHeaders names raw headers copied as they are to every clean
	// message (e.g. traceparent); dead letters keep every raw header
	// anyway. Default: none.
	CopyHeaders []string
	// Shadow, if set, is a candidate policy decided beside Policy on the
	// events ShadowEvery selects; it writes nothing. Every difference goes
	// to the ShadowHooks among Hooks. Default: none.
	Shadow *policy.Policy
	// ShadowEvery decides the shadow policy on one event in ShadowEvery
	// (its cost: a second decision per event evaluated). Default: 1.
	ShadowEvery int
	// Log receives warnings and debug explanations. Default: none.
	Log *zap.Logger
	// StoreOutage receives the consent store's failures and recoveries
	// as the lookups see them, so that an outage logs a few lines rather
	// than one per retry. Default: a Tracker of its own, on Log.
	StoreOutage *outage.Tracker
	// AggregateSeed keys the subject hash of aggregate contributions
	// (Accounting.Contributions); every processor of one factory shares
	// it. Default: a random seed.
	AggregateSeed maphash.Seed
}

// DefaultMaxMessageBytes is the default of ProcessorConfig.MaxMessageBytes.
const DefaultMaxMessageBytes = 1 << 20

// ApplyDefaults fills in every unset optional field.
func (c *ProcessorConfig) ApplyDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	c.Backoff.ApplyDefaults()
	if c.AggregateSeed == (maphash.Seed{}) {
		c.AggregateSeed = maphash.MakeSeed()
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
}

// Validate reports every problem with c, after ApplyDefaults.
func (c *ProcessorConfig) Validate() error {
	var errs []error
	if c.Policy == nil {
		errs = append(errs, errors.New("processor: a policy is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("processor: a consent store is required"))
	}
	if c.DeadLetterTopic == "" {
		errs = append(errs, errors.New("processor: a dead-letter topic is required"))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("processor: max message bytes must not be negative, got %d", c.MaxMessageBytes))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("processor: %w", err))
	}
	return errors.Join(errs...)
}
