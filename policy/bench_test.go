package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/demo/synth"
)

func benchEvent(b *testing.B) []byte {
	g := synth.New(1, 100)
	for range 100 {
		v, _ := g.Event()
		if bytes.HasPrefix(v, []byte(`{"type":"track"`)) && bytes.Contains(v, []byte(`"userId"`)) {
			if len(v) < 500 || len(v) > 750 || !json.Valid(v) {
				b.Fatalf("synthetic event of %d bytes, want about 600", len(v))
			}
			return v
		}
	}
	b.Fatal("no track event generated")
	return nil
}

// BenchmarkDecide is the per-event policy path with the shipped policy:
// parse, subject, three outputs with all transforms, re-encode.
func BenchmarkDecide(b *testing.B) { benchDecide(b, false) }

// BenchmarkDecidePerOutput: the shipped policy with per-output pseudonyms
// (an HMAC per written output instead of one per event).
func BenchmarkDecidePerOutput(b *testing.B) { benchDecide(b, true) }

func benchDecide(b *testing.B, perOutput bool) {
	keys, _ := NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	src, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	spec, err := ParseSpec("policy.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	spec.Pseudonymization.PerOutput = perOutput
	p, err := Compile(spec, keys)
	if err != nil {
		b.Fatal(err)
	}
	raw := benchEvent(b)
	rec := consent.Record{Found: true, Version: 1, Granted: map[string]bool{"personalization": true, "analytics": true, "advertising": true}}
	dc := Decider{Policy: p}
	var doc event.Doc
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := doc.Parse(raw); err != nil {
			b.Fatal(err)
		}
		s, _, _, err := p.Subject(&doc)
		if err != nil {
			b.Fatal(err)
		}
		d, err := dc.DecideAt(&doc, s, rec, Times{})
		if err != nil || d.Written() == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideMapBaseline does the personalization output's work the
// obvious way, decoding into map[string]any and re-encoding, to show what
// editing bytes in place saves. It does less than BenchmarkDecide (one
// output, no HMAC) and is still slower per output.
func BenchmarkDecideMapBaseline(b *testing.B) {
	raw := benchEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatal(err)
		}
		ctx, _ := m["context"].(map[string]any)
		if dev, ok := ctx["device"].(map[string]any); ok {
			delete(dev, "advertisingId")
		}
		if tr, ok := ctx["traits"].(map[string]any); ok {
			delete(tr, "email")
		}
		delete(ctx, "userAgent")
		if tr, ok := m["traits"].(map[string]any); ok {
			delete(tr, "email")
		}
		if pr, ok := m["properties"].(map[string]any); ok {
			delete(pr, "email")
		}
		ctx["ip"] = "0.0.0.0"
		m["userId"] = "k1:00000000000000000000000000000000"
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse is validation and indexing alone.
func BenchmarkParse(b *testing.B) {
	raw := benchEvent(b)
	var doc event.Doc
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := doc.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
