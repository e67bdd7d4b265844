package consent

import (
	"context"
	"testing"
	"time"
)

func TestCacheNeverServesAnExpiredRecord(t *testing.T) {
	exp := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	st := &countingStore{recs: map[string]Record{"a": {Found: true, Version: 1, Granted: map[string]bool{"p": true}, Expires: exp}}}
	c := NewCache(st, CacheConfig{Size: 100, TTL: time.Minute}, nil)
	now := exp.Add(-time.Second)
	setClock(c, func() time.Time { return now })
	lookup := func() Record {
		t.Helper()
		got, err := c.Lookup(context.Background(), []string{"a"})
		if err != nil {
			t.Fatal(err)
		}
		return got["a"]
	}
	lookup()
	lookup()
	if len(st.calls) != 1 {
		t.Fatalf("%d store calls before the expiry, want 1 (cached)", len(st.calls))
	}
	now = exp // at _exp the cached record is no longer served
	if r := lookup(); len(st.calls) != 2 || !r.Expires.Equal(exp) {
		t.Fatalf("%d store calls at the expiry, want 2: the cached record was served", len(st.calls))
	}
}

func TestRecordExpiry(t *testing.T) {
	exp := time.UnixMilli(1000)
	tests := []struct {
		name string
		rec  Record
		now  time.Time
		want bool
	}{
		{"no expiry", Record{Found: true}, time.UnixMilli(1 << 50), false},
		{"before", Record{Found: true, Expires: exp}, time.UnixMilli(999), false},
		{"at", Record{Found: true, Expires: exp}, exp, true},
		{"after", Record{Found: true, Expires: exp}, time.UnixMilli(1001), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.ExpiredAt(tt.now); got != tt.want {
				t.Fatalf("ExpiredAt = %v, want %v", got, tt.want)
			}
		})
	}
	a := Record{Found: true, Granted: map[string]bool{"p": true}, Expires: time.UnixMilli(5000)}
	b := Record{Found: true, Granted: map[string]bool{"p": true}, Expires: time.UnixMilli(3000)}
	if got := Strictest(a, b).Expires; !got.Equal(b.Expires) {
		t.Fatalf("Strictest expires %v, want the earlier %v", got, b.Expires)
	}
	if got := Strictest(a, Record{Found: true, Granted: map[string]bool{"p": true}}).Expires; !got.Equal(a.Expires) {
		t.Fatalf("Strictest expires %v, want %v", got, a.Expires)
	}
}
