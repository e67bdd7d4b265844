package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/kafkaops"
)

// TestIntegrationRepresentation runs the shipped policy (segments type,
// event and country; personalization also locale) on real Kafka and
// Redis over subjects whose consent depends on their country, with
// hostile segment values mixed in, and checks the representation
// measurement three ways: the pipeline's metric, the report read back
// from the topics, and the counts the test's own model predicts.
func TestIntegrationRepresentation(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 2)
	rdb := itest.Redis(t, env.Redis)
	// 60 subjects; country by i%3. DE subjects grant personalization
	// one time in five, the others always; everyone grants analytics.
	countries := []string{"DE", "FR", "PT"}
	granted := func(i int) bool { return i%3 != 0 || i%5 == 0 }
	for i := 0; i < 60; i++ {
		perso := granted(i)
		if err := redisstore.Put(context.Background(), rdb, s.prefix, fmt.Sprintf("rep-%d", i), 1, map[string]bool{"personalization": perso, "analytics": true, "advertising": false}); err != nil {
			t.Fatal(err)
		}
	}
	model := map[string][2]int{} // personalization country: raw, clean
	var msgs []kafka.Message
	add := func(subject, country string, written bool, label string) {
		c := ""
		if country != "" {
			c = `,"location":{"country":` + country + `}`
		}
		msgs = append(msgs, kafka.Message{Key: []byte(subject), Value: []byte(`{"type":"track","event":"Product Viewed","userId":"` + subject + `","messageId":"m` + fmt.Sprint(len(msgs)) + `","context":{"locale":"en-GB"` + c + `}}`)})
		m := model[label]
		m[0]++
		if written {
			m[1]++
		}
		model[label] = m
	}
	for n := 0; n < 600; n++ {
		i := n % 60
		add(fmt.Sprintf("rep-%d", i), `"`+countries[i%3]+`"`, granted(i), countries[i%3])
	}
	// Hostile values: the subject's own id, an e-mail, a number that
	// looks like an account, an object, and a flood of distinct values
	// from a subject without any consent record (written nowhere: never
	// labelled, in the metric or the report: (other)).
	add("rep-1", `"rep-1"`, true, "(redacted)")
	add("rep-2", `"rep.two@example.com"`, true, "(redacted)")
	add("rep-4", `"AC1234567"`, true, "(redacted)")
	add("rep-5", `{"iso":"FR"}`, true, "(redacted)")
	add("rep-7", "", true, "(none)")
	for z := 0; z < 40; z++ {
		add("rep-none", fmt.Sprintf(`"Z%d"`, z), false, representation.Other)
	}
	r := s.start(t, nil)
	itest.Produce(t, env.Kafka, s.raw, msgs...)
	itest.Eventually(t, 60*time.Second, "every raw event consumed", func() bool {
		return r.metric(t, `consentd_events_consumed_total{topic="`+s.raw+`"}`) == float64(len(msgs))
	})

	// 1. The report from the topics equals the model, value by value.
	kc, err := connect.NewKafka(context.Background(), s.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := LoadPolicy(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := kafkaops.RepresentationFromTopics(context.Background(), pol, kafkaops.RepresentationSource{
		Dialer: kc.Dialer(), Brokers: kc.Brokers(), RawTopics: []string{s.raw}, From: time.Now().Add(-10 * time.Minute), To: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for value, want := range model {
		got := counts[representation.Key{Output: "personalization", Field: "context.location.country", Value: value}]
		if got.Raw != int64(want[0]) || got.Clean != int64(want[1]) {
			t.Errorf("topics: personalization country %q = %d raw, %d clean; want %d, %d", value, got.Raw, got.Clean, want[0], want[1])
		}
	}
	rep := representation.Build(counts, representation.Options{Top: 100, FlagRatio: 1.25})
	flagged := map[string]string{}
	for _, o := range rep.Outputs {
		for _, f := range o.Fields {
			for _, row := range f.Rows {
				if row.Flag != "" {
					flagged[o.Name+"/"+f.Name+"/"+row.Value] = row.Flag
				}
			}
		}
	}
	if flagged["personalization/context.location.country/DE"] != "under" {
		t.Errorf("DE is not flagged under-represented in personalization: %v", flagged)
	}
	// Everyone with a record consents to analytics: only (other), the
	// flood of the subject without a record, is under-represented there.
	for k := range flagged {
		if strings.HasPrefix(k, "analytics/") && k != "analytics/context.location.country/(other)" {
			t.Errorf("analytics is consented by everyone, yet %s is flagged", k)
		}
	}

	// 2. The metric: clean counts of labelled values equal the model;
	// raw counts of a labelled value miss only the events decided before
	// a written event carried it (counted as (other)); totals equal.
	_, body := r.get(t, "/metrics")
	mc, err := representation.FromMetrics(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var rawTotal, cleanTotal int64
	for k, p := range mc {
		if k.Output != "personalization" || k.Field != "context.location.country" {
			continue
		}
		rawTotal += p.Raw
		cleanTotal += p.Clean
		if strings.HasPrefix(k.Value, "Z") || strings.Contains(k.Value, "rep") || strings.Contains(k.Value, "@") || strings.Contains(k.Value, "1234567") {
			t.Errorf("metric label %q: a value no clean topic holds, or a personal one", k.Value)
		}
		if k.Value == representation.Other {
			continue
		}
		want := model[k.Value]
		if p.Clean != int64(want[1]) || p.Raw > int64(want[0]) {
			t.Errorf("metric: %q = %d raw, %d clean; want %d clean and at most %d raw", k.Value, p.Raw, p.Clean, want[1], want[0])
		}
	}
	if rawTotal != int64(len(msgs)) {
		t.Errorf("metric: %d raw personalization events, want %d", rawTotal, len(msgs))
	}
	if w := r.metric(t, `consentd_events_written_total{output="personalization"}`); float64(cleanTotal) != w {
		t.Errorf("metric: %d clean personalization events, but %v written", cleanTotal, w)
	}
	s.assertNoPersonalData(t, "rep.two@example.com", "AC1234567")
}
