// Command consentd-bench measures consentd end to end on a real Kafka and
// Redis against a plain kafka-go consume→produce→commit pass-through on the
// same data in the same run. `make bench-e2e` starts the services and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/consentd/consentd/internal/bench/e2ebench"
)

func main() {
	var o e2ebench.Options
	flag.StringVar(&o.Brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap broker")
	flag.StringVar(&o.Redis, "redis", "127.0.0.1:6379", "Redis address")
	flag.IntVar(&o.Events, "events", 200000, "raw events to preload and process")
	flag.IntVar(&o.Users, "users", 20000, "synthetic users")
	flag.IntVar(&o.Partitions, "partitions", 4, "partitions of every topic")
	flag.IntVar(&o.Rounds, "rounds", 2, "alternating rounds of pass-through then consentd")
	flag.IntVar(&o.BatchSize, "batch", 1000, "batch size for both")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	propagation := flag.Bool("propagation", false, "measure revocation propagation instead of throughput: a bare Redis write and PUBLISH (two instances), then the revocation barrier's cost (--instances)")
	instances := flag.String("instances", "2,3", "with --propagation: consentd instances in the group for the barrier measurement, comma-separated (one run each)")
	barrierOnly := flag.Bool("barrier-only", false, "with --propagation: skip the bare PUBLISH measurement")
	revocations := flag.Int("revocations", 100, "with --propagation: subjects revoked one by one")
	subjects := flag.Int("subjects", 200, "with --propagation: subjects whose events flow")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "consentd-bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "consentd-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *propagation {
		po := e2ebench.PropagationOptions{Brokers: o.Brokers, Redis: o.Redis, Subjects: *subjects, Revocations: *revocations, Interval: 50 * time.Millisecond}
		if !*barrierOnly {
			_, err = e2ebench.RunPropagation(ctx, po, os.Stdout)
		}
		for _, f := range strings.Split(*instances, ",") {
			if err != nil {
				break
			}
			n, perr := strconv.Atoi(strings.TrimSpace(f))
			if perr != nil || n < 1 {
				err = fmt.Errorf("--instances: %q is not a positive number", f)
				break
			}
			po.Instances = n
			var bc e2ebench.BarrierCost
			if bc, err = e2ebench.RunBarrierCost(ctx, po, os.Stdout); err == nil && (len(bc.Exactness.After) > 0 || len(bc.Exactness.NotLast) > 0) {
				err = fmt.Errorf("the revocation barrier did not hold with %d instances", n)
			}
		}
	} else {
		_, err = e2ebench.Run(ctx, o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentd-bench:", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
