package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/internal/testing/itest"
)

const segmentMetrics = `# TYPE consentd_segment_events_total counter
consentd_segment_events_total{field="context.location.country",purpose="personalization",stage="raw",value="DE"} 400
consentd_segment_events_total{field="context.location.country",purpose="personalization",stage="clean",value="DE"} 80
consentd_segment_events_total{field="context.location.country",purpose="personalization",stage="raw",value="FR"} 600
consentd_segment_events_total{field="context.location.country",purpose="personalization",stage="clean",value="FR"} 480
`

func TestReportRepresentationFromMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, segmentMetrics)
	}))
	defer srv.Close()
	cfg := explainConfig(t, "127.0.0.1:1", "127.0.0.1:1", "rep:")
	chart := filepath.Join(t.TempDir(), "r.png")
	code, out, errs := run2(t, "report", "representation", "--config", cfg, "--metrics", srv.URL+"/metrics", "--chart", chart)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{"personalization / context.location.country: 1000 raw events, 560 clean", "DE", "under-represented", "over-represented", "2 values flagged", "chart written to " + chart} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if st, err := os.Stat(chart); err != nil || st.Size() < 1000 {
		t.Errorf("chart: %v", err)
	}
	code, out, _ = run2(t, "report", "representation", "--config", cfg, "--metrics", srv.URL+"/metrics", "--json", "--flag-ratio", "3")
	var rep representation.Report
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if rep.FlagRatio != 3 || rep.Flagged != 0 {
		t.Errorf("--flag-ratio 3: %+v", rep)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report", "representation", "--config", cfg, "--metrics", srv.URL + "/nope"}, 1, "HTTP 404"},
		{[]string{"report", "representation", "--config", cfg, "--metrics", "http://127.0.0.1:1/metrics"}, 1, "admin.listen"},
		{[]string{"report", "representation", "--config", cfg, "--flag-ratio", "0.5"}, 2, "--flag-ratio 0.5 must be above 1"},
		{[]string{"report", "representation", "--config", cfg, "--to", "yesterday"}, 2, `--to "yesterday"`},
		{[]string{"report", "representation", "--config", cfg, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"report", "nonsense"}, 2, `report: unknown command "nonsense"`},
	} {
		code, out, errs := run2(t, bad.args...)
		if code != bad.code || !strings.Contains(out+errs, bad.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", bad.args[2:], code, bad.code, bad.want, out, errs)
		}
	}
	for _, help := range [][]string{{"report", "--help"}, {"report", "representation", "--help"}} {
		if code, out, errs := run2(t, help...); code != 0 || !strings.Contains(out+errs, "consentd report representation") {
			t.Errorf("%v: exit %d\n%s%s", help, code, out, errs)
		}
	}
}

// TestIntegrationReportRepresentationFromTopics runs the command over
// a raw topic on real Kafka: it counts the raw events per output (no
// clean ones: nothing decided them, so every value is (other)).
func TestIntegrationReportRepresentationFromTopics(t *testing.T) {
	env := itest.Require(t)
	id := itest.Unique("rep")
	dir := t.TempDir()
	polPath, _ := shippedPolicyOn(t, env.Kafka, id, dir)
	cfg := explainConfig(t, env.Kafka, env.Redis, id+":")
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "policy: ", "policy: "+polPath+"\n# was: ", 1)
	text = strings.Replace(text, "raw_topics: [raw.events]", "raw_topics: ["+id+".raw]", 1)
	os.WriteFile(cfg, []byte(text), 0o600)
	itest.CreateTopics(t, env.Kafka, 2, id+".raw")
	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		c := []string{"DE", "FR", "PT"}[i%3]
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(`{"type":"page","userId":"u` + fmt.Sprint(i) + `","context":{"location":{"country":"` + c + `"}}}`)})
	}
	msgs = append(msgs, kafka.Message{Value: []byte(`{"type":"page","context":{"location":{"country":"DE"}}}`)}, kafka.Message{Value: []byte(`not json`)})
	itest.Produce(t, env.Kafka, id+".raw", msgs...)
	code, out, errs := run2(t, "report", "representation", "--config", cfg, "--from", "1h", "--json")
	var rep representation.Report
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, errs)
	}
	got := map[string]int64{}
	for _, o := range rep.Outputs {
		for _, f := range o.Fields {
			for _, row := range f.Rows {
				got[o.Name+"/"+f.Name+"/"+row.Value] = row.Raw
				if row.Clean != 0 {
					t.Errorf("%s/%s/%s: %d clean events, none were written", o.Name, f.Name, row.Value, row.Clean)
				}
			}
		}
	}
	// Page events: personalization (no filter) and analytics (track,
	// page, screen) count them, advertising (track only) does not; the
	// event without a subject and the invalid one count nowhere. Nothing
	// was written, so no value is shown: a value no clean topic holds
	// counts as (other).
	for _, o := range []string{"personalization", "analytics"} {
		if n := got[o+"/context.location.country/(other)"]; n != 30 {
			t.Errorf("%s: %d raw events under (other), want 30 (%v)", o, n, got)
		}
		for _, c := range []string{"DE", "FR", "PT"} {
			if _, ok := got[o+"/context.location.country/"+c]; ok {
				t.Errorf("%s: %s shown, though no clean topic holds it", o, c)
			}
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "advertising/") {
			t.Errorf("advertising counted page events: %s", k)
		}
	}
}
