// Package pipeline is consentd's per-partition engine: it moves events
// from raw Kafka topics through consent lookups and the policy to clean
// topics, committing offsets only after every write of a message, and of
// all earlier messages in its partition, has been acknowledged.
//
// Where things are:
//   - source.go: raw topics are read (the consumer group, a reader per
//     assigned partition).
//   - processor.go: a batch is decided in stages (parse, link, resolve,
//     decide); render.go turns decisions into clean messages and dead
//     letters through package wire (copied raw headers included). The
//     Result is frozen once Process returns.
//   - sink.go: clean messages and dead letters are written; what Kafka
//     refuses for good is dead-lettered and listed in a WriteReport.
//   - accounting.go: what a batch did, from its decisions and its
//     WriteReport, in one place.
//   - checkpoint.go: acknowledged offsets are committed per generation.
//   - runner.go: the per-partition loop that ties them together.
//   - ports.go: what the engine needs from outside (Producer, WriteFence,
//     ChangeTracker, Linker; consent.Store for lookups).
//   - hooks.go: the hook interfaces the engine calls (package
//     internal/lib/hooks) and Stats; conditions.go: readiness conditions.
//   - config.go: RunnerConfig and ProcessorConfig with their defaults.
//
// Must not import: Redis (consent comes through consent.Store), the
// revocation barrier (it is the WriteFence port), Prometheus (hooks), the
// composition root. It makes no policy decision of its own (package
// policy does). The engine's contract is checked by enginetest.
package pipeline
