package kafkax

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/internal/lib/retry"
)

func TestKafkaIdleTimeoutsAreDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := ErrorLogger(zap.New(core), "kafka reader", nil)
	l.Printf("the kafka reader got an unknown error reading partition %d of %s at offset %d: %v", 0, "raw", 42, "read tcp 127.0.0.1:5555->127.0.0.1:9092: i/o timeout")
	l.Printf("kafka reader: %v", "SASL Authentication Failed")
	if w := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(w) != 1 || !strings.Contains(w[0].ContextMap()["detail"].(string), "SASL") {
		t.Errorf("warnings: %v", w)
	}
	if d := logs.FilterLevelExact(zapcore.DebugLevel).Len(); d != 1 {
		t.Errorf("%d debug lines, want the idle timeout", d)
	}
	// kafka-go logs every attempt of its own retries: the rest of the
	// minute is left out.
	for range 50 {
		l.Printf("kafka reader: %v", "dial tcp 127.0.0.1:9092: connect: connection refused")
	}
	if w := logs.FilterLevelExact(zapcore.WarnLevel).Len(); w != 1 {
		t.Errorf("%d warnings after 50 more errors within a minute, want still 1", w)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want retry.Class
	}{
		{"plain", errors.New("boom"), retry.Transient},
		{"leader moving", kafka.NotLeaderForPartition, retry.Transient},
		{"unknown topic is a delay first", kafka.UnknownTopicOrPartition, retry.Transient},
		{"too large", kafka.MessageSizeTooLarge, retry.Refused},
		{"wrapped refusal", fmt.Errorf("writing: %w", kafka.InvalidRecord), retry.Refused},
		{"kafka-go's own size check", kafka.MessageTooLargeError{}, retry.Refused},
		{"authorization", kafka.TopicAuthorizationFailed, retry.Fatal},
		{"in write errors", fmt.Errorf("x: %w", kafka.WriteErrors{kafka.SASLAuthenticationFailed}), retry.Transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.want != retry.Transient && Why(tc.err) == Why(errors.New("x")) {
				t.Fatalf("Why(%v) gives no reason", tc.err)
			}
		})
	}
}
