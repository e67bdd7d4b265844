package pipeline

import (
	"context"
	"fmt"
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
		ErrorLogger:           kafkax.ErrorLogger(cfg.Log, "kafka consumer group"),
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
	})
}

// fetchBatch blocks for one message, then takes what arrives within linger,
// up to max messages.
func fetchBatch(ctx context.Context, reader *kafka.Reader, max int, linger time.Duration) ([]kafka.Message, error) {
	m, err := reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]kafka.Message, 1, max)
	msgs[0] = m
	if max == 1 {
		return msgs, nil
	}
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for len(msgs) < max {
		m, err := reader.FetchMessage(lctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}
