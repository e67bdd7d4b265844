package pipeline

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestCopyHeaders(t *testing.T) {
	raw := []kafka.Message{
		{Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-abc-01")}, {Key: "x-user-email", Value: []byte("a@b")}, {Key: "tracestate", Value: []byte("v=1")}}},
		{Headers: []kafka.Header{{Key: "x-user-email", Value: []byte("c@d")}}},
	}
	clean := func(topic string) kafka.Message {
		return kafka.Message{Topic: topic, Headers: []kafka.Header{{Key: "consentd-output", Value: []byte(topic)}}}
	}
	res := &Result{Out: []kafka.Message{clean("a"), clean("b"), clean("dlq"), clean("a")}, Origin: []int{0, 0, 0, 1}}
	copyHeaders([]string{"traceparent", "tracestate"}, "dlq", raw, res)
	for i, want := range [][]string{
		{"consentd-output", "traceparent", "tracestate"},
		{"consentd-output", "traceparent", "tracestate"},
		{"consentd-output"}, // dead letters are left alone
		{"consentd-output"}, // nothing listed in the raw message
	} {
		var got []string
		for _, h := range res.Out[i].Headers {
			got = append(got, h.Key)
		}
		if len(got) != len(want) {
			t.Errorf("message %d: headers %v, want %v", i, got, want)
			continue
		}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("message %d: headers %v, want %v", i, got, want)
			}
		}
	}
	if string(res.Out[1].Headers[1].Value) != "00-abc-01" {
		t.Errorf("traceparent value %q", res.Out[1].Headers[1].Value)
	}
	// Messages of one origin do not share header slices.
	res.Out[0].Headers[1].Value = []byte("changed")
	if string(res.Out[1].Headers[1].Value) != "00-abc-01" {
		t.Error("clean messages share header storage")
	}

	none := &Result{Out: []kafka.Message{clean("a")}, Origin: []int{0}}
	copyHeaders(nil, "dlq", raw, none)
	if len(none.Out[0].Headers) != 1 {
		t.Errorf("empty allow-list copied %v", none.Out[0].Headers)
	}
}
