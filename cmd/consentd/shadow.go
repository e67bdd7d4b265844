package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
)

const shadowUsage = `consentd shadow report [--since 1h|RFC3339] [--top N] [--json] [--config FILE]

Summarizes the shadow policy's differences (shadow_policy) that consentd
wrote to shadow.report_topic: per output and kind of difference, the events
and the paths most often concerned. A shadow policy writes nothing to clean
topics; consentd_shadow_diff_total counts every difference, the topic holds
a sample (shadow.report_per_second).`

func cmdShadowReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("shadow report", shadowUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	since := fs.String("since", "1h", "summarize from this time on: a duration back from now or an RFC 3339 time")
	top := fs.Int("top", 5, "paths listed per output and kind")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("shadow report: unexpected argument %q", pos[0])}
	}
	from, err := parseSince("shadow report", *since)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if cfg.Shadow.ReportTopic == "" {
		return fmt.Errorf("shadow report: %s sets no shadow.report_topic: only the metric consentd_shadow_diff_total counts the differences", *path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	sum, err := kafkaops.ReadShadowReport(ctx, kc.Dialer(), kc.Brokers(), cfg.Shadow.ReportTopic, from)
	if err != nil {
		return kc.Explain(fmt.Errorf("shadow report: %w", err))
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"topic": cfg.Shadow.ReportTopic, "since": from.UTC().Format(time.RFC3339),
			"events": sum.Records, "policies": sum.Policies, "differences": sum.Rows(*top)})
	}
	fmt.Fprintf(stdout, "shadow report %s since %s\n", cfg.Shadow.ReportTopic, from.UTC().Format(time.RFC3339))
	sum.Print(stdout, *top)
	return nil
}
