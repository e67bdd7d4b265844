package app

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/itest"
)

// TestIntegrationRevocationWhileFlowing revokes consent for subjects whose
// events are flowing through two consentd instances in one group. From one
// second after each revocation is acknowledged, no event of that subject
// may reach a clean topic. Write times are the broker's append times, read
// with kcat (librdkafka reports LogAppendTime).
func TestIntegrationRevocationWhileFlowing(t *testing.T) {
	env := itest.Require(t)
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

	w := redisstore.NewWriter(itest.Redis(t, env.Redis), s.prefix)
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

	out, err := exec.Command("kcat", "-C", "-b", env.Kafka, "-t", s.perso, "-e", "-q", "-f", "%k %T\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	last := map[string]time.Time{} // key -> last write
	before := map[string]int{}     // writes before the revocation
	afterGrace := map[string]int{} // writes later than 1s after it
	others := 0
	lastRevocation := time.Time{}
	for _, at := range revokedAt {
		if at.After(lastRevocation) {
			lastRevocation = at
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, tsText, ok := strings.Cut(line, " ")
		ms, err := strconv.ParseInt(tsText, 10, 64)
		if !ok || err != nil {
			t.Fatalf("kcat line %q", line)
		}
		ts := time.UnixMilli(ms)
		at, revoked := revokedAt[key]
		if !revoked {
			if ts.After(lastRevocation.Add(time.Second)) {
				others++
			}
			continue
		}
		if ts.Before(at) {
			before[key]++
			continue
		}
		if ts.After(last[key]) {
			last[key] = ts
		}
		if ts.After(at.Add(time.Second)) {
			afterGrace[key]++
		}
	}
	if others == 0 {
		t.Fatal("no other subject was written after the revocations: the check would be vacuous")
	}
	var lat []time.Duration
	for key, at := range revokedAt {
		if before[key] == 0 {
			t.Errorf("subject %s had no events before its revocation: vacuous", key)
		}
		if n := afterGrace[key]; n > 0 {
			t.Errorf("subject %s: %d events written later than 1s after the revocation", key, n)
		}
		d := time.Duration(0)
		if l, ok := last[key]; ok {
			d = l.Sub(at)
		}
		lat = append(lat, d)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("revocation to last clean write, %d subjects, two instances: p50 %s, p99 %s, max %s (broker append time, ms resolution)",
		len(lat), lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1])
}
