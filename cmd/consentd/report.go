package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/kafkaops"
)

const reportUsage = `consentd report representation [--from 24h|RFC3339] [--to RFC3339] [--metrics URL]
                                     [--chart FILE] [--json] [--config FILE]

How consent filtering changes each output's mix of segments (the policy's
segments.fields): per output and field, every value's share of the events
the output was decided for (raw) and of those written (clean), its consent
rate, and the values whose clean share differs from their raw share by more
than segments.flag_ratio (either way), flagged over- or under-represented.

By default the raw topics and the clean topics of [--from, --to) are read
(Kafka settings from the config); with --metrics, the counts come from a
running consentd's consentd_segment_events_total instead (since it started;
e.g. --metrics http://127.0.0.1:9464/metrics). --chart draws the shares as
paired bars into an .svg, .png or .pdf file.`

// cmdReportRepresentation runs consentd report representation; args
// are those after it (the command table dispatches "report").
func cmdReportRepresentation(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report representation", reportUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file (its policy names the segment fields; its Kafka settings are read from)")
	fromFlag := fs.String("from", "24h", "start of the range: a duration back from now or an RFC 3339 time")
	toFlag := fs.String("to", "", "end of the range (excluded): an RFC 3339 time; default now")
	metricsURL := fs.String("metrics", "", "read the counts from this /metrics URL of a running consentd instead of the topics")
	chart := fs.String("chart", "", "also draw the shares into FILE (.svg, .png or .pdf)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	top := fs.Int("top", 0, "values listed per field, the rest summed as (other); default the policy's segments.top")
	ratio := fs.Float64("flag-ratio", 0, "flag a value whose clean share differs from its raw share by more than this ratio; default the policy's segments.flag_ratio")
	minEvents := fs.Int64("min-events", 30, "never flag a value with fewer raw events than this")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("report representation: unexpected argument %q", pos[0])}
	}
	if *ratio != 0 && *ratio <= 1 {
		return usageError{fmt.Errorf("report representation: --flag-ratio %v must be above 1", *ratio)}
	}
	cfg, pol, err := loadConfigAndPolicy(*path)
	if err != nil {
		return err
	}
	opts := representation.Options{Top: *top, FlagRatio: *ratio, MinEvents: *minEvents}
	if pol.Segments != nil {
		if opts.Top == 0 {
			opts.Top = pol.Segments.Top
		}
		if opts.FlagRatio == 0 {
			opts.FlagRatio = pol.Segments.FlagRatio
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var counts representation.Counts
	var source string
	if *metricsURL != "" {
		if counts, err = countsFromMetrics(ctx, *metricsURL); err != nil {
			return fmt.Errorf("report representation: %w", err)
		}
		source = "metrics " + *metricsURL + " (since each process started)"
	} else {
		from, err := parseSince("report representation --from", *fromFlag)
		if err != nil {
			return err
		}
		to := time.Now()
		if *toFlag != "" {
			if to, err = time.Parse(time.RFC3339, *toFlag); err != nil {
				return usageError{fmt.Errorf("report representation: --to %q: want an RFC 3339 time", *toFlag)}
			}
		}
		kc, err := connect.NewKafka(ctx, cfg.Kafka)
		if err != nil {
			return err
		}
		src := kafkaops.RepresentationSource{Dialer: kc.Dialer(), Brokers: kc.Brokers(), RawTopics: cfg.Kafka.RawTopics, From: from, To: to,
			Progress: func(n int) { fmt.Fprintf(stderr, "read %d records\n", n) }}
		if counts, err = kafkaops.RepresentationFromTopics(ctx, pol, src); err != nil {
			return kc.Explain(fmt.Errorf("report representation: %w", err))
		}
		source = fmt.Sprintf("topics %v and the clean topics, %s to %s", cfg.Kafka.RawTopics, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	rep := representation.Build(counts, opts)
	if *chart != "" {
		if err := rep.WriteChart(*chart); err != nil {
			return fmt.Errorf("report representation: %w", err)
		}
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	fmt.Fprintf(stdout, "representation report from %s\n", source)
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if *chart != "" {
		fmt.Fprintf(stdout, "chart written to %s\n", *chart)
	}
	return nil
}

// countsFromMetrics scrapes a consentd admin server's metrics.
func countsFromMetrics(ctx context.Context, url string) (representation.Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--metrics %q: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w (is consentd's admin server listening there? admin.listen)", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--metrics %s: HTTP %s", url, resp.Status)
	}
	return representation.FromMetrics(io.LimitReader(resp.Body, 64<<20))
}
