package app

import (
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationRebalance runs two consentd instances in one group while
// events flow: the second joins mid-stream, then the first leaves. Every
// event must reach the clean topic (duplicates allowed, no loss) and the
// group must end with every offset committed.
func TestIntegrationRebalance(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "r")
	// Events flow until told to stop, so that both instances see traffic
	// whatever the timing of the joins.
	const maxEvents = 60000
	a := s.start(t, nil)
	stopProducing := make(chan struct{})
	var wg sync.WaitGroup
	var total int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for total < maxEvents {
			itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("r", total, 500)...)
			total += 500
			select {
			case <-stopProducing:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	itest.Eventually(t, 60*time.Second, "first instance writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 2000 })
	b := s.start(t, nil)
	itest.Eventually(t, 60*time.Second, "second instance joined and writing", func() bool {
		return b.metric(t, "consentd_group_generations_total") >= 1 && b.metric(t, `consentd_events_written_total{output="personalization"}`) > 0
	})
	if err := a.stop(); err != nil {
		t.Fatalf("first instance: %v", err)
	}
	time.Sleep(time.Second) // the second instance alone, events still flowing
	close(stopProducing)
	wg.Wait()
	itest.Eventually(t, 90*time.Second, "every offset committed", func() bool {
		c := itest.Committed(t, env.Kafka, s.group, s.raw, 4)
		return c[0]+c[1]+c[2]+c[3] == int64(total)
	})
	if err := b.stop(); err != nil {
		t.Fatalf("second instance: %v", err)
	}

	missing, dups := deliveries(cleanIDs(t, env.Kafka, s.perso), "r", total)
	t.Logf("two instances, two rebalances: %d events, %d duplicates, %d missing", total, dups, missing)
	if missing > 0 {
		t.Fatalf("%d events lost in rebalances", missing)
	}
	s.assertNoPersonalData(t, "r-1", "r-2", "10.0.0.")
}
