package redisstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func miniUpdater(t *testing.T) (*Updater, *Store, *miniredis.Miniredis, redis.UniversalClient) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewUpdater(rdb, "c:"), New(rdb, "c:", time.Second, nil), mr, rdb
}

func TestLinkKeepsAReverseIndex(t *testing.T) {
	w, _, mr, _ := miniUpdater(t)
	ctx := context.Background()
	if err := w.Link(ctx, map[string]string{"a1": "u", "a2": "u", "a3": "v", "u": "u"}); err != nil {
		t.Fatal(err)
	}
	if got, err := w.LinkedIDs(ctx, "u"); err != nil || !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("linked to u: %v %v", got, err)
	}
	if m, _ := mr.Members(LinkedIDsKey("c:", "u")); !slices.Equal(m, []string{"a1", "a2"}) {
		t.Fatalf("index of u: %v", m)
	}
	// Relinking a2 to v leaves a stale entry under u, which is skipped.
	if err := w.Link(ctx, map[string]string{"a2": "v"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.LinkedIDs(ctx, "u"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("linked to u after a2 was relinked: %v", got)
	}
	st, err := w.Read(ctx, "v")
	if err != nil || !slices.Equal(st.LinkedIDs, []string{"a2", "a3"}) {
		t.Fatalf("export of v: %+v %v", st, err)
	}
	if st, _ := w.Read(ctx, "a1"); st.LinkedTo != "u" || len(st.LinkedIDs) != 0 {
		t.Fatalf("export of a1: %+v", st)
	}
}

func TestEraseRemovesEverythingOfTheSubjectAndItsLinkedIDs(t *testing.T) {
	w, s, mr, rdb := miniUpdater(t)
	ctx := context.Background()
	grant := map[string]bool{"p": true}
	for _, subj := range []string{"u", "a1", "a2", "other"} {
		if _, err := w.Put(ctx, subj, 1, grant, time.Now().Add(time.Hour), time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// u is itself linked to "root"; a1, a2 to u; stale (relinked to
	// other) has a stale index entry under u; ghost is an index entry
	// without a link.
	if err := w.Link(ctx, map[string]string{"u": "root", "a1": "u", "a2": "u", "stale": "u"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Link(ctx, map[string]string{"stale": "other"}); err != nil {
		t.Fatal(err)
	}
	rdb.SAdd(ctx, LinkedIDsKey("c:", "u"), "ghost")

	st, err := w.Read(ctx, "u")
	if err != nil || !slices.Equal(st.LinkedIDs, []string{"a1", "a2"}) || st.LinkedTo != "root" || st.ExpiryIndexed == 0 || st.Fields["_t:p"] == "" {
		t.Fatalf("export before: %+v %v", st, err)
	}

	existed, linked, err := w.Erase(ctx, "u", time.Time{}, false)
	if err != nil || !existed || !slices.Equal(linked, []string{"a1", "a2"}) {
		t.Fatalf("erase: existed %v linked %v err %v", existed, linked, err)
	}
	for _, k := range []string{RecordKey("c:", "u"), LinkKey("c:", "u"), LinkedIDsKey("c:", "u"),
		RecordKey("c:", "a1"), LinkKey("c:", "a1"), RecordKey("c:", "a2"), LinkKey("c:", "a2")} {
		if mr.Exists(k) {
			t.Errorf("%s still exists after the erasure", k)
		}
	}
	if m, _ := mr.Members(LinkedIDsKey("c:", "root")); slices.Contains(m, "u") {
		t.Errorf("root's index still lists u: %v", m)
	}
	if m, _ := mr.ZMembers(ExpiryIndexKey("c:")); slices.Contains(m, "u") || slices.Contains(m, "a1") || !slices.Contains(m, "other") {
		t.Errorf("expiry index after the erasure: %v", m)
	}
	recs, err := s.Lookup(ctx, []string{"u", "a1", "a2", "stale", "other"})
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"u", "a1", "a2"} {
		if r := recs[subj]; r.Found || r.LinkedTo != "" {
			t.Errorf("%s after the erasure: %+v", subj, r)
		}
	}
	if recs["stale"].LinkedTo != "other" || !recs["other"].Allows("p") {
		t.Errorf("a relinked id or another subject was touched: %+v %+v", recs["stale"], recs["other"])
	}
	st, err = w.Read(ctx, "u")
	if err != nil || len(st.Fields) != 0 || st.LinkedTo != "" || len(st.LinkedIDs) != 0 || st.ExpiryIndexed != 0 {
		t.Fatalf("export after: %+v %v", st, err)
	}
	// Erasing an anonymous id removes its link and its entry in its
	// user's index; the user keeps its record.
	if _, _, err := w.Erase(ctx, "stale", time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	if m, _ := mr.Members(LinkedIDsKey("c:", "other")); slices.Contains(m, "stale") || mr.Exists(LinkKey("c:", "stale")) {
		t.Errorf("the erased anonymous id is still linked: %v", m)
	}
	if r, _ := s.Lookup(ctx, []string{"other"}); !r["other"].Allows("p") {
		t.Error("erasing an anonymous id erased its user")
	}
}

func TestEraseToleratesWrongTypes(t *testing.T) {
	w, _, mr, rdb := miniUpdater(t)
	ctx := context.Background()
	rdb.Set(ctx, LinkedIDsKey("c:", "u"), "not a set", 0)
	rdb.HSet(ctx, LinkKey("c:", "u"), "not", "a string")
	rdb.HSet(ctx, RecordKey("c:", "u"), "_v", "1")
	if existed, _, err := w.Erase(ctx, "u", time.Time{}, false); err != nil || !existed {
		t.Fatalf("erase: %v %v", existed, err)
	}
	if mr.Exists(LinkedIDsKey("c:", "u")) || mr.Exists(LinkKey("c:", "u")) {
		t.Error("keys of the wrong type survived the erasure")
	}
}

// TestReadSaysExpiriesInWords: the raw TTL (-1, -2, seconds) comes with
// the same in words and as a time, and the expiry index entry as a time.
func TestReadSaysExpiriesInWords(t *testing.T) {
	w, _, mr, _ := miniUpdater(t)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := w.Put(ctx, "u", 1, map[string]bool{"p": true}, now.Add(time.Hour), time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	st, err := w.Read(ctx, "u")
	if err != nil || st.TTLSeconds != -1 || st.KeyExpiry != KeyExpiryNone || st.KeyExpiresIn != "" || st.ExpiryIndexedAt != "2026-12-07T11:00:00Z" {
		t.Fatalf("a record without a key TTL: %+v %v", st, err)
	}
	mr.SetTTL(RecordKey("c:", "u"), 90*time.Minute)
	if st, _ = w.Read(ctx, "u"); st.TTLSeconds != 5400 || st.KeyExpiry != "2026-12-07T11:30:00Z" || st.KeyExpiresIn != "1h30m0s" {
		t.Fatalf("a key with a TTL: %+v", st)
	}
	if st, _ = w.Read(ctx, "nobody"); st.TTLSeconds != -2 || st.KeyExpiry != KeyExpiryNoKey || st.ExpiryIndexedAt != "" {
		t.Fatalf("no key: %+v", st)
	}
}
