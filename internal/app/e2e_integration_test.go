package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

type rawEvent struct {
	key, value string
}

// The events and what the shipped policy must make of them.
var e2eEvents = []rawEvent{
	{"uAll", `{"type":"track","event":"Order Completed","userId":"uAll","anonymousId":"anA","messageId":"m1","timestamp":"2026-11-22T10:15:30.5Z","context":{"ip":"203.0.113.77","userAgent":"UA","locale":"de-DE","page":{"path":"/checkout","url":"https://s/checkout?x=1"},"location":{"latitude":52.520008,"longitude":-13.404954,"country":"DE","city":"Berlin"},"device":{"id":"dev1","advertisingId":"ad1"},"traits":{"email":"a@x"}},"properties":{"product_id":"p1","revenue":12.5,"currency":"EUR","email":"a@x"},"traits":{"email":"a@x","plan":"pro"}}`},
	{"uPerso", `{"type":"page","userId":"uPerso","messageId":"m2","timestamp":"2026-11-22T11:00:00Z","context":{"ip":"2001:db8:aaaa:bbbb::1"}}`},
	{"uDenied", `{"type":"track","event":"Order Completed","userId":"uDenied","messageId":"m3"}`},
	{"uNone", `{"type":"track","event":"Order Completed","userId":"uNone","messageId":"m4"}`},
	{"uAll", `{"type":"identify","userId":"uAll","messageId":"m5","traits":{"email":"a@x","plan":"pro"}}`},
	{"anonAll", `{"type":"track","event":"Product Viewed","anonymousId":"anonAll","messageId":"m6","properties":{"product_id":"p9","category":"shoes","email":"z"}}`},
	{"nobody", `{"type":"track","messageId":"m7"}`},
	{"uAll", `{"type":"track","userId":"uAll"`},
	{"uAll", `{"type":"track","userId":"uAll","messageId":"m9","context":{"ip":"1.1.1.1","ip":"2.2.2.2"}}`},
	{"uAll", `{"type":"track","userId":"uAll","messageId":"m10","properties":{"blob":"` + strings.Repeat("x", 5000) + `"}}`},
	{"uAll", `{"type":"track","userId":"uAll","messageId":"m11","context":{"ip":"999.1.1.1"}}`},
	{"uAll", `[1,2,3]`},
	{"uAll", `{"type":"track","userId":42,"messageId":"m13"}`},
}

func seedE2EConsent(t *testing.T, s *stack) {
	t.Helper()
	rdb := itest.Redis(t, s.env.Redis)
	ctx := context.Background()
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	for subj, rec := range map[string]struct {
		v int64
		p map[string]bool
	}{
		"uAll":    {7, all},
		"anonAll": {8, all},
		"uPerso":  {3, map[string]bool{"personalization": true, "analytics": false, "advertising": false}},
		"uDenied": {2, map[string]bool{"personalization": false, "analytics": false, "advertising": false}},
	} {
		if err := redisstore.Put(ctx, rdb, s.prefix, subj, rec.v, rec.p); err != nil {
			t.Fatal(err)
		}
	}
}

func produceWithKcat(t *testing.T, env itest.Env, topic string, events []rawEvent) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat is not installed (make test installs it): %v", err)
	}
	var in bytes.Buffer
	for _, e := range events {
		fmt.Fprintf(&in, "%s\t%s\n", e.key, e.value)
	}
	cmd := exec.Command("kcat", append(env.KcatArgs(), "-P", "-t", topic, "-K", "\t", "-X", "acks=all", "-X", "message.max.bytes=1000000")...)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
}

func TestIntegrationEndToEnd(t *testing.T) {
	itest.Variants(t, []string{itest.Plain, itest.Secure, itest.Sentinel}, testIntegrationEndToEnd)
}

func testIntegrationEndToEnd(t *testing.T, env itest.Env) {
	s := newStack(t, env, 2)
	seedE2EConsent(t, s)
	// Every clean message names the exact policy text that decided it:
	// what sha256sum prints for the policy file.
	polText, err := os.ReadFile(filepath.Join(filepath.Dir(s.cfgPath), "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policyDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(polText))
	// Raw events arrive through a third-party client (kcat/librdkafka).
	produceWithKcat(t, env, s.raw, e2eEvents)

	r := s.start(t, nil)
	itest.Eventually(t, 60*time.Second, "all raw events consumed", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == float64(len(e2eEvents))
	})
	itest.Eventually(t, 20*time.Second, "offsets committed", func() bool {
		c := itest.Committed(t, env.Kafka, s.group, s.raw, 2)
		return c[0]+c[1] == int64(len(e2eEvents))
	})
	if code, body := r.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}

	P := pseud
	want := map[string]map[string]string{ // topic -> messageId -> value
		s.perso: {
			"m1": `{"type":"track","event":"Order Completed","userId":"` + P("uAll") + `","anonymousId":"` + P("anA") + `","messageId":"m1","timestamp":"2026-11-22T10:15:00Z","context":{"ip":"203.0.113.0","locale":"de-DE","page":{"path":"/checkout","url":"https://s/checkout"},"location":{"latitude":52.52,"longitude":-13.4,"country":"DE","city":"Berlin"},"device":{"id":"` + P("dev1") + `"}},"properties":{"product_id":"p1","revenue":12.5,"currency":"EUR"},"traits":{"plan":"pro"}}`,
			"m2": `{"type":"page","userId":"` + P("uPerso") + `","messageId":"m2","timestamp":"2026-11-22T11:00:00Z","context":{"ip":"2001:db8:aaaa::"}}`,
			"m5": `{"type":"identify","userId":"` + P("uAll") + `","messageId":"m5","traits":{"plan":"pro"}}`,
			"m6": `{"type":"track","event":"Product Viewed","anonymousId":"` + P("anonAll") + `","messageId":"m6","properties":{"product_id":"p9","category":"shoes"}}`,
		},
		s.ana: {
			"m1": `{"type":"track","event":"Order Completed","userId":"` + P("uAll") + `","anonymousId":"` + P("anA") + `","messageId":"m1","timestamp":"2026-11-22T10:00:00Z","context":{"locale":"de-DE","page":{"path":"/checkout"},"location":{"country":"DE"}},"properties":{"product_id":"p1","revenue":12.5,"currency":"EUR"}}`,
			"m6": `{"type":"track","event":"Product Viewed","anonymousId":"` + P("anonAll") + `","messageId":"m6","properties":{"product_id":"p9","category":"shoes"}}`,
		},
		s.adv: {
			"m1": `{"type":"track","event":"Order Completed","userId":"` + P("uAll") + `","anonymousId":"` + P("anA") + `","messageId":"m1","timestamp":"2026-11-22T10:00:00Z","context":{"location":{"country":"DE"}},"properties":{"product_id":"p1","revenue":12.5,"currency":"EUR"}}`,
			"m6": `{"type":"track","event":"Product Viewed","anonymousId":"` + P("anonAll") + `","messageId":"m6","properties":{"product_id":"p9","category":"shoes"}}`,
		},
	}
	wantKey := map[string]string{"m1": P("uAll"), "m2": P("uPerso"), "m5": P("uAll"), "m6": P("anonAll")}
	wantConsentV := map[string]string{"m1": "7", "m2": "3", "m5": "7", "m6": "8"}
	names := map[string]string{s.perso: "personalization", s.ana: "analytics", s.adv: "advertising"}

	for topic, msgs := range want {
		got := itest.ReadAll(t, env.Kafka, topic)
		if len(got) != len(msgs) {
			t.Errorf("%s holds %d messages, want %d", names[topic], len(got), len(msgs))
		}
		var order []string
		for _, m := range got {
			id := messageID(t, m.Value)
			w, ok := msgs[id]
			if !ok {
				t.Errorf("%s: unexpected event %s: %s", names[topic], id, m.Value)
				continue
			}
			if string(m.Value) != w {
				t.Errorf("%s %s:\n got %s\nwant %s", names[topic], id, m.Value, w)
			}
			if string(m.Key) != wantKey[id] {
				t.Errorf("%s %s: key %s, want %s", names[topic], id, m.Key, wantKey[id])
			}
			checkHeader(t, m, wire.HeaderPolicyVersion, "2026-11-22.1")
			checkHeader(t, m, wire.HeaderPolicyDigest, policyDigest)
			checkHeader(t, m, wire.HeaderConsentVersion, wantConsentV[id])
			checkHeader(t, m, wire.HeaderOutput, names[topic])
			if a, _ := itest.Header(m, wire.HeaderActions); a == "" {
				t.Errorf("%s %s: no actions header", names[topic], id)
			}
			// The record time says no more than the body: every shipped
			// output truncates time to the minute or coarser.
			if !m.Time.Equal(m.Time.Truncate(time.Minute)) {
				t.Errorf("%s %s: record time %v is not truncated", names[topic], id, m.Time)
			}
			if src, _ := itest.Header(m, wire.HeaderSource); !strings.HasPrefix(src, s.raw+"/") {
				t.Errorf("%s %s: source header %q", names[topic], id, src)
			}
			for _, raw := range []string{"uAll", "uPerso", "anonAll", "anA", "203.0.113.77", "a@x", "dev1", "ad1"} {
				if bytes.Contains(m.Value, []byte(`"`+raw+`"`)) || bytes.Contains(m.Key, []byte(raw)) {
					t.Errorf("%s %s leaks %q", names[topic], id, raw)
				}
			}
			if string(m.Key) == P("uAll") {
				order = append(order, id)
			}
		}
		if topic == s.perso && strings.Join(order, ",") != "m1,m5" {
			t.Errorf("per-subject order in personalization = %v, want m1,m5", order)
		}
	}
	// The personalization actions header says what was removed and why.
	for _, m := range itest.ReadAll(t, env.Kafka, s.perso) {
		if messageID(t, m.Value) == "m1" {
			checkHeader(t, m, wire.HeaderActions, "drop_fields:context.device.advertisingId,drop_fields:context.userAgent,keep_only:context(1 removed),keep_only:properties(1 removed),keep_only:traits(1 removed),pseudonymize:userId,pseudonymize:anonymousId,pseudonymize:context.device.id,truncate_ip:context.ip,round_geo:context.location.latitude,round_geo:context.location.longitude,truncate_time:timestamp,scrub:context.page.url(1 replaced)")
		}
	}

	// Dead letters: original bytes, reason and source coordinates.
	wantDLQ := map[string]string{ // reason -> original value prefix
		"invalid_json":    `{"type":"track","userId":"uAll"`,
		"duplicate_key":   `{"type":"track","userId":"uAll","messageId":"m9"`,
		"too_large":       `{"type":"track","userId":"uAll","messageId":"m10"`,
		"invalid_ip":      `{"type":"track","userId":"uAll","messageId":"m11"`,
		"not_object":      `[1,2,3]`,
		"invalid_subject": `{"type":"track","userId":42`,
	}
	dlq := itest.ReadAll(t, env.Kafka, s.dlq)
	if len(dlq) != len(wantDLQ) {
		t.Errorf("dead-letter topic holds %d messages, want %d", len(dlq), len(wantDLQ))
	}
	for _, m := range dlq {
		reason, _ := itest.Header(m, wire.HeaderDLQReason)
		prefix, ok := wantDLQ[reason]
		if !ok || !strings.HasPrefix(string(m.Value), prefix) {
			t.Errorf("dead letter %q: %.80s", reason, m.Value)
		}
		delete(wantDLQ, reason)
		checkHeader(t, m, wire.HeaderSourceTopic, s.raw)
		if _, ok := itest.Header(m, wire.HeaderSourceOffset); !ok {
			t.Errorf("dead letter %s has no source offset", reason)
		}
		if e, _ := itest.Header(m, wire.HeaderDLQError); e == "" || strings.Contains(e, "1.1.1.1") || strings.Contains(e, "999.1.1.1") {
			t.Errorf("dead letter %s error header %q", reason, e)
		}
		if string(m.Key) != "uAll" {
			t.Errorf("dead letter %s: key %q, want the original key", reason, m.Key)
		}
	}
	if len(wantDLQ) > 0 {
		t.Errorf("missing dead letters: %v", wantDLQ)
	}

	// Every event is accounted for exactly once in the metrics.
	checks := map[string]float64{
		`consentd_events_written_total{output="personalization"}`:                                      4,
		`consentd_events_written_total{output="analytics"}`:                                            2,
		`consentd_events_written_total{output="advertising"}`:                                          2,
		`consentd_events_dropped_total{reason="consent_denied:personalization"}`:                       2,
		`consentd_events_dropped_total{reason="no_subject"}`:                                           1,
		`consentd_events_dead_lettered_total{reason="invalid_json"}`:                                   1,
		`consentd_events_dead_lettered_total{reason="duplicate_key"}`:                                  1,
		`consentd_events_dead_lettered_total{reason="too_large"}`:                                      1,
		`consentd_decisions_total{action="skip",output="analytics",reason="consent_denied:analytics"}`: 3,
		`consentd_decisions_total{action="skip",output="analytics",reason="filtered"}`:                 1,
		`consentd_decisions_total{action="skip",output="advertising",reason="filtered"}`:               1,
		`consentd_ready`: 1,
	}
	_, body := r.get(t, "/metrics")
	for series, v := range checks {
		if got := metricValue(body, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	delivered := 0.0
	for _, reason := range []string{"consent_denied:personalization", "no_subject"} {
		delivered += metricValue(body, `consentd_events_dropped_total{reason="`+reason+`"}`)
	}
	for _, reason := range []string{"invalid_json", "duplicate_key", "too_large", "invalid_ip", "not_object", "invalid_subject"} {
		delivered += metricValue(body, `consentd_events_dead_lettered_total{reason="`+reason+`"}`)
	}
	if written := 4.0; delivered+written != float64(len(e2eEvents)) { // m1, m2, m5, m6 reach at least one output
		t.Errorf("accounted %v of %d events", delivered+written, len(e2eEvents))
	}
	if metricValue(body, "consentd_consent_lookups_total") == 0 {
		t.Error("no consent lookups counted")
	}
	if !strings.Contains(body, "consentd_consent_lookup_seconds_bucket") || !strings.Contains(body, "consentd_produce_seconds_bucket") {
		t.Error("latency histograms missing")
	}

	// Committed offsets cover every raw message, per partition.
	ends, err := itest.Offsets(env.Kafka, s.raw)
	if err != nil {
		t.Fatal(err)
	}
	committed := itest.Committed(t, env.Kafka, s.group, s.raw, 2)
	for p, o := range ends {
		if committed[p] != o[1] {
			t.Errorf("partition %d: committed %d, end %d", p, committed[p], o[1])
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	s.assertNoPersonalData(t, "uAll", "uPerso", "uDenied", "uNone", "anonAll", "anA", "203.0.113.77", "2001:db8:aaaa", "a@x", "1.1.1.1", "999.1.1.1")

	// A third-party consumer (kcat) reads the clean topic: same keys, values and headers.
	out, err := exec.Command("kcat", append(env.KcatArgs(), "-C", "-t", s.perso, "-e", "-q", "-f", "%k\t%h\t%s\n")...).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	if len(lines) != 4 {
		t.Fatalf("kcat read %d messages: %s", len(lines), out)
	}
	for _, l := range lines {
		parts := strings.SplitN(l, "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("kcat line %q", l)
		}
		id := messageID(t, []byte(parts[2]))
		if parts[0] != wantKey[id] || parts[2] != want[s.perso][id] || !strings.Contains(parts[1], wire.HeaderPolicyVersion+"=2026-11-22.1") {
			t.Errorf("kcat sees %q", l)
		}
	}
	// An independent check of everything written finds nothing.
	s.audit(t, "uAll", "uPerso", "uDenied", "uNone", "anA")
}

func checkHeader(t *testing.T, m kafka.Message, key, want string) {
	t.Helper()
	if got, ok := itest.Header(m, key); !ok || got != want {
		t.Errorf("message %s: header %s = %q, want %q", messageIDOr(m.Value), key, got, want)
	}
}

func messageIDOr(v []byte) string {
	i := bytes.Index(v, []byte(`"messageId":"`))
	if i < 0 {
		return "?"
	}
	rest := v[i+len(`"messageId":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func messageID(t *testing.T, v []byte) string {
	t.Helper()
	id := messageIDOr(v)
	if id == "?" {
		t.Fatalf("no messageId in %s", v)
	}
	return id
}
