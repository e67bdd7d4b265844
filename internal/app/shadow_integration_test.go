package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/kafkaops"
)

// TestIntegrationShadowPolicy: a shadow policy runs beside the live one
// on real Kafka and Redis: the clean topics get what the live policy
// writes, consentd_shadow_diff_total counts the differences the change
// makes and no other, and the report topic's summary shows them.
func TestIntegrationShadowPolicy(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 2)
	seedFull(t, env.Redis, s.prefix, "sh")
	live, err := os.ReadFile(s.cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	// The change under review: advertising no longer keeps messageId, and
	// the personalization output goes.
	shadow := strings.Replace(string(live), "keep_only: [type, event, messageId, timestamp, userId, anonymousId, properties.product_id, properties.category, properties.revenue, properties.currency, context.location.country]",
		"keep_only: [type, event, timestamp, userId, anonymousId, properties.product_id, properties.category, properties.revenue, properties.currency, context.location.country]", 1)
	i := strings.Index(shadow, "  - name: personalization")
	j := strings.Index(shadow, "  - name: analytics")
	if i < 0 || j < i || shadow == string(live) {
		t.Fatal("the shipped policy changed: the shadow's edit does not apply")
	}
	shadow = shadow[:i] + shadow[j:]
	shadowPath := filepath.Join(filepath.Dir(s.cfgPath), "policy.shadow.yaml")
	if err := os.WriteFile(shadowPath, []byte(shadow), 0o600); err != nil {
		t.Fatal(err)
	}
	report := s.raw + ".shadow"
	itest.CreateTopics(t, env.Kafka, 1, report)
	r := s.start(t, func(c *config.Config) {
		c.ShadowPolicy, c.Shadow.ReportTopic, c.Shadow.ReportPerSecond = shadowPath, report, 1000
	})
	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("sh", 0, 100)...)
	itest.Eventually(t, 60*time.Second, "every raw event consumed", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == 100
	})
	if n := r.metric(t, "consentd_shadow_events_total"); n != 100 {
		t.Errorf("the shadow decided %v events, want 100", n)
	}
	for _, series := range []string{`{kind="field_removed",output="advertising"}`, `{kind="transform_changed",output="advertising"}`, `{kind="newly_dropped",output="personalization"}`} {
		if n := r.metric(t, "consentd_shadow_diff_total"+series); n != 100 {
			t.Errorf("consentd_shadow_diff_total%s = %v, want 100 (one per event)", series, n)
		}
	}
	_, body := r.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "consentd_shadow_diff_total{") && !strings.Contains(l, `output="advertising"`) && !strings.Contains(l, `kind="newly_dropped",output="personalization"`) {
			t.Errorf("a difference the change does not make: %s", l)
		}
	}
	// The live policy still decides: advertising keeps messageId, the
	// personalization topic is written.
	itest.Eventually(t, 30*time.Second, "clean topics written", func() bool {
		return itest.Count(t, env.Kafka, s.adv) == 100 && itest.Count(t, env.Kafka, s.perso) == 100
	})
	for _, m := range itest.ReadAll(t, env.Kafka, s.adv) {
		if !bytes.Contains(m.Value, []byte(`"messageId"`)) {
			t.Fatalf("the shadow changed a clean message: %s", m.Value)
		}
	}
	kc := r.app.Kafka
	var sum *kafkaops.ShadowSummary
	itest.Eventually(t, 30*time.Second, "the report topic written", func() bool {
		sum, err = kafkaops.ReadShadowReport(context.Background(), kc.Dialer(), kc.Brokers(), report, time.Time{})
		return err == nil && sum.Records == 100
	})
	var out bytes.Buffer
	sum.Print(&out, 5)
	for _, want := range []string{"advertising          field_removed               100  messageId (100)", "personalization      newly_dropped               100"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, out.String())
		}
	}
	// Rows (shadow report --json) carry the same.
	found := false
	for _, r := range sum.Rows(5) {
		if r.Output == "advertising" && r.Kind == "field_removed" {
			found = r.Events == 100 && len(r.Paths) > 0 && r.Paths[0] == kafkaops.ShadowPath{Path: "messageId", Events: 100}
		}
	}
	if !found {
		t.Errorf("the rows lack advertising field_removed messageId (100): %+v", sum.Rows(5))
	}
	t.Logf("consentd shadow report:\n%s", out.String())
}
