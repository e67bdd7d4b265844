//go:build !nodemo

package main

import (
	"context"
	"io"
	"os/signal"
	"syscall"

	"github.com/consentd/consentd/internal/demo"
)

// demoIncluded says whether this build has the demo (version --json).
const demoIncluded = true

// demoCommand runs the real pipeline on an in-process Kafka and Redis. A
// build with the tag nodemo leaves it out, and the in-process broker,
// Redis and Lua interpreter with it (demo_stub.go).
func demoCommand() *command {
	return &command{name: "demo", args: "[--duration D]", summary: "run the real pipeline on an in-process Kafka and Redis", run: cmdDemo}
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "consentd demo [--duration 4s] [--users 3000] [--shadow-policy FILE] [--chart FILE]", stderr)
	opts := demo.DefaultOptions()
	fs.DurationVar(&opts.Duration, "duration", opts.Duration, "how long to stream synthetic events")
	fs.IntVar(&opts.Users, "users", opts.Users, "synthetic users with seeded consent")
	fs.StringVar(&opts.ShadowPolicy, "shadow-policy", "", "a policy file to decide as a shadow beside the embedded one; the report sums its differences")
	fs.StringVar(&opts.Chart, "chart", "", "draw the representation report's chart into FILE (.svg, .png or .pdf)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return demo.Run(ctx, opts, stdout)
}
