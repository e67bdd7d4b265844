// Command consentd-bench measures consentd end to end on a real Kafka and
// Redis, on the same data in the same run, against a plain kafka-go
// consume→produce→commit pass-through and a partition-parallel one
// (consentd's own plumbing with a processor that only copies): steady
// events/s, CPU µs per event and peak RSS of each contender's own process,
// and raw→clean latency p50/p99/max at a fixed offered rate, as one
// markdown table. consentd runs twice: a 1-output job and the shipped
// 3-output policy. `make bench-e2e` starts the services and runs it.
//
// With --propagation it measures revocation propagation instead.
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
	flag.IntVar(&o.Rounds, "rounds", 2, "rounds, each running every contender in turn (the table shows the median of the rounds)")
	flag.IntVar(&o.BatchSize, "batch", 1000, "batch size for every contender")
	flag.Float64Var(&o.LatencyRate, "latency-rate", 0, "raw events/s offered in the latency phase (0: half the steady rate of the consentd 1-output job in the same run)")
	flag.DurationVar(&o.LatencyDuration, "latency-duration", 10*time.Second, "how long each latency pass offers events (0 skips the latency phase)")
	flag.StringVar(&o.KafkaVersion, "kafka-version", "", "Kafka version named in the table's machine line (not detected)")
	flag.StringVar(&o.ConsentdCPUProfile, "consentd-cpuprofile", "", "write a CPU profile of every consentd child process to `PREFIX`-<job>-<phase>-r<round>.pprof")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bench process itself (with --propagation: the whole run, in-process) to `FILE`")
	role := flag.String("role", "", "internal: run one contender as a child process (spec on stdin, report on stdout)")
	propagation := flag.Bool("propagation", false, "measure revocation propagation instead of throughput: a bare Redis write and PUBLISH (two instances), then the revocation barrier's cost (--instances)")
	instances := flag.String("instances", "2,3", "with --propagation: consentd instances in the group for the barrier measurement, comma-separated (one run each)")
	barrierOnly := flag.Bool("barrier-only", false, "with --propagation: skip the bare PUBLISH measurement")
	revocations := flag.Int("revocations", 100, "with --propagation: subjects revoked one by one")
	subjects := flag.Int("subjects", 200, "with --propagation: subjects whose events flow")
	flag.Usage = usage
	flag.Parse()
	if *role != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := e2ebench.RunChild(ctx, *role, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "consentd-bench child:", err)
			os.Exit(1)
		}
		return
	}
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

// usage prints the help text without the internal --role flag.
func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprintf(out, "Usage of %s:\n", os.Args[0])
	fmt.Fprint(out, `  Throughput and latency (default): every contender runs in a process of
  its own, --rounds times, over --events preloaded events, then again with
  events offered at --latency-rate for --latency-duration; one markdown
  table compares them. Revocation propagation: --propagation.

`)
	flag.VisitAll(func(f *flag.Flag) {
		if f.Name == "role" {
			return
		}
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(out, "  --%s\n    \t%s", strings.TrimSpace(f.Name+" "+name), help)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
}
