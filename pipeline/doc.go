// Package pipeline moves events from raw Kafka topics through consent
// lookups and the policy to clean topics, committing offsets only after
// every write of a message, and of all earlier messages in its partition,
// has been acknowledged.
//
// Where things are:
//   - source.go: Kafka is read (the consumer group, a reader per partition).
//   - processor.go: a batch is decided in stages (parse, link, resolve,
//     decide); render.go turns decisions into messages through package wire.
//   - sink.go: Kafka is written, and write errors are classified
//     (transient: retried; refused: dead-lettered; fatal: the instance stops).
//   - checkpoint.go: acknowledged offsets are committed per generation.
//   - runner.go: the per-partition loop that ties them together.
//   - retract.go: retraction tombstones are written.
//   - hooks.go, health.go: observation (no metrics code here) and readiness.
//
// The package never touches Redis (consent comes through consent.Store)
// and makes no policy decision of its own (package policy does).
package pipeline
