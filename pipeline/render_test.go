package pipeline

import (
	"context"
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/wire"
)

// TestCopyHeaders: the raw headers named by copy_headers reach every
// clean message, in the raw order, and nothing else does; messages of one
// raw event do not share header storage.
func TestCopyHeaders(t *testing.T) {
	msgs, st := synthBatch(200)
	for i := range msgs {
		msgs[i].Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-abc-01")}, {Key: "x-user-email", Value: []byte("a@b")}, {Key: "tracestate", Value: []byte("v=1")}}
	}
	p := newTestProcessor(t, st)
	p.cfg.CopyHeaders = []string{"tracestate", "traceparent"}
	p.render = newRenderer(p.cfg.Policy, p.cfg.DeadLetterTopic, p.cfg.CopyHeaders)
	res, err := p.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	clean := 0
	byOrigin := map[int][]int{}
	for i := range res.Out {
		m := &res.Out[i]
		if wire.IsDeadLetter(m) {
			continue
		}
		clean++
		byOrigin[res.Origin[i]] = append(byOrigin[res.Origin[i]], i)
		var keys []string
		for _, h := range m.Headers {
			keys = append(keys, h.Key)
		}
		if n := len(keys); n < 2 || !slices.Equal(keys[n-2:], []string{"traceparent", "tracestate"}) || slices.Contains(keys, "x-user-email") {
			t.Fatalf("clean message headers %v, want the consentd headers then traceparent, tracestate", keys)
		}
	}
	if clean == 0 {
		t.Fatal("no clean message to check")
	}
	for _, idx := range byOrigin {
		if len(idx) < 2 {
			continue
		}
		a, b := &res.Out[idx[0]], &res.Out[idx[1]]
		a.Headers[len(a.Headers)-1].Value = []byte("changed")
		if string(b.Headers[len(b.Headers)-1].Value) != "v=1" {
			t.Fatal("clean messages of one raw event share header storage")
		}
		return
	}
}

func TestNoCopiedHeadersByDefault(t *testing.T) {
	r := renderer{}
	raw := &kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte("x")}}}
	if got := r.appendCopied(nil, raw); len(got) != 0 {
		t.Fatalf("empty allow-list copied %v", got)
	}
}
