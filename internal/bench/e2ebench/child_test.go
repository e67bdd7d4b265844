package e2ebench

import (
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stdout  string
		want    ChildReport
		wantErr string
	}{
		{"one line", `{"Consumed":10,"Outputs":7,"Wall":2000000000,"Steady":1000000000}` + "\n",
			ChildReport{Consumed: 10, Outputs: 7, Wall: 2 * time.Second, Steady: time.Second}, ""},
		{"the last JSON line wins over other output", "starting\n{\"Consumed\":1}\nnoise\n{\"Consumed\":2}\n", ChildReport{Consumed: 2}, ""},
		{"nothing", "", ChildReport{}, "no report"},
		{"broken", "{\"Consumed\":\n", ChildReport{}, "child report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseReport([]byte(tc.stdout))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseReport = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte(strings.Repeat("x", 5000)))
	b.Write([]byte("the end\n"))
	if s := b.String(); len(s) > 4096 || !strings.HasSuffix(s, "the end") {
		t.Errorf("tail = %d bytes ending %q", len(s), s[len(s)-10:])
	}
}
