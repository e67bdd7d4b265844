package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/wire"
)

// Two events the demo produces first, to raw partition 0, for user 0 (who
// has full consent): one with personal data where no policy path names it,
// and one whose "UserId" key differs from the policy's userId only by case.
const (
	hostileMessageID    = "demo-hostile"
	confusableMessageID = "demo-confusable"
)

func hostileEvents() []kafka.Message {
	uid, aid := synth.UserID(0), synth.AnonID(0)
	hostile := `{"type":"track","event":"Order Completed","userId":"` + uid + `","anonymousId":"` + aid + `","messageId":"` + hostileMessageID + `",` +
		`"timestamp":"2026-11-22T10:15:30.123Z","context":{"ip":"2002:c633:6437::1",` +
		`"page":{"url":"https://shop.example/checkout?email=carol%40example.com&utm_source=newsletter","path":"/users/` + uid + `/orders"}},` +
		`"properties":{"user":{"email":"carol@example.com"},"dave@example.com":true,"title":"Call me on +49 151 2345 6789",` +
		`"category":{"bob@example.org":"shoes"},"product_id":"sku-2211","revenue":42.5,"currency":"EUR"}}`
	confusable := `{"type":"track","event":"Product Viewed","anonymousId":"` + aid + `","UserId":"erin@example.com","messageId":"` + confusableMessageID + `"}`
	return []kafka.Message{{Value: []byte(hostile)}, {Value: []byte(confusable)}}
}

// toPartition0 sends every message to partition 0, so the hostile events
// are the first two of raw partition 0.
var toPartition0 = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })

// reportHostile prints the hostile event before and after, per output, and
// the confusable event's dead letter.
func reportHostile(ctx context.Context, out io.Writer, brokers []string, outputs map[string]string) {
	fmt.Fprintln(out, "\n== personal data in unexpected places: one event before and after, per output ==")
	raw, ok := readAt(ctx, brokers, rawTopic, 0, 0)
	if !ok {
		fmt.Fprintln(out, "  (raw event not found)")
		return
	}
	fmt.Fprintf(out, "  before: %s\n", raw.Value)
	src := string(wire.AppendSource(nil, rawTopic, 0, 0))
	for _, name := range sortedNames(outputs) {
		m, ok := findMessage(ctx, brokers, outputs[name], func(m *kafka.Message) bool {
			return string(wire.Header(m, wire.HeaderSource)) == src
		})
		if !ok {
			fmt.Fprintf(out, "  [%s] not written\n", name)
			continue
		}
		fmt.Fprintf(out, "  [%s] header %s: %s\n", name, wire.HeaderActions, wire.Header(&m, wire.HeaderActions))
		fmt.Fprintf(out, "  [%s] after:  %s\n", name, m.Value)
	}
	dl, ok := findMessage(ctx, brokers, dlqTopic, func(m *kafka.Message) bool {
		return string(wire.Header(m, wire.HeaderSourcePart)) == "0" && string(wire.Header(m, wire.HeaderSourceOffset)) == "1"
	})
	if !ok {
		fmt.Fprintln(out, "  (confusable event: no dead letter found)")
		return
	}
	fmt.Fprintf(out, "\n[confusable key] dead-lettered, reason %s: %s\n", wire.Header(&dl, wire.HeaderDLQReason), dl.Value)
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// findMessage scans topic's partitions from the start for a message that
// match accepts.
func findMessage(ctx context.Context, brokers []string, topic string, match func(*kafka.Message) bool) (kafka.Message, bool) {
	for p := 0; p < 4; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			continue
		}
		first, last, err := conn.ReadOffsets()
		if err != nil || last <= first {
			conn.Close()
			continue
		}
		if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
			conn.Close()
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		batch := conn.ReadBatch(1, 64<<20)
		for off := first; off < last; off++ {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			if match(&m) {
				batch.Close()
				conn.Close()
				return m, true
			}
		}
		batch.Close()
		conn.Close()
	}
	return kafka.Message{}, false
}
