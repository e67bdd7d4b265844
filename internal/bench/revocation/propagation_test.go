package revocation

import (
	"testing"
	"time"
)

func TestAnalyze(t *testing.T) {
	at := time.UnixMilli(10_000)
	revoked := map[string]time.Time{"a": at, "b": at}
	out := []byte(`a 9000
b 9500
a 10003
x 9000
x 12000
b 11500
`)
	r, err := Analyze(out, revoked, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.OthersAfter != 1 || len(r.NoEventsBefore) != 0 || r.Late["b"] != 1 || r.Late["a"] != 0 {
		t.Fatalf("%+v", r)
	}
	if r.Percentile(0.5) != 1500*time.Millisecond || r.Percentile(0) != 3*time.Millisecond || r.Percentile(1) != 1500*time.Millisecond {
		t.Fatalf("latencies %v", r.Latencies)
	}
	if _, err := Analyze([]byte("garbage"), revoked, time.Second); err == nil {
		t.Fatal("garbage accepted")
	}
}
