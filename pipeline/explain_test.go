package pipeline

import (
	"context"
	"reflect"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/testing/corpus"
	"github.com/consentd/consentd/wire"
)

// grantEveryone grants every purpose to every subject, with a version.
type grantEveryone struct{}

func (grantEveryone) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	out := map[string]consent.Record{}
	for _, s := range subjects {
		out[s] = consent.Record{Found: true, Version: 7, Granted: map[string]bool{"personalization": true, "analytics": true, "advertising": true}}
	}
	return out, nil
}

// corpusMessages returns the hostile corpus and a synthetic batch as raw
// messages with coordinates.
func corpusMessages(t *testing.T) []kafka.Message {
	t.Helper()
	var msgs []kafka.Message
	for _, ev := range corpus.Events(t) {
		msgs = append(msgs, kafka.Message{Topic: "raw", Partition: 2, Offset: int64(len(msgs)), Value: ev})
	}
	synthetic, _ := synthBatch(200)
	for _, m := range synthetic {
		m.Partition, m.Offset = 2, int64(len(msgs))
		msgs = append(msgs, m)
	}
	return msgs
}

// TestExplainAgreesWithProcess: for every event of the hostile corpus and
// a synthetic batch, Explain reports exactly the messages Process renders
// for it in a batch of many, and its decision agrees with them: a written
// output has its message with the decision's value and key, a skipped one
// none, a dead-lettered event its dead letter only.
func TestExplainAgreesWithProcess(t *testing.T) {
	msgs := corpusMessages(t)
	batch := newTestProcessor(t, grantEveryone{})
	res, err := batch.Process(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	byOrigin := map[int][]kafka.Message{}
	for k, m := range res.Out {
		byOrigin[res.Origin[k]] = append(byOrigin[res.Origin[k]], m)
	}
	ex := newTestProcessor(t, grantEveryone{})
	written, dead := 0, 0
	for i, m := range msgs {
		e, err := ex.Explain(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		want := byOrigin[i]
		for k := range want {
			want[k].Time = e.Out[k].Time // decision times differ by the clock only
		}
		if (len(e.Out) > 0 || len(want) > 0) && !reflect.DeepEqual(e.Out, want) {
			t.Fatalf("event %d: explained\n%+v\nprocessed\n%+v", i, e.Out, want)
		}
		switch {
		case e.Dead != nil:
			dead++
			if e.Decision != nil || len(e.Out) != 1 || e.Out[0].Topic != "dlq" || string(wire.Header(&e.Out[0], wire.HeaderDLQReason)) != e.Dead.Reason {
				t.Fatalf("event %d: dead-lettered (%s) but explained as %+v", i, e.Dead.Reason, e.Out)
			}
		case e.Decision == nil:
			if len(e.Out) != 0 || e.Subject != "" {
				t.Fatalf("event %d: no decision, but %d messages for subject %q", i, len(e.Out), e.Subject)
			}
		default:
			k := 0
			for _, od := range e.Decision.Outputs {
				if !od.Write {
					continue
				}
				written++
				if k >= len(e.Out) || e.Out[k].Topic != od.Output.Topic || string(e.Out[k].Value) != string(od.Value) || string(e.Out[k].Key) != string(od.Key) {
					t.Fatalf("event %d: output %s written, but its message is not the decision's", i, od.Output.Name)
				}
				k++
			}
			if k != len(e.Out) || !e.Record.Found || e.Record.Version != 7 {
				t.Fatalf("event %d: %d messages for %d written outputs; record %+v", i, len(e.Out), k, e.Record)
			}
		}
	}
	if written < 100 || dead < 50 {
		t.Fatalf("%d outputs written, %d events dead-lettered: the corpus hardly exercises explain", written, dead)
	}
}
