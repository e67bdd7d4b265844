package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	secretA = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	secretB = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

func TestKeyringRetired(t *testing.T) {
	file := "k3:" + secretA + "\nk2:" + secretB + ":retired=2025-05-01T00:00:00Z\n" +
		"k1:" + secretA + " : retired=2025-03-01T12:00:00+02:00\nk0:" + secretB + ":retired=2024-01-01T00:00:00Z\n"
	k, err := ParseKeyring("keys", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if _, r := k.Retired("k3"); r {
		t.Error("k3 is not retired")
	}
	if at, r := k.Retired("k1"); !r || !at.Equal(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("k1 retired %v at %v", r, at)
	}
	now := time.Date(2025, 5, 10, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		retention time.Duration
		want      []string
	}{
		{"a week keeps only the current key", 7 * 24 * time.Hour, []string{"k3"}},
		{"ten days reach k2", 10 * 24 * time.Hour, []string{"k3", "k2"}},
		{"a year reaches k1 and k0, most recent first", 500 * 24 * time.Hour, []string{"k3", "k2", "k1", "k0"}},
		{"exactly the retention ago is out", 9 * 24 * time.Hour, []string{"k3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := k.Live("k3", now, tc.retention); !slices.Equal(got, tc.want) {
				t.Fatalf("live keys %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{
		"k1:" + secretA + ":retired=yesterday",
		"k1:" + secretA + ":expired=2025-01-01T00:00:00Z",
		"k1:" + secretA + ":",
	} {
		_, err := ParseKeyring("keys", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), "retired=RFC3339") || strings.Contains(err.Error(), secretA) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestRetractionKeysFollowRotation(t *testing.T) {
	retired := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	keys, err := ParseKeyring("keys", []byte("k1:"+secretA+":retired="+retired+"\nk2:"+secretB+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec("test.yaml", []byte(strings.Replace(basePolicy, "pseudonym_key: k1", "pseudonym_key: k2", 1)+`
  - name: analytics
    topic: clean.analytics
    require: [analytics]
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.RetractionKeys(p.Outputs[0], "u1", time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{pseudonym(t, keys, "k2", "u1"), pseudonym(t, keys, "k1", "u1")}
	if len(got) != 2 || string(got[0]) != want[0] || string(got[1]) != want[1] {
		t.Fatalf("retraction keys %q, want %q", got, want)
	}
	if cur, _ := p.PseudonymousKey("u1"); string(cur) != want[0] {
		t.Fatalf("new records are keyed %q, want the new key's %q", cur, want[0])
	}
	if got, _ := p.RetractionKeys(p.Outputs[0], "u1", time.Now(), time.Minute); len(got) != 1 {
		t.Fatalf("a key retired longer ago than the retention still gets retractions: %q", got)
	}

	// The current key cannot be a retired one.
	spec.PseudonymKey = "k1"
	if _, err := Compile(spec, keys); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("a retired pseudonym_key compiled: %v", err)
	}
}
