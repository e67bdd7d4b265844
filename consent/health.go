package consent

import (
	"context"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// CondStore is the readiness condition of the consent store: it fails
// while the store cannot answer, and nothing is decided meanwhile (fail
// closed). Lookups report it (pipeline), and so does WatchStore.
const CondStore = "consent_store"

// StoreCheckInterval is how often WatchStore pings the store by default.
const StoreCheckInterval = time.Second

// Pinger checks that a store answers; *redisstore.Store implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// WatchStore pings store every interval until ctx ends and reports the
// outcome as CondStore, so that readiness tells the truth on an instance
// with nothing to decide (lookups alone would leave an idle instance
// ready through an outage).
func WatchStore(ctx context.Context, store Pinger, hs hooks.List, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		hs.Condition(CondStore, store.Ping(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
