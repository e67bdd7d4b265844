package policy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/internal/testing/corpus"
)

// sharedOutputs are outputs whose transforms share little, added to the
// shipped ones: different scrub settings, identifier names, URL
// parameters, keys, a verbatim identifier, no scrub at all, and a twin of
// an earlier output (which shares everything).
const sharedOutputs = `
  - name: hashes
    topic: c.hashes
    segments: []
    require: [analytics]
    transforms:
      - keep_only: [type, event, userId, anonymousId, messageId, timestamp, properties, context.page, context.traits, traits]
      - pseudonymize: {fields: [userId]}
      - scrub: {hashes: true, at_words: true}
  - name: idents
    topic: c.idents
    require: [analytics]
    transforms:
      - drop_fields: [context.ip]
      - keep_only: [type, event, userId, messageId, properties, context, traits]
      - pseudonymize: {fields: [userId], key: k2}
      - scrub: {identifiers: [email, context.device.id, sessionId], keep_params: [ref, "q*"]}
  - name: urls
    topic: c.urls
    segments: []
    require: [personalization]
    transforms:
      - keep_only: [type, userId, context.page, properties.url, properties.path, properties.search, properties.referrer]
      - pseudonymize: {fields: [userId]}
      - truncate_time: {fields: [timestamp], to: day}
      - scrub: {keep_params: [], fields: [properties]}
  - name: raw
    topic: c.raw
    segments: []
    require: [personalization]
    transforms:
      - keep_only: [type, event, properties, context.locale, timestamp]
      - truncate_time: {fields: [timestamp], to: minute}
  - name: analytics-twin
    topic: c.analytics2
    require: [analytics]
    when:
      type: [track, page, screen]
    transforms:
      - keep_only: [type, event, messageId, timestamp, anonymousId, userId, properties.product_id, properties.category, properties.revenue, properties.currency, properties.path, properties.title, context.page.path, context.locale, context.location.country]
      - pseudonymize: {fields: [userId, anonymousId]}
      - truncate_time: {fields: [timestamp], to: hour}
      - scrub: {}
`

// sharedEvents returns the hostile corpus's events, synthetic ones and a
// few written for sharing: one identifier kept by one output and removed
// by another, e-mails and their hashes, URLs with ids.
func sharedEvents(t *testing.T) [][]byte {
	t.Helper()
	evs := corpus.Events(t)
	g := synth.New(3, 50)
	for range 300 {
		v, _ := g.Event()
		evs = append(evs, v)
	}
	evs = append(evs,
		[]byte(`{"type":"track","event":"Order Completed","userId":"u-7731","anonymousId":"a-19","timestamp":"2026-11-22T10:15:30Z","properties":{"title":"u-7731 a-19 bob@example.com","url":"https://x.example/p/u-7731?ref=a-19&q=bob%40example.com&utm_source=u-7731","search":"?email=bob@example.com"},"context":{"ip":"203.0.113.9","device":{"id":"dev-88"},"page":{"url":"https://x.example/a-19/dev-88?sessionId=s-55"},"traits":{"email":"Bob@Example.com","note":"203.0.113.9 dev-88 s-55"}},"traits":{"sessionId":"s-55"}}`),
		[]byte(`{"type":"page","userId":"123456789","anonymousId":"anon-5","properties":{"n":123456789,"m":1.23456789e8,"h":"5f4dcc3b5aa765d61d8327deb882cf99","e":"alice (at) example (dot) com"},"context":{"traits":{"email":"alice@example.com"},"page":{"path":"/u/123456789/anon-5"}}}`),
		[]byte(`{"type":"track","event":"Product Viewed","userId":"u1","anonymousId":"a1","properties":{"ids":[{"email":"c@example.com"},{"userId":"zz-top"}],"zz-top":"key is an id","c@example.com":1}}`),
	)
	// One subject's events one after the other, alike in shape but not in
	// values: a result remembered from the previous event would show.
	for _, title := range []string{"call 555-0100 now", "plain title", "mail d@example.com", "card 4111 1111 1111 1111", "plain title"} {
		evs = append(evs, []byte(`{"type":"track","event":"Order Completed","anonymousId":"same-anon-1","properties":{"title":"`+title+`","path":"/a/same-anon-1"},"context":{"page":{"url":"https://x.example/?q=`+title+`"}}}`))
	}
	return evs
}

// TestSharedWorkMatchesOutputsAlone: what a Decider computes once per
// event and shares between outputs (pseudonyms, timestamps, identifier
// occurrences, scrub results, hashes) changes nothing. Every output of a
// policy with outputs that share little, decided together with one
// Decider over many events in two orders, equals the same output decided
// alone by a policy holding only it.
func TestSharedWorkMatchesOutputsAlone(t *testing.T) {
	src, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	evs := sharedEvents(t)
	all := granted(1, "personalization", "analytics", "advertising")
	for _, perOutput := range []bool{false, true} {
		t.Run(fmt.Sprintf("per_output=%t", perOutput), func(t *testing.T) {
			spec, err := ParseSpec("policy.yaml", append(append([]byte(nil), src...), sharedOutputs...))
			if err != nil {
				t.Fatal(err)
			}
			spec.Pseudonymization.PerOutput = perOutput
			full, err := Compile(spec, testKeys(t))
			if err != nil {
				t.Fatal(err)
			}
			alone := make([]*Decider, len(spec.Outputs))
			for i := range spec.Outputs {
				one := *spec
				one.Outputs = spec.Outputs[i : i+1]
				p, err := Compile(&one, testKeys(t))
				if err != nil {
					t.Fatal(err)
				}
				alone[i] = &Decider{Policy: p}
			}
			dc := &Decider{Policy: full}
			order := rand.New(rand.NewPCG(1, 2)).Perm(len(evs))
			compared, written := 0, 0
			for pass := range 3 {
				for i, k := range order {
					switch pass {
					case 1:
						k = len(evs) - 1 - k
					case 2:
						k = i // as written
					}
					c, w := compareShared(t, dc, alone, evs[k], all)
					compared += c
					written += w
				}
			}
			if compared < len(evs) || written < len(evs) {
				t.Fatalf("compared %d events with %d written outputs: the events hardly exercise the outputs", compared, written)
			}
		})
	}
}

// compareShared decides raw with the full policy and with each output
// alone and fails on any difference; it returns 1 and the outputs written
// when the event was decided, 0 and 0 when it is refused as a whole.
func compareShared(t *testing.T, dc *Decider, alone []*Decider, raw []byte, rec consent.Record) (int, int) {
	t.Helper()
	var doc event.Doc
	if doc.Parse(raw) != nil {
		return 0, 0
	}
	subj, _, ok, err := dc.Policy.Subject(&doc)
	if err != nil || !ok {
		return 0, 0
	}
	at := Times{Record: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	d, err := dc.DecideAt(&doc, subj, rec, at)
	if err != nil {
		// Refused as a whole: some output alone refuses it for the same
		// reason.
		want := err.(*InputError).Reason
		for _, a := range alone {
			if _, e := a.DecideAt(&doc, subj, rec, at); e != nil && e.(*InputError).Reason == want {
				return 0, 0
			}
		}
		t.Fatalf("%s: refused (%v), but no output alone refuses it", raw, err)
	}
	n := 0
	for i, a := range alone {
		da, err := a.DecideAt(&doc, subj, rec, at)
		if err != nil {
			t.Fatalf("%s: output %s alone refuses the event (%v); together it was decided", raw, a.Policy.Outputs[0].Name, err)
		}
		got, want := d.Outputs[i], da.Outputs[0]
		if got.Write != want.Write || got.Reason != want.Reason || string(got.Value) != string(want.Value) ||
			string(got.Key) != string(want.Key) || got.ActionsHeader() != want.ActionsHeader() {
			t.Fatalf("%s: output %s decided with the others:\n  %t %q key %s actions %s\n  %s\nalone:\n  %t %q key %s actions %s\n  %s",
				raw, got.Output.Name, got.Write, got.Reason, got.Key, got.ActionsHeader(), got.Value,
				want.Write, want.Reason, want.Key, want.ActionsHeader(), want.Value)
		}
		if got.Write {
			n++
			// Outputs that take the subject ids away must not hold them
			// (hashes keeps anonymousId as it is, raw keeps no id field).
			if got.Output.Name != "hashes" && got.Output.Name != "raw" && len(subj) >= 4 && strings.Contains(string(got.Value), subj) {
				t.Errorf("%s: output %s still holds the subject id", raw, got.Output.Name)
			}
		}
	}
	return 1, n
}
