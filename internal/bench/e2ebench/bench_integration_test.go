package e2ebench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/testing/itest"
)

// TestMain lets this test binary be a contender's child process, as the
// bench binary is with --role.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "--role" {
		if err := RunChild(context.Background(), os.Args[2], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIntegrationRun runs the whole bench, small, on real Kafka and
// Redis: every contender in its child process, throughput then latency,
// every pass's writes checked, one table.
func TestIntegrationRun(t *testing.T) {
	env := itest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := Run(ctx, Options{Brokers: env.Kafka, Redis: env.Redis, Events: 2000, Users: 200, Partitions: 2, Rounds: 1, BatchSize: 200,
		LatencyDuration: 500 * time.Millisecond, KafkaVersion: "test"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("%d rows, want one per contender", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		if r.PerSec <= 0 || r.CPUPerEvent <= 0 || r.MaxRSS < 1<<20 || r.Latency == nil || r.Latency.Samples == 0 || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("row %+v, latency %+v", r, r.Latency)
		}
	}
	if rate := rep.Machine.LatencyRate; rate <= 0 || rep.Machine.LatencyEvents < 1 {
		t.Errorf("latency rate %v for %d events", rate, rep.Machine.LatencyEvents)
	}
	if !strings.Contains(out.String(), "| "+nameConsentd3+" | ") {
		t.Errorf("no table row for %s", nameConsentd3)
	}
}
