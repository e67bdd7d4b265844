package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
)

const dlqUsage = `consentd dlq replay [--reason R[,R...]] [--to TOPIC] [--dry-run] [--config FILE]

Re-injects the dead letters of kafka.dead_letter_topic, after the policy or
configuration that refused them is fixed: each one's raw key and value go
back to the raw topic it came from (its consentd-source-topic header), or
to --to. --reason replays only dead letters with those reasons. Truncated
dead letters are counted, not replayed (the raw event is in the raw topic
at the coordinates they name). Progress is printed every 1000 dead letters.`

func cmdDLQ(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "replay" {
		return usageError{errors.New("usage: " + strings.SplitN(dlqUsage, "\n", 2)[0])}
	}
	fs := newFlags("dlq replay", dlqUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	reasons := fs.String("reason", "", "comma-separated dead-letter reasons to replay (default: all)")
	to := fs.String("to", "", "topic to write to (default: each dead letter's source topic)")
	dry := fs.Bool("dry-run", false, "count, write nothing")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("dlq replay: unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	producer := app.NewProducer(cfg, kc)
	defer producer.Close()
	rc := kafkaops.ReplayConfig{Brokers: cfg.Kafka.Brokers, Dialer: kc.Dialer(), DeadLetterTopic: cfg.Kafka.DeadLetterTopic, To: *to, Producer: producer, DryRun: *dry,
		Progress: func(r kafkaops.ReplayReport) {
			fmt.Fprintf(stderr, "read %d dead letters: %d replayed, %d other reasons, %d truncated\n", r.Read, r.Replayed, r.Skipped, r.Truncated)
		}}
	if *reasons != "" {
		rc.Reasons = strings.Split(*reasons, ",")
	}
	rep, err := kafkaops.ReplayDeadLetters(ctx, rc)
	verb := "replayed"
	if *dry {
		verb = "would replay"
	}
	fmt.Fprintf(stdout, "read %d dead letters from %s: %s %d, skipped %d (other reasons), %d truncated (not replayable)\n",
		rep.Read, cfg.Kafka.DeadLetterTopic, verb, rep.Replayed, rep.Skipped, rep.Truncated)
	return err
}
