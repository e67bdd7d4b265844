package app

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// RecordBatchOverhead is what a record batch of one message adds to the
// message itself (batch header and record framing, with room to spare);
// it is subtracted from a topic's max.message.bytes.
const RecordBatchOverhead = 1024

// writeLimit reads max.message.bytes of the topics consentd writes to and
// returns the largest message all of them accept: the smallest limit less
// RecordBatchOverhead. A topic whose configuration cannot be read counts
// with Kafka's default (1048588).
func writeLimit(ctx context.Context, client *kafka.Client, topics []string) (int, error) {
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
	limit := 1048588
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
	return max(limit-RecordBatchOverhead, 4096), nil
}
