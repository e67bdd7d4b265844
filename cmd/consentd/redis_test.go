package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationRedisMigrate: on the real Redis, redis migrate refuses
// while an instance holds a barrier lease (naming how many), --dry-run
// counts anyway, --force migrates, and --json prints the counts;
// consentd's own current keys are counted as current, not as foreign.
func TestIntegrationRedisMigrate(t *testing.T) {
	env := itest.Require(t)
	prefix := itest.Unique("mig") + ":"
	cfgPath := explainConfig(t, env.Kafka, env.Redis, prefix)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := app.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	// One record of the first schema, one current record, and a live lease.
	if err := rdb.HSet(ctx, prefix+"old-user", "_v", "3", "analytics", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstore.NewUpdater(rdb, prefix).Put(ctx, "new-user", 1, map[string]bool{"analytics": true}, time.Time{}, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	member := redisstore.NewBarrierMember(rdb, prefix, "instance-1", time.Minute, nil)
	if err := member.Rejoin(ctx); err != nil {
		t.Fatal(err)
	}
	migrate := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"redis", "migrate", "--config", cfgPath}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}
	code, out, errs := migrate()
	if code != 1 || !strings.Contains(errs, "1 consentd instances hold a revocation-barrier lease") || !strings.Contains(errs, "--force") {
		t.Fatalf("with a lease: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n, _ := rdb.Exists(ctx, prefix+"old-user").Result(); n != 1 {
		t.Fatal("a refused migration moved a key")
	}
	code, out, errs = migrate("--dry-run")
	if code != 0 || !strings.Contains(out, "would move 1 records") || !strings.Contains(out, "1 consentd instances hold a lease") || strings.Contains(out, "not consent data") {
		t.Fatalf("--dry-run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = migrate("--force", "--json")
	var rep migrateJSON
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("--force --json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Moved: the old record. Current: the new record and the lease set,
	// and the moved record if SCAN returned it again under its new name.
	if rep.Records != 1 || rep.Links != 0 || rep.Current < 2 || rep.Current > 3 || rep.Skipped != 0 || rep.Leases != 1 || rep.DryRun || rep.Prefix != prefix {
		t.Fatalf("report %+v", rep)
	}
	if n, _ := rdb.Exists(ctx, redisstore.RecordKey(prefix, "old-user")).Result(); n != 1 {
		t.Fatal("the old record was not moved")
	}
	if err := member.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = migrate(); code != 0 || !strings.Contains(out, "moved 0 records and 0 links; 2 already current") {
		t.Fatalf("without leases: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
