package pipeline

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/consentd/consentd/policy"
)

// shadowRecorder counts ShadowHook calls by output, kind and path.
type shadowRecorder struct {
	mu     sync.Mutex
	events int
	seen   map[string]int
}

func (r *shadowRecorder) OnShadow(key []byte, diffs []policy.Diff) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events++
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	if len(key) == 0 {
		r.seen["no key"]++
	}
	for _, d := range diffs {
		r.seen[d.Output+" "+d.Kind+" "+d.Path]++
	}
}

func shadowPolicy(t *testing.T, edit func(string) string) *policy.Policy {
	t.Helper()
	src, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(src))
	keys, _ := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	p, err := policy.FromBytes("shadow.yaml", []byte(changed), keys)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShadowReportsWhatChanged: a shadow policy decided beside the live
// one reports the differences its change makes, and only those; the same
// policy as a shadow reports none; the live output is untouched.
func TestShadowReportsWhatChanged(t *testing.T) {
	msgs, st := synthBatch(1000)
	live := newTestProcessor(t, st)
	want, err := live.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}

	same := &shadowRecorder{}
	p := newTestProcessor(t, st)
	p.cfg.Hooks = append(p.cfg.Hooks, same)
	p.shadow = &policy.Decider{Policy: shadowPolicy(t, func(s string) string { return s })}
	if _, err := p.Process(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if same.events < 500 || len(same.seen) != 0 {
		t.Fatalf("the live policy as its own shadow: %d events, differences %v", same.events, same.seen)
	}

	// The change under review: analytics stops keeping properties.title
	// and truncates timestamps to the day; advertising needs only the
	// advertising purpose.
	changed := shadowPolicy(t, func(s string) string {
		s = strings.Replace(s, "properties.currency, properties.path, properties.title, context.page.path, context.locale, context.location.country]",
			"properties.currency, properties.path, context.page.path, context.locale, context.location.country]", 1)
		s = strings.Replace(s, "truncate_time: {fields: [timestamp], to: hour}", "truncate_time: {fields: [timestamp], to: day}", 1) // analytics'
		return strings.Replace(s, "require: [advertising, personalization]", "require: [advertising]", 1)
	})
	rec := &shadowRecorder{}
	p = newTestProcessor(t, st)
	p.cfg.Hooks = append(p.cfg.Hooks, rec)
	p.shadow = &policy.Decider{Policy: changed}
	got, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	expected := map[string]bool{
		"analytics field_removed properties.title": true,
		"analytics value_changed timestamp":        true,
		"advertising newly_written ":               true,
		"analytics transform_changed ":             true, // keep_only removes one more member
	}
	for d, n := range rec.seen {
		if !expected[d] {
			t.Errorf("unexpected difference %q (%d events)", d, n)
		}
	}
	for d := range expected {
		if rec.seen[d] == 0 {
			t.Errorf("no %q difference reported", d)
		}
	}
	if len(got.Out) != len(want.Out) {
		t.Fatalf("the shadow changed the live output: %d messages, want %d", len(got.Out), len(want.Out))
	}
	for i := range got.Out {
		if string(got.Out[i].Value) != string(want.Out[i].Value) || got.Out[i].Topic != want.Out[i].Topic {
			t.Fatalf("message %d differs with a shadow policy", i)
		}
	}

	// One event in four.
	sampled := &shadowRecorder{}
	p = newTestProcessor(t, st)
	p.cfg.Hooks, p.cfg.ShadowEvery = append(p.cfg.Hooks, sampled), 4
	p.shadow = &policy.Decider{Policy: changed}
	p.Process(context.Background(), msgs)
	if sampled.events < rec.events/4-1 || sampled.events > rec.events/4+1 {
		t.Fatalf("ShadowEvery 4: %d events decided, of %d", sampled.events, rec.events)
	}
}
