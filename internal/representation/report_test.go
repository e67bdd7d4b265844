package representation

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildSharesRatesAndFlags(t *testing.T) {
	c := Counts{}
	// 1000 raw events: DE 400 (consent 20%), FR 300 (60%), US 280 (60%),
	// IT 20 (0%: too few to flag).
	for _, v := range []struct {
		value      string
		raw, clean int64
	}{{"DE", 400, 80}, {"FR", 300, 180}, {"US", 280, 168}, {"IT", 20, 0}} {
		c.Add(Key{"o", "country", v.value}, false, v.raw)
		c.Add(Key{"o", "country", v.value}, true, v.clean)
	}
	r := Build(c, Options{FlagRatio: 1.5, MinEvents: 30})
	if len(r.Outputs) != 1 || len(r.Outputs[0].Fields) != 1 {
		t.Fatalf("report shape: %+v", r)
	}
	f := r.Outputs[0].Fields[0]
	if f.Raw != 1000 || f.Clean != 428 {
		t.Fatalf("totals %d/%d", f.Raw, f.Clean)
	}
	rows := map[string]Row{}
	for _, row := range f.Rows {
		rows[row.Value] = row
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	de := rows["DE"]
	if !near(de.RawShare, 0.4) || !near(de.CleanShare, 80.0/428) || !near(de.ConsentRate, 0.2) || de.Flag != "under" {
		t.Errorf("DE row %+v", de)
	}
	if fr := rows["FR"]; fr.Flag != "" || !near(fr.Ratio, (180.0/428)/0.3) {
		t.Errorf("FR row %+v (ratio %.3f is within 1.5)", fr, fr.Ratio)
	}
	if it := rows["IT"]; it.Flag != "" || it.ConsentRate != 0 {
		t.Errorf("IT row %+v: below min events, never flagged", it)
	}
	if r.Flagged != 1 {
		t.Errorf("flagged %d, want 1 (DE)", r.Flagged)
	}
	if f.Rows[0].Value != "DE" {
		t.Errorf("rows not by raw count: %v", f.Rows)
	}
}

func TestBuildFoldsPastTopIntoOther(t *testing.T) {
	c := Counts{}
	for i, v := range []string{"a", "b", "c", "d", "e"} {
		c.Add(Key{"o", "f", v}, false, int64(100-i))
	}
	c.Add(Key{"o", "f", Other}, false, 7)
	r := Build(c, Options{Top: 2})
	var got []string
	var other Row
	for _, row := range r.Outputs[0].Fields[0].Rows {
		got = append(got, row.Value)
		if row.Value == Other {
			other = row
		}
	}
	if strings.Join(got, ",") != "a,b,(other)" || other.Raw != 98+97+96+7 {
		t.Fatalf("rows %v, other %+v", got, other)
	}
}

func TestFromMetrics(t *testing.T) {
	text := `# HELP consentd_segment_events_total x
# TYPE consentd_segment_events_total counter
consentd_segment_events_total{field="country",purpose="ads",stage="raw",value="DE"} 40
consentd_segment_events_total{field="country",purpose="ads",stage="clean",value="DE"} 10
consentd_segment_events_total{field="country",purpose="ads",stage="raw",value="FR"} 60
consentd_segment_events_total{field="country",purpose="ads",stage="clean",value="FR"} 50
# TYPE consentd_events_written_total counter
consentd_events_written_total{output="ads"} 60
`
	c, err := FromMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c[Key{"ads", "country", "DE"}] != (Pair{40, 10}) || c[Key{"ads", "country", "FR"}] != (Pair{60, 50}) || len(c) != 2 {
		t.Fatalf("counts %v", c)
	}
	if _, err := FromMetrics(strings.NewReader(`consentd_segment_events_total{field="f",purpose="p",stage="x",value="v"} 1` + "\n")); err == nil || !strings.Contains(err.Error(), `stage "x"`) {
		t.Fatalf("bad stage: err %v", err)
	}
	if _, err := FromMetrics(strings.NewReader("not metrics {{{\n")); err == nil {
		t.Fatal("garbage read without error")
	}
}

func TestReportTextJSONAndChart(t *testing.T) {
	c := Counts{}
	c.Add(Key{"o", "country", "DE"}, false, 400)
	c.Add(Key{"o", "country", "DE"}, true, 80)
	c.Add(Key{"o", "country", "FR"}, false, 600)
	c.Add(Key{"o", "country", "FR"}, true, 480)
	c.Add(Key{"o", "country", "XX"}, true, 5) // inconsistent input: clean without raw
	r := Build(c, Options{})
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"o / country: 1000 raw events, 565 clean", "DE", "under-represented", "inf"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse back: %v\n%s", err, js.String())
	}
	if back.Flagged != r.Flagged || len(back.Outputs[0].Fields[0].Rows) != 3 {
		t.Fatalf("JSON round trip: %+v", back)
	}
	dir := t.TempDir()
	svg := filepath.Join(dir, "r.svg")
	if err := r.WriteChart(svg); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(svg)
	if !bytes.Contains(data, []byte("<svg")) || !bytes.Contains(data, []byte("share of events")) {
		t.Fatalf("svg: %.200s", data)
	}
	pngPath := filepath.Join(dir, "r.png")
	if err := r.WriteChart(pngPath); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(pngPath)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("png: %v", err)
	}
	if err := r.WriteChart(filepath.Join(dir, "r.gif")); err == nil {
		t.Fatal("a .gif chart was accepted")
	}
	if err := Build(Counts{}, Options{}).WriteChart(filepath.Join(dir, "e.svg")); err == nil {
		t.Fatal("an empty chart was drawn")
	}
}
