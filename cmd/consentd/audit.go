package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/audit"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/lib/progress"
)

const auditUsage = `consentd audit [--topics T1,T2] [--since 24h|RFC3339] [--ids FILE] [--accept-policy DIGEST,...] [--json] [--quiet] [--config FILE]

Reads clean topics and checks every message with a checker of its own,
sharing no code with the pipeline that wrote them: fields outside the
output's keep_only, pseudonymized fields without a pseudonym of a key in
the key file, IPs with host bits past truncate_ip's prefix, coordinates
with more decimals than round_geo keeps, body and record times finer than
truncate_time, e-mail addresses, phone numbers, Luhn-valid card numbers
and IP addresses in any kept string, the raw subject ids listed in --ids
anywhere (for those subjects also: messages their current consent record
no longer allows with no retraction after them, and consent versions newer
than the store's), messages written after their key's retraction with no newer
consent version, and messages decided by a policy other than the audited
one (its consentd-policy-sha256; --accept-policy adds earlier ones).
Findings name the message and the path, never a value. Exits 1 when
anything is found. Progress and an ETA go to stderr.`

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", auditUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file (Kafka connection, policy, key file)")
	topics := fs.String("topics", "", "comma-separated clean topics to audit (default: every output topic of the policy)")
	since := fs.String("since", "", "audit records from this time on: a duration back from now (24h) or an RFC 3339 time (default: everything)")
	idsFile := fs.String("ids", "", "file of raw subject ids, one per line, that must appear in no clean message")
	accept := fs.String("accept-policy", "", "comma-separated policy digests (sha256:...) besides the configured policy's that may have decided records")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("audit: unexpected argument %q", pos[0])}
	}
	var from time.Time
	if *since != "" {
		if from, err = parseSince("audit", *since); err != nil {
			return err
		}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(cfg.Policy)
	if err != nil {
		return fmt.Errorf("audit: reading the policy: %w", err)
	}
	sum := sha256.Sum256(text)
	pol, err := audit.ReadPolicy(text, "sha256:"+hex.EncodeToString(sum[:]))
	if err != nil {
		return err
	}
	c := &audit.Checker{Policy: pol}
	_, keyData, err := cfg.KeyMaterial()
	if err != nil {
		return fmt.Errorf("audit: the key file: %w", err)
	}
	if c.KeyIDs, err = audit.KeyIDs(keyData); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if *idsFile != "" {
		b, err := os.ReadFile(*idsFile)
		if err != nil {
			return fmt.Errorf("audit: --ids: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				c.IDs = append(c.IDs, l)
			}
		}
		// The listed subjects' messages are also checked against their
		// current consent records.
		if c.Subjects, err = audit.Subjects(keyData, c.IDs, pol); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		rdb, err := app.NewRedis(cfg)
		if err != nil {
			return err
		}
		defer rdb.Close()
		c.Records = audit.RedisRecords{Client: rdb, Prefix: cfg.Redis.KeyPrefix}
	}
	if *accept != "" {
		c.AcceptDigests = strings.Split(*accept, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	o := audit.Options{Dialer: kc.Dialer(), Brokers: kc.Brokers(), Since: from}
	if *topics != "" {
		o.Topics = strings.Split(*topics, ",")
	}
	var meter *progress.Meter
	if !*quiet {
		meter = progress.New(stderr, "auditing", "messages", 0)
		o.Progress = func(done, total int64) {
			meter.SetTotal(total)
			meter.Set(done)
		}
	}
	rep, err := audit.Run(ctx, c, o)
	meter.Finish()
	if err != nil {
		return kc.Explain(fmt.Errorf("audit: %w", err))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.Print(stdout, pol)
	}
	if rep.Total > 0 {
		return fmt.Errorf("audit: %d findings in %d messages", rep.Total, len(rep.Findings))
	}
	return nil
}
