package pipeline

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/policy"
)

const segmentsPolicy = `version: v
purposes: [a, b]
pseudonym_key: k1
segments: {fields: [country], top: 3}
outputs:
  - name: all
    topic: t.all
    require: [a]
    transforms: [{keep_only: [type, country]}]
  - name: tracks
    topic: t.tracks
    require: [b]
    when: {type: [track]}
    transforms: [{keep_only: [type, country]}]
`

func segmentsProcessor(t *testing.T, recs map[string]consent.Record) *Processor {
	t.Helper()
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.FromBytes("segments.yaml", []byte(segmentsPolicy), keys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: &mapStore{recs: recs}, DeadLetterTopic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSegmentsCountDecidedAndWrittenEvents(t *testing.T) {
	both := consent.Record{Found: true, Version: 1, Granted: map[string]bool{"a": true, "b": true}}
	onlyB := consent.Record{Found: true, Version: 1, Granted: map[string]bool{"b": true}}
	recs := map[string]consent.Record{"u-both": both, "u-b": onlyB}
	ev := func(subject, typ, country string) kafka.Message {
		c := ""
		if country != "" {
			c = `,"country":` + country
		}
		return kafka.Message{Topic: "raw", Value: []byte(`{"type":"` + typ + `","userId":"` + subject + `"` + c + `}`)}
	}
	msgs := []kafka.Message{
		ev("u-both", "track", `"DE"`),                                      // all: raw+clean DE; tracks: raw+clean DE
		ev("u-b", "track", `"DE"`),                                         // all: raw DE; tracks: raw+clean DE
		ev("u-none", "track", `"FR"`),                                      // no record: raw FR on both, clean nowhere
		ev("u-both", "page", `"FR"`),                                       // tracks filters it: all raw+clean FR only
		ev("u-none", "page", `"FR"`),                                       // denied, and not for tracks: all raw FR only
		ev("u-both", "track", `"alice@example.com"`),                       // personal: redacted
		ev("u-both", "track", `{"x":1}`),                                   // not a scalar: redacted
		ev("u-both", "track", ""),                                          // missing: none
		ev("u-both", "track", `"u-both"`),                                  // the event's own subject id: redacted
		ev("u-both", "track", `"A123456"`),                                 // an account number: redacted
		ev("u-both", "track", `"IT"`),                                      // third value admitted
		ev("u-both", "track", `"ES"`),                                      // past top 3: other
		ev("u-both", "track", `"ES"`),                                      // still other
		{Topic: "raw", Value: []byte(`{"type":"track","country":"PT"}`)},   // no subject: not counted
		{Topic: "raw", Value: []byte(`{"type":"track","userId":{"x":1}}`)}, // dead-lettered: not counted
	}
	p := segmentsProcessor(t, recs)
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[SegmentCount]int{}
	add := func(out, value, stage string, n int) { want[SegmentCount{out, "country", value, stage}] += n }
	for _, out := range []string{"all", "tracks"} {
		add(out, "DE", StageRaw, 2)
		add(out, policy.SegmentOther, StageRaw, 1) // u-none's FR
		add(out, policy.SegmentRedacted, StageRaw, 4)
		add(out, policy.SegmentNone, StageRaw, 1)
		add(out, "IT", StageRaw, 1)
		add(out, policy.SegmentOther, StageRaw, 2)
		add(out, policy.SegmentRedacted, StageClean, 4)
		add(out, policy.SegmentNone, StageClean, 1)
		add(out, "IT", StageClean, 1)
		add(out, policy.SegmentOther, StageClean, 2)
	}
	add("all", "DE", StageClean, 1)
	add("tracks", "DE", StageClean, 2)
	add("all", "FR", StageRaw, 2)
	add("all", "FR", StageClean, 1)
	if !maps.Equal(res.Accounting.Segments, want) {
		t.Fatalf("segments:\n got %v\nwant %v", res.Accounting.Segments, want)
	}
	// The counts agree with the decisions: clean totals are the writes.
	for _, out := range []string{"all", "tracks"} {
		clean := 0
		for k, v := range res.Accounting.Segments {
			if k.Output == out && k.Stage == StageClean {
				clean += v
			}
		}
		if clean != res.Accounting.Written[out] {
			t.Errorf("%s: clean segment total %d, written %d", out, clean, res.Accounting.Written[out])
		}
	}
}

// TestSegmentLabelsAreBoundedAcrossWorkers floods the table from
// several workers with more distinct values than top, personal ones
// among them: no more than top values ever get labels, and none of them
// is personal.
func TestSegmentLabelsAreBoundedAcrossWorkers(t *testing.T) {
	keys, _ := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	pol, err := policy.FromBytes("segments.yaml", []byte(segmentsPolicy), keys)
	if err != nil {
		t.Fatal(err)
	}
	both := consent.Record{Found: true, Version: 1, Granted: map[string]bool{"a": true, "b": true}}
	factory, err := NewProcessorFactory(ProcessorConfig{Policy: pol, Store: &mapStore{recs: map[string]consent.Record{"u": both}}, DeadLetterTopic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	total := Accounting{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := factory()
			var msgs []kafka.Message
			for i := 0; i < 200; i++ {
				c := fmt.Sprintf("C%d-%d", w, i)
				if i%3 == 0 {
					c = fmt.Sprintf("user%d@example.com", i)
				}
				msgs = append(msgs, kafka.Message{Topic: "raw", Value: []byte(`{"type":"track","userId":"u","country":"` + c + `"}`)})
			}
			res, err := p.Process(context.Background(), msgs)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total.Add(&res.Accounting)
			mu.Unlock()
		}()
	}
	wg.Wait()
	labels := map[string]bool{}
	sum := 0
	for k, v := range total.Segments {
		if k.Output == "all" && k.Stage == StageRaw {
			labels[k.Value] = true
			sum += v
		}
		if strings.Contains(k.Value, "@") {
			t.Errorf("personal value labelled: %q", k.Value)
		}
	}
	delete(labels, policy.SegmentOther)
	delete(labels, policy.SegmentRedacted)
	if len(labels) != 3 {
		t.Errorf("labels %v: want exactly top=3 values besides other and redacted", labels)
	}
	if sum != 800 {
		t.Errorf("counted %d events, want 800", sum)
	}
}

// BenchmarkProcessBatchNoSegments is BenchmarkProcessBatch without the
// shipped policy's segment tally: the difference is what measuring
// segments costs per event.
func BenchmarkProcessBatchNoSegments(b *testing.B) {
	msgs, st := synthBatch(1000)
	p := newTestProcessor(b, st)
	p.segments = nil
	benchProcess(b, p, msgs)
}

// TestSegmentLabelsAreWhatTheCleanTopicHolds: a value the output's own
// scrub rewrites (here the value of an identifier field the output
// drops, found again in the segment field) never becomes a label, even
// though it looks harmless on its own; a refused write is taken back
// out of the clean counts.
func TestSegmentLabelsAreWhatTheCleanTopicHolds(t *testing.T) {
	keys, _ := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	pol, err := policy.FromBytes("segments.yaml", []byte(`version: v
purposes: [a]
pseudonym_key: k1
segments: {fields: [properties.plan]}
outputs:
  - name: all
    topic: t.all
    require: [a]
    transforms:
      - drop_fields: [properties.crm]
      - keep_only: [type, properties.plan]
      - scrub: {}
`), keys)
	if err != nil {
		t.Fatal(err)
	}
	rec := consent.Record{Found: true, Version: 1, Granted: map[string]bool{"a": true}}
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: &mapStore{recs: map[string]consent.Record{"u1": rec}}, DeadLetterTopic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []kafka.Message{
		{Topic: "raw", Value: []byte(`{"type":"track","userId":"u1","properties":{"plan":"jdoe","crm":{"externalId":"jdoe"}}}`)},
		{Topic: "raw", Value: []byte(`{"type":"track","userId":"u1","properties":{"plan":"pro"}}`)},
		{Topic: "raw", Value: []byte(`{"type":"track","userId":"u1","properties":{"plan":"pro"}}`)},
	}
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Out {
		if strings.Contains(string(m.Value), "jdoe") {
			t.Fatalf("the clean event holds the id: %s", m.Value)
		}
	}
	want := map[SegmentCount]int{
		{"all", "properties.plan", policy.SegmentRedacted, StageRaw}: 1, {"all", "properties.plan", policy.SegmentRedacted, StageClean}: 1,
		{"all", "properties.plan", "pro", StageRaw}: 2, {"all", "properties.plan", "pro", StageClean}: 2,
	}
	if !maps.Equal(res.Accounting.Segments, want) {
		t.Fatalf("segments %v, want %v", res.Accounting.Segments, want)
	}
	// The broker refuses event 2's clean write: it leaves the clean count.
	acc := Account(res, &WriteReport{Refused: []Refusal{{Output: "all", Reason: ReasonOutputTooLarge, DeadLettered: true, Origin: 2}}})
	if got := acc.Segments[SegmentCount{"all", "properties.plan", "pro", StageClean}]; got != 1 {
		t.Errorf("after a refused write, clean pro = %d, want 1", got)
	}
	if got := acc.Segments[SegmentCount{"all", "properties.plan", "pro", StageRaw}]; got != 2 {
		t.Errorf("after a refused write, raw pro = %d, want 2 (still decided)", got)
	}
	if res.Accounting.Segments[SegmentCount{"all", "properties.plan", "pro", StageClean}] != 2 {
		t.Error("Account changed the decide stage's own counts")
	}
}
