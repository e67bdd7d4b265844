package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/consentd/consentd/consent/dsr"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/testing/itest"
)

// anonEvents are events known only by an anonymous id: "<prefix>-a<k>"
// for k in 0..19, which seedLinked links to user "<prefix>-<k/2>".
func anonEvents(prefix string, from, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		anon := fmt.Sprintf("%s-a%d", prefix, (from+i)%20)
		msgs[i] = kafka.Message{Key: []byte(anon), Value: []byte(fmt.Sprintf(`{"type":"track","event":"Product Viewed","anonymousId":%q,"messageId":"%s-n%d","context":{"ip":"10.0.1.%d"}}`, anon, prefix, from+i, i%250))}
	}
	return msgs
}

// seedLinked gives the anonymous ids of anonEvents full consent of their
// own and links them to their users.
func seedLinked(t *testing.T, addr, keyPrefix, subjPrefix string) {
	t.Helper()
	rdb := itest.Redis(t, addr)
	links := map[string]string{}
	for k := 0; k < 20; k++ {
		anon := fmt.Sprintf("%s-a%d", subjPrefix, k)
		if err := redisstore.Put(context.Background(), rdb, keyPrefix, anon, 1, map[string]bool{"personalization": true, "analytics": true, "advertising": true}); err != nil {
			t.Fatal(err)
		}
		links[anon] = fmt.Sprintf("%s-%d", subjPrefix, k/2)
	}
	if err := redisstore.NewUpdater(rdb, keyPrefix).Link(context.Background(), links); err != nil {
		t.Fatal(err)
	}
}

// flowLinked produces user and anonymous events until stop is called.
func flowLinked(t *testing.T, broker, topic, prefix string) (stop func()) {
	t.Helper()
	return flowEvents(t, broker, topic, func(i int) []kafka.Message {
		return append(fullConsentEvents(prefix, i, 100), anonEvents(prefix, i, 100)...)
	})
}

func (s *stack) dsr(t *testing.T, cfg *config.Config) *dsr.DSR {
	t.Helper()
	pol, err := LoadPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := connect.NewKafka(context.Background(), cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	producer := NewProducer(cfg, kc)
	t.Cleanup(func() { producer.Close() })
	return NewDSR(cfg, pol, itest.Redis(t, s.env.Redis), producer, nil)
}

// TestIntegrationErasureWithLinkedIDs erases users whose anonymous ids
// are linked to them while the events of both flow through two consentd
// instances. Once the call returns, nothing of the user or of its
// anonymous ids may be appended to a clean topic (broker append time),
// each of their retractions must be their last record in every
// partition, and export must show the links before and nothing after.
func TestIntegrationErasureWithLinkedIDs(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "l")
	seedLinked(t, env.Redis, s.prefix, "l")
	s.start(t, nil)
	s.start(t, nil)
	stop := flowLinked(t, env.Kafka, s.raw, "l")
	defer stop()
	itest.Eventually(t, 60*time.Second, "instances writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 4000 })

	dsr := s.dsr(t, s.cfg)
	ctx := context.Background()
	returned := map[string]time.Time{}
	var calls []time.Duration
	for u := 0; u < 5; u++ {
		user := fmt.Sprintf("l-%d", u)
		anons := []string{fmt.Sprintf("l-a%d", 2*u), fmt.Sprintf("l-a%d", 2*u+1)}
		exp, err := dsr.Export(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if st := exp["stored"].(redisstore.Stored); !slices.Equal(st.LinkedIDs, anons) || len(exp["linked"].(map[string]redisstore.Stored)) != 2 {
			t.Fatalf("export of %s before the erasure: %+v", user, exp)
		}
		start := time.Now()
		ch, err := dsr.Erase(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		calls = append(calls, at.Sub(start))
		if !*ch.Erased || !slices.Equal(ch.ErasedLinked, anons) {
			t.Fatalf("erase %s: %+v", user, ch)
		}
		for _, subj := range append(anons, user) {
			returned[pseud(subj)] = at
			exp, err := dsr.Export(ctx, subj)
			if err != nil {
				t.Fatal(err)
			}
			st := exp["stored"].(redisstore.Stored)
			if len(st.Fields) != 0 || st.LinkedTo != "" || len(st.LinkedIDs) != 0 || len(exp["linked"].(map[string]redisstore.Stored)) != 0 {
				t.Fatalf("export of %s after the erasure: %+v", subj, exp)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // events keep flowing after the last erasure
	stop()
	slices.Sort(calls)
	t.Logf("erasure (user and two linked ids) call to return with two instances: p50 %s, max %s", calls[len(calls)/2], calls[len(calls)-1])
	s.exactness(t, returned, "erasure with linked ids")
	// Subjects not erased still flow: the check is not vacuous.
	keep := 0
	for _, m := range itest.ReadAll(t, env.Kafka, s.perso) {
		if string(m.Key) == pseud("l-a19") {
			keep++
		}
	}
	if keep == 0 {
		t.Error("no clean record of an anonymous id that was not erased")
	}
}

// secondSecret is the k2 key a rotation switches to.
var secondSecret = []byte("integration-test-secret-rotated-9876543210")

func pseud2(v string) string {
	m := hmac.New(sha256.New, secondSecret)
	m.Write([]byte(v))
	return "k2:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// TestIntegrationRotationThenErasure rotates the pseudonym key from k1
// to k2 (k1 marked retired) while events flow, then erases users: their
// retractions must go out under both keys, be the last record of both
// pseudonyms in every partition, and nothing of either may follow the
// call's return.
func TestIntegrationRotationThenErasure(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "r")
	first := []*running{s.start(t, nil), s.start(t, nil)}
	stop := flow(t, env.Kafka, s.raw, "r")
	defer stop()
	itest.Eventually(t, 60*time.Second, "writing under k1", func() bool { return itest.Count(t, env.Kafka, s.perso) > 2000 })

	// Rotate: k2 becomes the pseudonym key, k1 is retired now.
	dir := filepath.Dir(s.cfgPath)
	keys := "k1:" + base64Std(testSecret) + ":retired=" + time.Now().UTC().Format(time.RFC3339) + "\nk2:" + base64Std(secondSecret) + "\n"
	pol, err := os.ReadFile(s.cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	rotatedPolicy := strings.Replace(string(pol), "pseudonym_key: k1", "pseudonym_key: k2", 1)
	if rotatedPolicy == string(pol) {
		t.Fatal("the policy has no pseudonym_key: k1")
	}
	for name, content := range map[string]string{"keys.rotated": keys, "policy.rotated.yaml": rotatedPolicy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rotate := func(c *config.Config) {
		c.Pseudonymization.KeyFile = filepath.Join(dir, "keys.rotated")
		c.Policy = filepath.Join(dir, "policy.rotated.yaml")
	}
	for _, r := range first {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t, rotate)
	s.start(t, rotate)
	itest.Eventually(t, 60*time.Second, "writing under k2", func() bool {
		for _, m := range itest.ReadAll(t, env.Kafka, s.perso) {
			if strings.HasPrefix(string(m.Key), "k2:") {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second)

	cfg := *s.cfg
	rotate(&cfg)
	dsr := s.dsr(t, &cfg)
	returned := map[string]time.Time{}
	for u := 0; u < 5; u++ {
		subj := fmt.Sprintf("r-%d", u)
		if _, err := dsr.Erase(context.Background(), subj); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		returned[pseud(subj)] = at
		returned[pseud2(subj)] = at
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	e := s.exactness(t, returned, "rotation then erasure")
	if len(e.Lateness) != len(returned) {
		t.Errorf("clean records under %d of the %d pseudonyms (both keys of each erased user)", len(e.Lateness), len(returned))
	}
}

// TestIntegrationRevocationWithLinkedIDs revokes users whose anonymous ids
// are linked to them while the events of both flow through two consentd
// instances. The anonymous ids' clean records were decided with the
// user's consent (the strictest of both), so each must get the retraction
// as its last record on every topic, as the user does, with nothing
// appended after the call returns.
func TestIntegrationRevocationWithLinkedIDs(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	seedFull(t, env.Redis, s.prefix, "v")
	seedLinked(t, env.Redis, s.prefix, "v")
	s.start(t, nil)
	s.start(t, nil)
	stop := flowLinked(t, env.Kafka, s.raw, "v")
	defer stop()
	itest.Eventually(t, 60*time.Second, "instances writing", func() bool { return itest.Count(t, env.Kafka, s.perso) > 4000 })

	dsr := s.dsr(t, s.cfg)
	returned := map[string]time.Time{}
	for u := 0; u < 4; u++ {
		user := fmt.Sprintf("v-%d", u)
		ch, err := dsr.Revoke(context.Background(), user, nil)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		if len(ch.RetractedFrom) != 3 {
			t.Fatalf("revoke %s retracted from %v", user, ch.RetractedFrom)
		}
		for _, subj := range []string{user, fmt.Sprintf("v-a%d", 2*u), fmt.Sprintf("v-a%d", 2*u+1)} {
			returned[pseud(subj)] = at
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	s.exactness(t, returned, "revocation with linked ids")
}
