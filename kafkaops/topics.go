package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
)

// This file is where topics are checked before anything flows: they
// must exist, and the written ones say how large a message may be.

// RecordBatchOverhead is what a record batch of one message adds to the
// message itself (batch header and record framing, with room to spare);
// it is subtracted from a topic's max.message.bytes.
const RecordBatchOverhead = 1024

// DefaultTopicMaxMessageBytes is Kafka's default max.message.bytes,
// assumed for a topic whose configuration cannot be read.
const DefaultTopicMaxMessageBytes = 1048588

// MinWriteLimit is the smallest write limit consentd works with: room
// for a truncated dead letter.
const MinWriteLimit = 4096

// MissingTopicsError lists topics the cluster does not have.
type MissingTopicsError struct{ Topics []string }

func (e *MissingTopicsError) Error() string {
	return "topics do not exist (consentd does not create topics): " + strings.Join(e.Topics, ", ")
}

// CheckTopics returns a *MissingTopicsError when one of topics does not
// exist, so that a typo fails at start-up instead of as endless write
// retries. Other per-topic errors (a leader not elected yet) pass: the
// pipeline retries them. Use a client with a transport of its own: a
// shared transport answers from cached metadata that may predate
// recently created topics.
func CheckTopics(ctx context.Context, client *kafka.Client, topics []string) error {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("reading topic metadata: %w", err)
	}
	var missing []string
	for _, t := range meta.Topics {
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return &MissingTopicsError{Topics: missing}
	}
	return nil
}

// WriteLimit reads max.message.bytes of the topics consentd writes to and
// returns the largest message all of them accept: the smallest limit less
// RecordBatchOverhead, and at least MinWriteLimit. A topic whose
// configuration cannot be read counts with DefaultTopicMaxMessageBytes.
func WriteLimit(ctx context.Context, client *kafka.Client, topics []string) (int, error) {
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t, ConfigNames: []string{"max.message.bytes"},
		})
	}
	resp, err := client.DescribeConfigs(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("reading max.message.bytes of %v: %w", topics, err)
	}
	limit := DefaultTopicMaxMessageBytes
	for _, r := range resp.Resources {
		if r.Error != nil {
			continue
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName != "max.message.bytes" {
				continue
			}
			if n, err := strconv.Atoi(e.ConfigValue); err == nil && n > 0 {
				limit = min(limit, n)
			}
		}
	}
	return max(limit-RecordBatchOverhead, MinWriteLimit), nil
}
