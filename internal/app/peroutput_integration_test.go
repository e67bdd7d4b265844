package app

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

// pseudOut is subject v's pseudonym on output, under per-output keys, by
// the recipe the README gives a reviewer holding the key file.
func pseudOut(t *testing.T, output, v string) string {
	t.Helper()
	key, err := hkdf.Key(sha256.New, testSecret, nil, "consentd pseudonym key v1 output "+output, 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return "k1:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// TestIntegrationPerOutputPseudonyms runs the shipped policy with
// pseudonymization.per_output on real Kafka and Redis: no key and no
// pseudonymized user id, source or consent-version header is shared by
// two clean topics, each key is the output's documented pseudonym, and erasures go out under each topic's
// own key, as the last record of the subject there, with nothing after
// the call returns.
func TestIntegrationPerOutputPseudonyms(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "po")
	pol, err := os.ReadFile(s.cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	perOutput := strings.Replace(string(pol), "\npseudonymization:\n  per_output: false\n", "\npseudonymization:\n  per_output: true\n", 1)
	if perOutput == string(pol) {
		t.Fatal("the shipped policy has no pseudonymization.per_output: false")
	}
	path := filepath.Join(filepath.Dir(s.cfgPath), "policy.per-output.yaml")
	if err := os.WriteFile(path, []byte(perOutput), 0o600); err != nil {
		t.Fatal(err)
	}
	use := func(c *config.Config) { c.Policy = path }
	s.start(t, use)
	stop := flow(t, env.Kafka, s.raw, "po")
	defer stop()
	outputs := map[string]string{s.perso: "personalization", s.ana: "analytics", s.adv: "advertising"}
	itest.Eventually(t, 60*time.Second, "every clean topic written", func() bool {
		for topic := range outputs {
			if itest.Count(t, env.Kafka, topic) < 500 {
				return false
			}
		}
		return true
	})

	cfg := *s.cfg
	use(&cfg)
	dsr := s.dsr(t, &cfg)
	returned := map[string]time.Time{}
	for u := 0; u < 4; u++ {
		subj := fmt.Sprintf("po-%d", u)
		if _, err := dsr.Erase(context.Background(), subj); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		for _, output := range outputs {
			returned[pseudOut(t, output, subj)] = at
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	s.exactness(t, returned, "per-output erasure")

	// Unlinkable: every key and pseudonymized userId on a topic is that
	// output's pseudonym of a subject, never another output's and never
	// the shared one.
	owner := map[string]string{} // pseudonym -> topic
	for topic, output := range outputs {
		want := map[string]bool{}
		for i := 0; i < 50; i++ {
			want[pseudOut(t, output, fmt.Sprintf("po-%d", i))] = true
		}
		n := 0
		for _, m := range itest.ReadAll(t, env.Kafka, topic) {
			var body struct {
				UserID string `json:"userId"`
			}
			if m.Value != nil {
				if err := json.Unmarshal(m.Value, &body); err != nil {
					t.Fatalf("%s: %v", topic, err)
				}
			}
			for _, p := range []string{string(m.Key), body.UserID} {
				if p == "" {
					continue
				}
				if !want[p] {
					t.Fatalf("%s: %q is not this output's pseudonym of any subject", topic, p)
				}
				if other, ok := owner[p]; ok && other != topic {
					t.Fatalf("%q is on %s and %s: the topics are joinable", p, topic, other)
				}
				owner[p] = topic
			}
			// Headers one per event or per subject are per output too.
			for _, h := range []string{wire.HeaderSource, wire.HeaderConsentVersion} {
				v := h + "=" + string(wire.Header(&m, h))
				if m.Value == nil || strings.HasSuffix(v, "=") {
					continue
				}
				if other, ok := owner[v]; ok && other != topic {
					t.Fatalf("%s is on %s and %s: the topics are joinable", v, topic, other)
				}
				owner[v] = topic
			}
			n++
		}
		t.Logf("%s: %d records, all under its own pseudonyms", topic, n)
	}
}
