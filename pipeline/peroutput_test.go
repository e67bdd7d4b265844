package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// TestPerOutputCleanMessagesShareNothing: with per-output pseudonyms (and
// messageId pseudonymized, as the policy check warning asks), the clean
// messages of one raw event on different outputs share no key, no source
// or consent-version header and no messageId: a reader of two clean topics
// cannot pair their records. The source header is the output's pseudonym
// of the raw coordinates, so a key holder can still trace a record.
func TestPerOutputCleanMessagesShareNothing(t *testing.T) {
	src, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(src), "  per_output: false", "  per_output: true", 1)
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	compile := func(y string) *policy.Policy {
		spec, err := policy.ParseSpec("policy.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Compile(spec, keys)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if w := strings.Join(compile(y).Warnings, "\n"); !strings.Contains(w, "keep messageId verbatim") {
		t.Fatalf("no warning about messageId kept by every output:\n%s", w)
	}
	y = strings.ReplaceAll(y, "pseudonymize: {fields: [userId, anonymousId", "pseudonymize: {fields: [messageId, userId, anonymousId")
	pol := compile(y)
	if w := strings.Join(pol.Warnings, "\n"); strings.Contains(w, "messageId") {
		t.Fatalf("messageId still reported: %s", w)
	}
	msgs, st := synthBatch(500)
	p, err := NewProcessor(ProcessorConfig{Policy: pol, Store: st, DeadLetterTopic: "dlq", MaxMessageBytes: 4096,
		Backoff: retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]*policy.Output{}
	for _, o := range pol.Outputs {
		outputs[o.Topic] = o
	}
	seen := map[string]string{} // value -> topic
	multi := map[int]int{}
	for k, m := range res.Out {
		o := outputs[m.Topic]
		if o == nil {
			continue
		}
		multi[res.Origin[k]]++
		raw := msgs[res.Origin[k]]
		want, err := pol.OutputPseudonym(nil, o, []byte(raw.Topic+"/"+strconv.Itoa(raw.Partition)+"/"+strconv.FormatInt(raw.Offset, 10)))
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.Header(&m, wire.HeaderSource); string(got) != string(want) {
			t.Fatalf("%s: source header %q, want the output's pseudonym of the coordinates %q", m.Topic, got, want)
		}
		var body struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(m.Value, &body); err != nil {
			t.Fatal(err)
		}
		for what, v := range map[string][]byte{"key": m.Key, "source": wire.Header(&m, wire.HeaderSource),
			"consent version": wire.Header(&m, wire.HeaderConsentVersion), "messageId": []byte(body.MessageID)} {
			if len(v) == 0 || string(v) == string(wire.None) {
				continue
			}
			id := what + "=" + string(v)
			if other, ok := seen[id]; ok && other != m.Topic {
				t.Fatalf("%s is on %s and %s", id, m.Topic, other)
			}
			seen[id] = m.Topic
		}
	}
	n := 0
	for _, c := range multi {
		if c > 1 {
			n++
		}
	}
	if n < 50 {
		t.Fatalf("only %d raw events reached more than one output: the check says little", n)
	}
	t.Logf("%d raw events on more than one output, nothing shared", n)
}
