package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/policy"
)

const dlqUsage = `consentd dlq replay [--reason R[,R...]] [--to TOPIC] [--dry-run] [--config FILE]

Re-injects the dead letters of kafka.dead_letter_topic, after the policy or
configuration that refused them is fixed: each one's raw key and value go
back to the raw topic it came from (its consentd-source-topic header), or
to --to, which must be one of kafka.raw_topics: a clean, consent or
dead-letter topic is refused. Dead letters whose source is not a raw topic
are counted, not replayed. --reason replays only dead letters with those reasons. Truncated
dead letters are counted, not replayed (the raw event is in the raw topic
at the coordinates they name). Progress is printed every 1000 dead letters.`

func cmdDLQ(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprintln(stdout, "Usage: "+dlqUsage)
		return nil
	}
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
	if *to != "" && !slices.Contains(cfg.Kafka.RawTopics, *to) {
		return fmt.Errorf("dlq replay: refusing --to %s: %s; dead letters hold raw events (raw keys, personal data) and go back only to a raw topic of kafka.raw_topics (%s)",
			*to, topicKind(cfg, *to), strings.Join(cfg.Kafka.RawTopics, ", "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	producer := app.NewProducer(cfg, kc)
	defer producer.Close()
	rc := kafkaops.ReplayConfig{Brokers: cfg.Kafka.Brokers, Dialer: kc.Dialer(), DeadLetterTopic: cfg.Kafka.DeadLetterTopic, RawTopics: cfg.Kafka.RawTopics, To: *to, Producer: producer, DryRun: *dry,
		Progress: func(r kafkaops.ReplayReport) {
			fmt.Fprintf(stderr, "read %d dead letters: %d replayed, %d other reasons, %d truncated, %d not from a raw topic\n", r.Read, r.Replayed, r.Skipped, r.Truncated, r.Foreign)
		}}
	if *reasons != "" {
		rc.Reasons = strings.Split(*reasons, ",")
	}
	rep, err := kafkaops.ReplayDeadLetters(ctx, rc)
	verb := "replayed"
	if *dry {
		verb = "would replay"
	}
	fmt.Fprintf(stdout, "read %d dead letters from %s: %s %d, skipped %d (other reasons), %d truncated (not replayable), %d not from a raw topic (not replayed)\n",
		rep.Read, cfg.Kafka.DeadLetterTopic, verb, rep.Replayed, rep.Skipped, rep.Truncated, rep.Foreign)
	return err
}

// topicKind says what a topic that is not a raw topic is, for the refusal.
func topicKind(cfg *config.Config, topic string) string {
	switch topic {
	case cfg.Kafka.DeadLetterTopic:
		return "it is the dead-letter topic"
	case cfg.Consent.Topic:
		return "it is the consent topic"
	}
	if p, err := policy.Load(cfg.Policy, nil); err == nil {
		for _, o := range p.Outputs {
			if o.Topic == topic {
				return "it is the clean topic of output " + o.Name
			}
		}
	}
	return "it is not a raw topic"
}
