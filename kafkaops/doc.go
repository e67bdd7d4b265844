// Package kafkaops holds consentd's Kafka-side services besides the
// engine: where the consent topic is read and applied (ConsentSyncer),
// where retraction tombstones are written (Retractor), where dead
// letters are replayed (ReplayDeadLetters), and where topics are checked
// and the largest writable message is read from them (CheckTopics,
// WriteLimit). Readers come from kafkax.NewReader and Kafka errors are
// sorted by kafkax.Classify, as in the engine.
//
// Must not import: Redis (consent changes go through changes.Service),
// Prometheus (hooks), the engine (package pipeline), the composition
// root.
package kafkaops
