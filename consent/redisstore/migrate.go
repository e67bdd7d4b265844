package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MigrateReport says what MigrateKeys did.
type MigrateReport struct {
	Scanned  int      `json:"scanned"`  // keys under the prefix
	Records  int      `json:"records"`  // consent hashes moved to RecordKey
	Links    int      `json:"links"`    // identity links moved to LinkKey
	Current  int      `json:"current"`  // consentd's keys already in the current schema, of every kind (SCAN may return a key moved by this run again, counted here)
	Skipped  int      `json:"skipped"`  // keys left alone: not consentd's, or a target already taken
	Problems []string `json:"problems"` // why each skipped key was left alone
}

// ErrMigrateOnCluster refuses a migration on a Redis Cluster.
var ErrMigrateOnCluster = errors.New("redis migrate: redis.mode is cluster; migrate on a single node (or a Sentinel master) before moving the data to a cluster")

// MigrateKeys moves the keys of the first schema (record "<prefix><subject>",
// link "<prefix>_link:<anonymous id>"), in which a subject value could
// address a link key, to the current one (RecordKey, LinkKey). It scans
// with SCAN, moves each key with RENAMENX (a target that already exists is
// left alone and reported), and calls progress every 1000 keys. dryRun
// counts without changing anything. Run it once, with consentd stopped,
// on a single Redis (RENAME cannot cross cluster slots).
func MigrateKeys(ctx context.Context, rdb redis.Cmdable, prefix string, dryRun bool, progress func(MigrateReport)) (MigrateReport, error) {
	var rep MigrateReport
	if _, ok := rdb.(*redis.ClusterClient); ok {
		// Migration renames keys, which a cluster allows only within a
		// slot; the old keys had no hash tag.
		return rep, ErrMigrateOnCluster
	}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, escapeGlob(prefix)+"*", 1000).Result()
		if err != nil {
			return rep, fmt.Errorf("scanning keys: %w", err)
		}
		for _, key := range keys {
			rep.Scanned++
			if err := migrateKey(ctx, rdb, prefix, key, dryRun, &rep); err != nil {
				return rep, err
			}
			if progress != nil && rep.Scanned%1000 == 0 {
				progress(rep)
			}
		}
		if cursor = next; cursor == 0 {
			return rep, nil
		}
	}
}

func migrateKey(ctx context.Context, rdb redis.Cmdable, prefix, key string, dryRun bool, rep *MigrateReport) error {
	rest := key[len(prefix):]
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("reading a key's type: %w", err)
	}
	var target string
	switch {
	case rest == "_invalidate":
		return nil
	case isCurrentKey(rest, typ):
		rep.Current++
		return nil
	case typ == "string" && strings.HasPrefix(rest, "_link:"):
		target = LinkKey(prefix, rest[len("_link:"):])
	case typ == "hash":
		target = RecordKey(prefix, rest)
	default:
		rep.Skipped++
		rep.Problems = append(rep.Problems, fmt.Sprintf("a %s key under the prefix is neither one of consentd's current keys nor a key of the first schema; left alone", typ))
		return nil
	}
	if !dryRun {
		ok, err := rdb.RenameNX(ctx, key, target).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("moving a key: %w", err)
		}
		if !ok {
			rep.Skipped++
			rep.Problems = append(rep.Problems, "a key's new name is taken already; the old key is left alone")
			return nil
		}
	}
	if typ == "hash" {
		rep.Records++
	} else {
		rep.Links++
	}
	return nil
}

// currentKinds are the kinds of key of the current schema (the part
// after the prefix, before "{") and their Redis types: records
// (RecordKey), links (LinkKey), a user's linked ids (LinkedIDsKey),
// erasure markers (ErasedKey), the expiry index (ExpiryIndexKey), the
// barrier's leases, fences and confirmations (MembersKey, FencedKey,
// AckKey).
var currentKinds = map[string]string{"r:": "hash", "l:": "string", "u:": "set", "e:": "hash", "x:": "zset", "m:": "zset", "f:": "set", "b:": "list"}

// isCurrentKey reports whether rest (a key less the prefix) of Redis type
// typ is one of consentd's current keys.
func isCurrentKey(rest, typ string) bool {
	for kind, t := range currentKinds {
		if typ == t && isCurrent(rest, kind) {
			return true
		}
	}
	return false
}

// CountKeys counts the keys under prefix (with SCAN), for a migration's
// progress.
func CountKeys(ctx context.Context, rdb redis.Cmdable, prefix string) (int64, error) {
	var n int64
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, escapeGlob(prefix)+"*", 1000).Result()
		if err != nil {
			return n, fmt.Errorf("counting keys: %w", err)
		}
		n += int64(len(keys))
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// isCurrent reports whether rest (a key less the prefix) is kind + "{...}".
func isCurrent(rest, kind string) bool {
	return strings.HasPrefix(rest, kind+"{") && strings.HasSuffix(rest, "}")
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
