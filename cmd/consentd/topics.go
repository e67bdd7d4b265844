package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
)

// topicsHelp is the topics group's description.
const topicsHelp = `The topics the configuration and its policy name: raw topics, one clean
topic per output, the dead-letter topic, the consent topic (compacted) and
the shadow report topic. 'create' creates the missing ones (partitions N,
replication R or the broker's default) with the settings they must have
(a clean topic's retention.ms from its output's retention, the consent
topic's cleanup.policy compact); 'check' reports missing topics and
settings that differ, and exits 1 when any does. Both connect as run does
(TLS, SASL).

'create' leaves existing topics as they are and exits 1 when one's
settings differ; with --alter it sets those settings to the plan's (only
those: the topics' other settings stay), reports each such topic as
"altered" ("would alter" with --dry-run) and exits 0 once every topic is
as planned. Editing an output's retention in the policy is applied this
way. A consent topic with cleanup.policy delete becomes compact: that is
what consentd needs (every subject's latest consent kept for as long as
the topic lives, instead of dropped after retention.ms, and erasure by
tombstone); what compaction drops is older records of the same subject,
so a reader that wants the history of consent changes must keep it
elsewhere. A partition count other than --partitions is reported with
--alter and never changed: Kafka cannot remove partitions, and adding
some moves keys to other partitions, out of order.`

const topicsUsage = `consentd topics %s [--partitions N] [--replication-factor R] [--alter] [--dry-run] [--json] [--config FILE]

` + topicsHelp

// topicsCommand runs topics create or topics check.
func topicsCommand(verb string) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, stderr io.Writer) error { return cmdTopics(verb, args, stdout, stderr) }
}

func cmdTopics(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics "+verb, fmt.Sprintf(topicsUsage, verb), stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config `file`")
	partitions := fs.Int("partitions", 8, "partitions of each topic created")
	replication := fs.Int("replication-factor", 0, "replicas of each topic created (0: the broker's default)")
	dry := fs.Bool("dry-run", false, "with create: say what would be created or altered, change nothing")
	alter := fs.Bool("alter", false, "with create: set the settings of existing topics that differ to the plan's")
	asJSON := fs.Bool("json", false, "print the topics' states as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("topics %s: unexpected argument %q", verb, pos[0])}
	}
	if *alter && verb != "create" {
		return usageError{fmt.Errorf("topics %s: --alter goes with create", verb)}
	}
	if *partitions < 1 || *replication < 0 {
		return usageError{fmt.Errorf("topics %s: --partitions must be at least 1 and --replication-factor at least 0", verb)}
	}
	cfg, pol, err := loadConfigAndPolicy(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kc, err := connect.NewKafka(cctx, cfg.Kafka)
	if err != nil {
		return err
	}
	client := kc.Client(30 * time.Second)
	defer connect.CloseClient(client)
	plan := app.TopicPlan(cfg, pol, *partitions)
	var states []kafkaops.TopicState
	switch {
	case verb == "create" && *alter:
		states, err = kafkaops.AlterTopicSpecs(cctx, client, plan, *replication, *dry)
	case verb == "create":
		states, err = kafkaops.CreateTopicSpecs(cctx, client, plan, *replication, *dry)
	default:
		states, err = kafkaops.CheckTopicSpecs(cctx, client, plan)
	}
	if err != nil {
		return kc.Explain(fmt.Errorf("topics %s: %w", verb, err))
	}
	bad := 0
	for _, s := range states {
		if s.State == "missing" || s.State == "drift" {
			bad++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(states); err != nil {
			return err
		}
	} else {
		for _, s := range states {
			fmt.Fprintf(stdout, "%-14s %-40s %s", s.State, s.Name, s.Role)
			if len(s.Drift) > 0 {
				fmt.Fprintf(stdout, ": %s", strings.Join(s.Drift, "; "))
			}
			if len(s.Notes) > 0 {
				fmt.Fprintf(stdout, " (%s)", strings.Join(s.Notes, "; "))
			}
			fmt.Fprintln(stdout)
		}
	}
	if bad > 0 {
		hint := ""
		if verb == "create" && !*alter {
			hint = " (--alter sets them)"
		}
		return fmt.Errorf("topics %s: %d of %d topics missing or with settings that differ%s", verb, bad, len(states), hint)
	}
	return nil
}
