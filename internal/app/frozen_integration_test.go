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
// ended, purge its cache and decide its batches again before writing: no
// clean record of a revoked subject is appended after the revocation
// returned, and the instance logs the lapse.
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
	itest.Eventually(t, 30*time.Second, "the lapse reported after the resume", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "revocation barrier lease lost")
	})
	before := itest.Count(t, env.Kafka, s.perso)
	itest.Eventually(t, 30*time.Second, "writing again after the resume", func() bool { return itest.Count(t, env.Kafka, s.perso) > before+500 })
	stop()
	time.Sleep(time.Second)
	s.exactness(t, returned, "revocation while an instance was frozen")
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
