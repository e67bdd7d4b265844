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
)

// cmdRedis: consentd redis migrate [--dry-run] [--config FILE]
func cmdRedis(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprintln(stdout, "Usage: consentd redis migrate [--dry-run] [--config FILE]")
		return nil
	}
	if len(args) == 0 || args[0] != "migrate" {
		return usageError{errors.New("usage: consentd redis migrate [--dry-run] [--config FILE]")}
	}
	fs := newFlags("redis migrate", "consentd redis migrate [--dry-run] [--config FILE]\n\n"+
		"Moves consent records and identity links written by consentd before the key\n"+
		"schema separated kinds of keys (records <prefix><subject>, links\n"+
		"<prefix>_link:<id>) to the current schema (<prefix>r:{<subject>},\n"+
		"<prefix>l:{<id>}). Run it once, with every consentd stopped.", stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	dry := fs.Bool("dry-run", false, "count what would move, change nothing")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("redis migrate: unexpected argument %q", fs.Arg(0))}
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
	rep, err := redisstore.MigrateKeys(ctx, rdb, cfg.Redis.KeyPrefix, *dry, func(r redisstore.MigrateReport) {
		fmt.Fprintf(stderr, "scanned %d keys: %d records and %d links moved, %d current\n", r.Scanned, r.Records, r.Links, r.Current)
	})
	verb := "moved"
	if *dry {
		verb = "would move"
	}
	fmt.Fprintf(stdout, "scanned %d keys under %q: %s %d records and %d links; %d already current; %d left alone\n",
		rep.Scanned, cfg.Redis.KeyPrefix, verb, rep.Records, rep.Links, rep.Current, rep.Skipped)
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "  "+p)
	}
	return err
}
