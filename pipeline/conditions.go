package pipeline

import (
	"strconv"

	"github.com/consentd/consentd/consent"
)

// Readiness conditions the engine reports through hooks.ConditionHook.
const (
	// CondConsentStore fails while the consent store cannot answer
	// (batches are held: fail closed); the same condition as
	// consent.CondStore.
	CondConsentStore = consent.CondStore
	// CondKafkaWrite fails, per raw partition (PartitionCond), while its
	// writes fail, and for the instance when Kafka refuses its writes.
	CondKafkaWrite = "kafka_write"
	// CondGroup fails while the instance is not in a group generation.
	CondGroup = "consumer_group"
)

// PartitionCond names a condition of one raw partition, so that /readyz
// and the metrics say which partition is stuck: "kafka_write raw/3".
func PartitionCond(cond, topic string, partition int) string {
	return cond + " " + topic + "/" + strconv.Itoa(partition)
}
