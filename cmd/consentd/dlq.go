package main

import (
	"context"
	"encoding/json"
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
	"github.com/consentd/consentd/internal/lib/progress"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/policy"
)

const dlqUsage = `consentd dlq replay [--reason R[,R...]] [--to TOPIC] [--dry-run] [--json] [--config FILE]

Re-injects the dead letters of kafka.dead_letter_topic, after the policy or
configuration that refused them is fixed: each one's raw key and value go
back to the raw topic it came from (its consentd-source-topic header), or
to --to, which must be one of kafka.raw_topics: a clean, consent or
dead-letter topic is refused. Dead letters whose source is not a raw topic
are counted, not replayed. --reason replays only dead letters with those
reasons; a reason no dead letter has is an error that lists the reasons
present, and nothing is replayed. Truncated dead letters are counted, not
replayed (the raw event is in the raw topic at the coordinates they name).
Each partition is read up to its end at start. A long replay shows its
progress with rate and time left on standard error (a bar on a terminal,
a line every few seconds otherwise). --json prints the counts as JSON.`

// cmdDLQReplay runs consentd dlq replay; args are those after it (the
// command table dispatches "dlq").
func cmdDLQReplay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dlq replay", dlqUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	reasons := fs.String("reason", "", "comma-separated dead-letter reasons to replay (default: all)")
	to := fs.String("to", "", "topic to write to (default: each dead letter's source topic)")
	dry := fs.Bool("dry-run", false, "count, write nothing")
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	if err := parse(fs, args); err != nil {
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
	if err := kc.Check(ctx); err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	producer := app.NewProducer(cfg, kc)
	defer producer.Close()
	progress := newReplayProgress(stderr)
	rc := kafkaops.ReplayConfig{Brokers: cfg.Kafka.Brokers, Dialer: kc.Dialer(), DeadLetterTopic: cfg.Kafka.DeadLetterTopic, RawTopics: cfg.Kafka.RawTopics, To: *to, Producer: producer, DryRun: *dry,
		Progress: progress.update}
	if *reasons != "" {
		for _, r := range strings.Split(*reasons, ",") {
			if r = strings.TrimSpace(r); r != "" {
				rc.Reasons = append(rc.Reasons, r)
			}
		}
	}
	rep, err := kafkaops.ReplayDeadLetters(ctx, rc)
	progress.finish()
	var unknown *kafkaops.UnknownReasonError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("dlq replay --reason: %w (in %s); nothing was replayed", err, cfg.Kafka.DeadLetterTopic)
	case err != nil && !*dry && rep.Written > 0:
		return fmt.Errorf("dlq replay: failed after writing %d dead letters of %s back to their raw topics: %w; a replay starts again from the first dead letter, so running it again writes those %d again (they are decided again: duplicates, as after a crash)", rep.Written, cfg.Kafka.DeadLetterTopic, kc.Explain(err), rep.Written)
	case err != nil:
		return fmt.Errorf("dlq replay: %w", kc.Explain(err))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Topic  string `json:"dead_letter_topic"`
			DryRun bool   `json:"dry_run"`
			kafkaops.ReplayReport
		}{cfg.Kafka.DeadLetterTopic, *dry, rep})
	}
	verb := "replayed"
	if *dry {
		verb = "would replay"
	}
	fmt.Fprintf(stdout, "read %d dead letters from %s: %s %d, skipped %d (other reasons), %d truncated (not replayable), %d not from a raw topic (not replayed)\n",
		rep.Read, cfg.Kafka.DeadLetterTopic, verb, rep.Replayed, rep.Skipped, rep.Truncated, rep.Foreign)
	return nil
}

// replayProgress shows a replay's progress on w with a progress.Meter
// (a bar with rate and time left on a terminal, plain lines otherwise),
// a new one for each pass over the dead letters (a replay by reason
// counts them first).
type replayProgress struct {
	w    io.Writer
	m    *progress.Meter
	read int // dead letters read in this pass, as last seen
}

func newReplayProgress(w io.Writer) *replayProgress { return &replayProgress{w: w} }

func (p *replayProgress) update(r kafkaops.ReplayReport, total int64) {
	if p.m == nil || r.Read < p.read {
		p.m.Finish()
		p.m = progress.New(p.w, "reading dead letters", "dead letters", total)
	}
	p.read = r.Read
	p.m.SetTotal(total)
	p.m.Set(int64(r.Read))
}

func (p *replayProgress) finish() { p.m.Finish() }

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
