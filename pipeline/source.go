package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/kafkax"
)

// This file is where raw Kafka topics are read: the consumer group and
// one reader per assigned partition.

func (r *Runner) newConsumerGroup() (*kafka.ConsumerGroup, error) {
	cfg := &r.cfg
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    cfg.GroupID,
		Brokers:               cfg.Brokers,
		Dialer:                cfg.Dialer,
		Topics:                cfg.Topics,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		HeartbeatInterval:     cfg.SessionTimeout / 4,
		JoinGroupBackoff:      JoinGroupBackoff,
		StartOffset:           cfg.StartOffset,
		WatchPartitionChanges: true,
		ErrorLogger:           kafkax.ErrorLogger(cfg.Log, "kafka consumer group", cfg.Outage),
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer group: %w", err)
	}
	return cg, nil
}

func (r *Runner) newPartitionReader(topic string, partition int, log *zap.Logger) *kafka.Reader {
	cfg := &r.cfg
	return kafkax.NewReader(kafkax.ReaderConfig{
		Brokers:       cfg.Brokers,
		Dialer:        cfg.Dialer,
		Topic:         topic,
		Partition:     partition,
		MaxBytes:      cfg.MaxFetchBytes,
		MaxWait:       FetchMaxWait,
		QueueCapacity: cfg.BatchSize,
		Log:           log,
		Name:          "kafka reader",
		Outage:        cfg.Outage,
	})
}

// fetchBatch blocks for one message, then takes what arrives within
// linger, up to max messages, and returns them with the time the first
// arrived. With fl (adaptive linger), the batch does not wait for the
// partition's writer: when the writer has nothing to write, the batch
// takes the messages already fetched and goes; when the writer runs out of
// work while the batch fills, the batch goes then. Under load the writer
// is busy and batches fill; at low rates each batch goes as soon as the
// one before it is written.
func fetchBatch(ctx context.Context, reader *kafka.Reader, max int, linger time.Duration, fl *fill) ([]kafka.Message, time.Time, error) {
	m, err := reader.FetchMessage(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	first := time.Now()
	msgs := make([]kafka.Message, 1, max)
	msgs[0] = m
	if max == 1 || linger <= 0 {
		return msgs, first, nil
	}
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	if fl != nil {
		if !fl.arm(cancel) {
			// The writer is idle: take what has arrived, then go.
			for n := reader.Stats().QueueLength; n > 0 && len(msgs) < max; n-- {
				m, err := reader.FetchMessage(lctx)
				if err != nil {
					break
				}
				msgs = append(msgs, m)
			}
			return msgs, first, nil
		}
		defer fl.disarm()
	}
	for len(msgs) < max {
		m, err := reader.FetchMessage(lctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, first, nil
}

// fill is a partition's adaptive linger: the batch being filled goes when
// the partition's writer runs out of work. Safe for concurrent use.
type fill struct {
	mu   sync.Mutex
	busy int                // batches queued or being written
	cut  context.CancelFunc // ends the fill in progress; nil when none
}

// arm registers cut to end the fill in progress when the writer runs out
// of work. false: it has none now (cut is not registered).
func (f *fill) arm(cut context.CancelFunc) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy == 0 {
		return false
	}
	f.cut = cut
	return true
}

// disarm forgets the fill in progress.
func (f *fill) disarm() {
	f.mu.Lock()
	f.cut = nil
	f.mu.Unlock()
}

// queued notes a batch handed to the writer.
func (f *fill) queued() {
	f.mu.Lock()
	f.busy++
	f.mu.Unlock()
}

// written notes a batch the writer is done with (written or given up);
// with none left, the fill in progress ends.
func (f *fill) written() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy--; f.busy == 0 && f.cut != nil {
		f.cut()
		f.cut = nil
	}
}
