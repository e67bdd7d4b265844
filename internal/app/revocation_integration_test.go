package app

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/bench/revocation"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationRevocationWhileFlowing revokes consent for subjects whose
// events are flowing through two consentd instances in one group. From one
// second after each revocation is acknowledged, no event of that subject
// may reach a clean topic. Write times are the broker's append times, read
// with kcat (librdkafka reports LogAppendTime).
func TestIntegrationRevocationWhileFlowing(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure}, testIntegrationRevocationWhileFlowing)
}

func testIntegrationRevocationWhileFlowing(t *testing.T, env itest.Env) {
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "v")
	s.start(t, nil)
	s.start(t, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 100 {
			itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("v", i, 100)...)
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
		}
	}()
	itest.Eventually(t, 60*time.Second, "both instances writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 3000 })

	w := redisstore.NewUpdater(itest.Redis(t, env.Redis), s.prefix)
	revokedAt := map[string]time.Time{} // pseudonymous key -> revocation acknowledged
	for i := 0; i < 20; i++ {
		subj := fmt.Sprintf("v-%d", i)
		if _, err := w.Patch(context.Background(), subj, map[string]bool{"personalization": false, "analytics": false, "advertising": false}); err != nil {
			t.Fatal(err)
		}
		revokedAt[pseud(subj)] = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // events keep flowing after the last revocation
	close(stop)
	wg.Wait()

	out, err := exec.Command("kcat", append(env.KcatArgs(), "-C", "-t", s.perso, "-e", "-q", "-f", "%k %T\n")...).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	res, err := revocation.Analyze(out, revokedAt, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.OthersAfter == 0 {
		t.Fatal("no other subject was written after the revocations: the check would be vacuous")
	}
	if len(res.NoEventsBefore) > 0 {
		t.Errorf("subjects with no events before their revocation (vacuous): %v", res.NoEventsBefore)
	}
	for key, n := range res.Late {
		t.Errorf("subject %s: %d events written later than 1s after the revocation", key, n)
	}
	t.Logf("revocation to last clean write, %d subjects, two instances: p50 %s, p99 %s, max %s (broker append time, ms resolution)",
		len(res.Latencies), res.Percentile(0.5), res.Percentile(0.99), res.Percentile(1))
}
