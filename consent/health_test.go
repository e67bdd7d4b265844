package consent

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

type flakyStore struct{ down atomic.Bool }

func (f *flakyStore) Ping(context.Context) error {
	if f.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// An idle instance (no lookups at all) still reports the store's outage.
func TestWatchStoreReportsAnOutageWithoutLookups(t *testing.T) {
	h := &hooks.Readiness{}
	st := &flakyStore{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go WatchStore(ctx, st, hooks.List{h}, 5*time.Millisecond)
	wait := func(ready bool) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			ok, why := h.Ready()
			if ok == ready {
				return why
			}
			if time.Now().After(deadline) {
				t.Fatalf("readiness stayed %v (%v)", ok, why)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(true)
	st.down.Store(true)
	if why := wait(false); len(why) != 1 || !strings.HasPrefix(why[0], CondStore+": ") {
		t.Fatalf("not-ready reasons %v", why)
	}
	st.down.Store(false)
	wait(true)
}
