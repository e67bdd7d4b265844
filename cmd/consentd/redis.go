package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/lib/progress"
)

const redisMigrateUsage = `consentd redis migrate [--dry-run] [--force] [--json] [--config FILE]

Moves consent records and identity links written by consentd before the key
schema separated kinds of keys (records <prefix><subject>, links
<prefix>_link:<id>) to the current schema (<prefix>r:{<subject>},
<prefix>l:{<id>}); consentd's current keys are counted and left as they
are. Run it once, with every consentd stopped: it refuses while running
instances hold revocation-barrier leases (--force overrides). Progress,
with the rate and time left, goes to stderr.`

func cmdRedisMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("redis migrate", redisMigrateUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config `file`")
	dry := fs.Bool("dry-run", false, "count what would move, change nothing")
	force := fs.Bool("force", false, "migrate although consentd instances hold leases (they may write keys of the schema they know meanwhile)")
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("redis migrate: unexpected argument %q", pos[0])}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	rdb, err := app.NewRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := connect.PingRedis(ctx, rdb); err != nil {
		return fmt.Errorf("connecting to the consent store: %w", err)
	}
	prefix := cfg.Redis.KeyPrefix
	live, err := redisstore.NewBarrierRegistry(rdb, prefix).Live(ctx)
	if err != nil {
		return fmt.Errorf("redis migrate: reading the instances' leases: %w", err)
	}
	if len(live) > 0 && !*dry && !*force {
		return fmt.Errorf("redis migrate: %d consentd instances hold a revocation-barrier lease under %q (running, or stopped less than a lease ago): stop them first, or pass --force", len(live), prefix)
	}
	var meter *progress.Meter
	if !*quiet {
		total, err := redisstore.CountKeys(ctx, rdb, prefix)
		if err != nil {
			return fmt.Errorf("redis migrate: %w", err)
		}
		meter = progress.New(stderr, "migrating", "keys", total)
	}
	rep, err := redisstore.MigrateKeys(ctx, rdb, prefix, *dry, func(r redisstore.MigrateReport) { meter.Set(int64(r.Scanned)) })
	meter.Set(int64(rep.Scanned))
	meter.Finish()
	if errors.Is(err, redisstore.ErrMigrateOnCluster) {
		return err
	}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	if *asJSON {
		if jerr := printJSON(stdout, migrateJSON{MigrateReport: rep, Prefix: prefix, DryRun: *dry, Leases: len(live)}); jerr != nil {
			return jerr
		}
		return err
	}
	verb := "moved"
	if *dry {
		verb = "would move"
	}
	fmt.Fprintf(stdout, "scanned %d keys under %q: %s %d records and %d links; %d already current; %d left alone\n",
		rep.Scanned, prefix, verb, rep.Records, rep.Links, rep.Current, rep.Skipped)
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "  "+p)
	}
	if len(live) > 0 {
		fmt.Fprintf(stdout, "%d consentd instances hold a lease: stop them before the migration\n", len(live))
	}
	return err
}

// migrateJSON is what redis migrate --json prints.
type migrateJSON struct {
	redisstore.MigrateReport
	Prefix string `json:"prefix"`
	DryRun bool   `json:"dry_run"`
	// Leases is how many consentd instances held a lease.
	Leases int `json:"leases"`
}
