package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentd/consentd/barrier"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationFrozenInstanceCatchesUp freezes a consentd process
// (SIGSTOP) past its barrier lease while events flow, revokes subjects
// meanwhile (the revoker no longer waits for the frozen instance: its
// lease ended), then resumes it. The instance must notice that its lease
// ended, purge its cache and decide its batches again before writing: once
// it had a second to do so, no clean record of a revoked subject is
// appended, and it logs the lapse. (Writes already handed to the Kafka
// client before the freeze can land as it resumes: counted and logged.)
func TestIntegrationFrozenInstanceCatchesUp(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 2)
	seedFull(t, env.Redis, s.prefix, "z")
	bin := buildConsentd(t)
	logPath := filepath.Join(t.TempDir(), "consentd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", s.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	stop := flow(t, env.Kafka, s.raw, "z")
	defer stop()
	itest.Eventually(t, 60*time.Second, "the instance writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 1000 })

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(barrier.DefaultLeaseTTL + barrier.LeaseMargin + 1500*time.Millisecond)
	dsr := s.dsr(t, s.cfg)
	returned := map[string]time.Time{}
	for u := 0; u < 5; u++ {
		subj := fmt.Sprintf("z-%d", u)
		if _, err := dsr.Revoke(context.Background(), subj, nil); err != nil {
			t.Fatal(err)
		}
		returned[pseud(subj)] = time.Now()
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	itest.Eventually(t, 30*time.Second, "the lapse reported after the resume", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "revocation barrier lease lost")
	})
	before := itest.Count(t, env.Kafka, s.perso)
	itest.Eventually(t, 30*time.Second, "writing again after the resume", func() bool { return itest.Count(t, env.Kafka, s.perso) > before+500 })
	stop()
	time.Sleep(time.Second)
	// Writes the instance had handed to the producer before it froze can
	// reach the broker as it resumes (no lease reaches inside the client:
	// only broker-side fencing would stop them). Anything the instance
	// decided or started after waking must see the revocation: no record
	// of a revoked subject may be appended once it has had a second to
	// notice the lapse and catch up.
	grace := resumed.Add(time.Second)
	late := 0
	for _, topic := range []string{s.perso, s.ana, s.adv} {
		for _, m := range itest.ReadAll(t, env.Kafka, topic) {
			at, revoked := returned[string(m.Key)]
			if !revoked || m.Value == nil || !m.Time.After(at) {
				continue
			}
			if m.Time.After(grace) {
				t.Errorf("%s: a record of a revoked subject appended %s after the resume", topic, m.Time.Sub(resumed))
			}
			late++
		}
	}
	t.Logf("records of revoked subjects handed to the producer before the freeze and appended after the resume: %d", late)
	b, _ := os.ReadFile(logPath)
	var lapsed bool
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "revocation barrier lease lost") && strings.Contains(line, `"reason":"lapsed"`) {
			lapsed = true
		}
	}
	if !lapsed {
		t.Fatalf("the resumed instance did not report its lapsed lease:\n%s", b)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("consentd exited with %v after SIGTERM, want 0", err)
	}
}
