package app

import (
	"context"
	"time"

	"github.com/consentd/consentd/pipeline"
)

// StoreCheckInterval is how often the consent store is pinged, so that
// readiness tells the truth on an instance with nothing to decide (lookups
// alone would leave an idle instance ready through an outage).
const StoreCheckInterval = time.Second

// pinger is the part of redisstore.Store the watcher needs.
type pinger interface {
	Ping(ctx context.Context) error
}

// watchStore pings the consent store every interval until ctx ends and
// reports the outcome as the consent_store readiness condition.
func watchStore(ctx context.Context, store pinger, h *pipeline.Health, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		h.Set(pipeline.CondConsentStore, store.Ping(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
