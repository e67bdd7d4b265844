package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/audit"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/policy"
)

// TestIntegrationAudit: on real Kafka, the audit passes what consentd
// renders and finds every violation seeded by hand: an e-mail address in
// a kept field, an unpseudonymized id, an IP with host bits, a message
// after its key's retraction, a record of another policy.
func TestIntegrationAudit(t *testing.T) {
	env := itest.Require(t)
	id := itest.Unique("audit")
	polPath, topics := shippedPolicyOn(t, env.Kafka, id, t.TempDir())
	cfg := explainConfig(t, env.Kafka, env.Redis, id+":")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "policy: ", "policy: "+polPath+"\n# was: ", 1)), 0o600)

	// What consentd writes for a few events, rendered by its processor.
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := parseInlineConsent(`{"found":true,"version":3,"purposes":{"personalization":true,"analytics":true,"advertising":true}}`)
	p, closeFn, err := app.NewExplainer(c, &rec, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	var own []kafka.Message
	var perEvent []int
	for i, ev := range []string{explainEvent,
		strings.Replace(explainEvent, "u-4711", "u-4712", 1),
		`{"type":"page","userId":"u-9","properties":{"path":"/a","title":"Shop"},"context":{"ip":"2001:db8:1:2:3::9","location":{"latitude":48.1371,"longitude":11.5754}}}`} {
		ex, err := p.Explain(context.Background(), kafka.Message{Topic: "raw.events", Offset: int64(i), Value: []byte(ev), Time: time.Now()})
		if err != nil || len(ex.Out) == 0 {
			t.Fatalf("event %d: %d messages, %v", i, len(ex.Out), err)
		}
		own = append(own, ex.Out...)
		perEvent = append(perEvent, len(ex.Out))
	}
	itest.Produce(t, env.Kafka, topics["personalization"], filterTopic(own, topics["personalization"])...)
	itest.Produce(t, env.Kafka, topics["analytics"], filterTopic(own, topics["analytics"])...)

	code, out, errs := auditRun(t, "--config", cfg, "--quiet")
	if code != 0 || !strings.Contains(out, "no findings") {
		t.Fatalf("audit of consentd's own output: exit %d\n%s%s", code, out, errs)
	}

	// Violations, written by hand.
	ana := filterTopic(own, topics["analytics"])[0]
	email := ana
	email.Value = []byte(strings.Replace(string(ana.Value), `"type":"track"`, `"type":"track","event":"mail carol@example.net"`, 1))
	email.Value = []byte(strings.Replace(string(email.Value), `"event":"Order Completed",`, ``, 1))
	rawID := ana
	rawID.Value = []byte(strings.Replace(string(ana.Value), string(ana.Key), "u-4711", 1))
	retraction := kafka.Message{Key: ana.Key, Headers: []kafka.Header{{Key: "consentd-retraction", Value: []byte("consent_revoked")}, {Key: "consentd-consent-version", Value: []byte("4")}}}
	again := ana // version 3 after a retraction at version 4
	other := ana
	other.Headers = append([]kafka.Header{{Key: "consentd-policy-sha256", Value: []byte("sha256:0000")}}, withoutHeader(ana.Headers, "consentd-policy-sha256")...)
	itest.Produce(t, env.Kafka, topics["analytics"], email, rawID, retraction, again, other)
	perso := filterTopic(own, topics["personalization"])[0]
	hostBits := perso
	hostBits.Value = []byte(strings.Replace(string(perso.Value), `"ip":"203.0.113.0"`, `"ip":"203.0.113.77"`, 1))
	if bytes.Equal(hostBits.Value, perso.Value) {
		t.Fatalf("no truncated IP to seed in %s", perso.Value)
	}
	itest.Produce(t, env.Kafka, topics["personalization"], hostBits)

	code, out, errs = auditRun(t, "--config", cfg, "--quiet", "--json")
	if code != 1 || !strings.Contains(errs, "findings in") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, kind := range []string{audit.KindEmail, audit.KindNotPseudonymized, audit.KindAfterRetraction, audit.KindPolicy, audit.KindHostBits} {
		if rep.ByKind[kind] == 0 {
			t.Errorf("no %s finding: %+v", kind, rep)
		}
	}
	seeded := map[string]bool{}
	for _, o := range []int{len(filterTopic(own, topics["analytics"])), len(filterTopic(own, topics["analytics"])) + 1, len(filterTopic(own, topics["analytics"])) + 3, len(filterTopic(own, topics["analytics"])) + 4} {
		seeded[topics["analytics"]+"/0/"+strconv.Itoa(o)] = true
	}
	seeded[topics["personalization"]+"/0/"+strconv.Itoa(len(filterTopic(own, topics["personalization"])))] = true
	for _, m := range rep.Findings {
		if !seeded[m.At] {
			t.Errorf("a finding in a message consentd wrote or a seeded one at another offset: %+v", m)
		}
		delete(seeded, m.At)
	}
	if len(seeded) > 0 {
		t.Errorf("seeded violations not found: %v", seeded)
	}
	if strings.Contains(out, "carol@example.net") || strings.Contains(out, "u-4711") {
		t.Errorf("the report shows a value it found: %s", out)
	}
	if rep.Messages != int64(len(own))+5 || rep.Retractions != 1 {
		t.Errorf("audited %d messages and %d retractions", rep.Messages, rep.Retractions)
	}
	code, out, _ = auditRun(t, "--config", cfg, "--quiet")
	if code != 1 || !strings.Contains(out, "findings:") {
		t.Errorf("the report for people: exit %d\n%s", code, out)
	}
	t.Logf("consentd audit:\n%s", out)

	// Against the store: u-4711 grants what its messages need; u-4712 has
	// no record (say, erased without a retraction), so its messages should
	// not be there.
	if code, out, errs := run2(t, "consent", "set", "u-4711", "personalization=true", "analytics=true", "--config", cfg); code != 0 {
		t.Fatalf("consent set: %d %s %s", code, out, errs)
	}
	ids := filepath.Join(t.TempDir(), "ids")
	os.WriteFile(ids, []byte("u-4711\nu-4712\n"), 0o600)
	code, out, _ = auditRun(t, "--config", cfg, "--quiet", "--json", "--ids", ids)
	rep = audit.Report{}
	if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	u4712 := 0
	for _, m := range rep.Findings {
		for _, f := range m.Findings {
			if f.Kind == audit.KindWithdrawn {
				u4712++
			}
		}
	}
	want := perEvent[1] // u-4712's messages: one per output its event went to
	if u4712 != want || rep.Checked == 0 {
		t.Errorf("%d %s findings, want %d (u-4712's messages); %d checked against the store: %+v", u4712, audit.KindWithdrawn, want, rep.Checked, rep.Findings)
	}
}

func auditRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(append([]string{"audit"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

func filterTopic(ms []kafka.Message, topic string) []kafka.Message {
	var out []kafka.Message
	for _, m := range ms {
		if m.Topic == topic {
			m.Topic = ""
			out = append(out, m)
		}
	}
	return out
}

func withoutHeader(hs []kafka.Header, key string) []kafka.Header {
	var out []kafka.Header
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}

// TestAuditComputesConsentdsKeys: the auditor's own pseudonym recipe (from
// the README, written again) gives the message keys consentd writes, in
// both pseudonymization modes.
func TestAuditComputesConsentdsKeys(t *testing.T) {
	keyFile := []byte("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\nk0:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=:retired=2026-01-01T00:00:00Z\n")
	keys, err := policy.ParseKeyring("keys", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	shipped, _ := os.ReadFile("../../configs/policy.yaml")
	for _, perOutput := range []bool{false, true} {
		text := strings.Replace(string(shipped), "per_output: false", "per_output: "+strconv.FormatBool(perOutput), 1)
		pol, err := policy.FromBytes("p.yaml", []byte(text), keys)
		if err != nil {
			t.Fatal(err)
		}
		ap, err := audit.ReadPolicy([]byte(text), pol.Digest)
		if err != nil {
			t.Fatal(err)
		}
		subjects, err := audit.Subjects(keyFile, []string{"u-1", "anon-2"}, ap)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range pol.Outputs {
			for _, s := range []string{"u-1", "anon-2"} {
				k, err := pol.OutputKey(o, s)
				if err != nil {
					t.Fatal(err)
				}
				if subjects[string(k)] != s {
					t.Errorf("per_output %t, output %s: consentd's key %s for %s is not among the auditor's", perOutput, o.Name, k, s)
				}
			}
		}
	}
}
