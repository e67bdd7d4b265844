// Package barrier owns the revocation barrier: the protocol that makes a
// consent withdrawal or an erasure return only once no running consentd
// can still write the subject with the consent it had before.
//
// Every running instance is a Member. It holds a lease in a shared
// registry and renews it; it writes nothing while its lease is not
// current (fail closed), and it registers every clean write in flight
// with the consent-change sequence number it was last checked at (the
// pipeline's write fence: Begin, Check, End). A revoker (Revoker.Await),
// after storing the change, publishes a barrier naming the subjects. Each
// member drops them from its cache, waits until no write checked before
// that is in flight, and confirms. Members that do not confirm in time
// are fenced: their lease is not renewed, and the revoker waits until it
// has ended plus LeaseMargin. A fenced member, or one whose lease lapsed,
// purges its cache, drains its writes and joins again.
//
// Owns: the member's lease loop, the write fence, confirmations, fencing
// and Await, and the CondBarrier readiness condition. The shared registry
// is a port (Registry, Lease) that consent/redisstore implements with
// Lua scripts and a pub/sub channel; the cache is a port (Cache) that
// consent.Cache implements. Must not import Redis, Kafka, Prometheus or
// the pipeline.
package barrier
