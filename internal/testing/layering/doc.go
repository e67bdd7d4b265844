// Package layering holds only a test: it checks, with go list, that
// consentd's imports run downward through its layers (leaf helpers; wire
// contract, event model, configuration and consent records; decisions
// and consent services; the engine, Kafka services and data-subject
// requests; adapters and plugins; the composition root; tools), that each
// package leaves the concerns it does not own to their one place, and
// that production code never imports benchmarks or test helpers. Test
// tooling: nothing imports it.
package layering
