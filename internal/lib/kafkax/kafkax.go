// Package kafkax holds what every part of consentd that talks to Kafka
// through kafka-go shares: the one table of which Kafka errors are
// retriable and why (Classify), the one constructor of readers
// (NewReader) and the adapter of kafka-go's logs to zap (ErrorLogger,
// rate limited through internal/lib/outage).
//
// Owns: no Kafka traffic of its own. Must not import anything of consentd
// but internal/lib/retry and internal/lib/outage.
package kafkax

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/outage"

	"github.com/consentd/consentd/internal/lib/retry"
)

// DefaultMaxFetchBytes bounds one fetch response unless a reader asks
// for more; it must exceed the largest message read.
const DefaultMaxFetchBytes = 10 << 20

// classes is the table of Kafka errors that are not transient, and why.
// Every other error (a leader moving, a request timing out, a broken
// connection, a topic not known yet) is transient.
var classes = map[kafka.Error]struct {
	class retry.Class
	why   string
}{
	kafka.TopicAuthorizationFailed:           {retry.Fatal, "this instance may not write the topic"},
	kafka.ClusterAuthorizationFailed:         {retry.Fatal, "this instance may not act on the cluster"},
	kafka.SASLAuthenticationFailed:           {retry.Fatal, "the credentials are refused"},
	kafka.TransactionalIDAuthorizationFailed: {retry.Fatal, "this instance may not use the transactional id"},
	kafka.InvalidRequiredAcks:                {retry.Fatal, "the writer's acks setting is refused"},
	kafka.MessageSizeTooLarge:                {retry.Refused, "the message is larger than the topic accepts"},
	kafka.RecordListTooLarge:                 {retry.Refused, "the batch is larger than the topic accepts"},
	kafka.InvalidMessageSize:                 {retry.Refused, "the message size is invalid"},
	kafka.InvalidRecord:                      {retry.Refused, "the broker refuses the record (for example a compacted topic and no key)"},
	kafka.InvalidTimestamp:                   {retry.Refused, "the record time is outside the topic's accepted range"},
	kafka.PolicyViolation:                    {retry.Refused, "a broker policy refuses the record"},
	kafka.UnsupportedForMessageFormat:        {retry.Refused, "the topic's message format cannot hold the record"},
	kafka.InvalidTopic:                       {retry.Refused, "the topic name is invalid"},
}

// Classify sorts a Kafka error: see the table above. kafka-go's own size
// check (MessageTooLargeError) is refused.
func Classify(err error) retry.Class {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return retry.Refused
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		if c, ok := classes[ke]; ok {
			return c.class
		}
	}
	return retry.Transient
}

// Why says why Classify sorted err as it did, for logs and dead letters.
func Why(err error) string {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return "the message is larger than the writer's batch limit"
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		if c, ok := classes[ke]; ok {
			return c.why
		}
	}
	return "transient: retried"
}

// IsUnknownTopic reports a topic the broker does not know (yet, or any
// more).
func IsUnknownTopic(err error) bool { return errors.Is(err, kafka.UnknownTopicOrPartition) }

// ReaderConfig is what differs between consentd's readers.
type ReaderConfig struct {
	// Brokers and Dialer reach the cluster. Dialer default: kafka-go's.
	Brokers []string
	Dialer  *kafka.Dialer
	// Topic is read. Required.
	Topic string
	// Partition is read when GroupID is empty.
	Partition int
	// GroupID, if set, makes a consumer group reader.
	GroupID string
	// StartOffset for a group without a committed offset. Default:
	// kafka.FirstOffset.
	StartOffset int64
	// MaxBytes bounds one fetch. Default: DefaultMaxFetchBytes.
	MaxBytes int
	// MaxWait bounds how long a fetch waits for data. Default: 250ms.
	MaxWait time.Duration
	// QueueCapacity of fetched messages. Default: kafka-go's (100).
	QueueCapacity int
	// Log receives kafka-go's errors under Name. Default: none.
	Log  *zap.Logger
	Name string
	// Outage, if set, receives kafka-go's errors instead of Log (see
	// ErrorLogger). Default: none.
	Outage *outage.Tracker
}

// DefaultProduceLinger is how long consentd's writer waits to fill a
// batch (kafka-go's own default, 1s, would add a second to every write).
// consentd hands the writer whole batches: kafka-go adds every message of
// one call for a partition under one lock, so the timer never splits a
// call's messages, and waiting longer only adds latency.
const DefaultProduceLinger = 500 * time.Microsecond

// DefaultMaxWait is ReaderConfig.MaxWait's default.
const DefaultMaxWait = 250 * time.Millisecond

// NewReader returns a kafka-go reader for cfg: every reader consentd
// makes (raw partitions, the consent topic, the dead-letter topic) comes
// from here.
func NewReader(cfg ReaderConfig) *kafka.Reader {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxFetchBytes
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.StartOffset == 0 {
		cfg.StartOffset = kafka.FirstOffset
	}
	rc := kafka.ReaderConfig{
		Brokers:       cfg.Brokers,
		Dialer:        cfg.Dialer,
		Topic:         cfg.Topic,
		GroupID:       cfg.GroupID,
		MinBytes:      1,
		MaxBytes:      cfg.MaxBytes,
		MaxWait:       cfg.MaxWait,
		QueueCapacity: cfg.QueueCapacity,
		StartOffset:   cfg.StartOffset,
	}
	if cfg.GroupID == "" {
		rc.Partition = cfg.Partition
	}
	if cfg.Log != nil {
		name := cfg.Name
		if name == "" {
			name = "kafka reader"
		}
		rc.ErrorLogger = ErrorLogger(cfg.Log, name, cfg.Outage)
	}
	return kafka.NewReader(rc)
}

// ErrorLogger returns a kafka-go ErrorLogger that reports each error
// under msg as a Note to tr (nil: a Tracker of its own, on log), which
// folds it into the summary of an outage and otherwise logs a warning
// at most once a minute: kafka-go logs every failed attempt of its own
// retry loops. The read timeouts kafka-go reports whenever a fetch or a
// group heartbeat connection stays idle say nothing about consentd's
// health (real failures surface as errors from fetches, writes and
// commits) and would be most log lines of an idle instance, so they go
// to debug.
func ErrorLogger(log *zap.Logger, msg string, tr *outage.Tracker) kafka.Logger {
	tr = outage.OrNew(tr, "Kafka", "", log)
	return kafka.LoggerFunc(func(f string, a ...any) {
		detail := fmt.Sprintf(f, a...)
		if IdleTimeoutNoise(detail) {
			log.Debug(msg, zap.String("detail", detail))
			return
		}
		tr.Note(msg, detail)
	})
}

// IdleTimeoutNoise reports whether a kafka-go log line is only an idle
// connection's read timeout.
func IdleTimeoutNoise(detail string) bool {
	return strings.HasSuffix(strings.TrimSpace(detail), "i/o timeout") ||
		strings.Contains(detail, "i/o timeout") && strings.Contains(detail, "read tcp")
}
