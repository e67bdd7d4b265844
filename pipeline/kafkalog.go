package pipeline

import (
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// KafkaErrorLogger returns a kafka-go ErrorLogger that logs at warn level
// under msg, except for the read timeouts kafka-go reports whenever a
// fetch or a group heartbeat connection stays idle: those say nothing
// about the pipeline's health (real failures surface as errors from
// FetchMessage, writes and commits) and would be most log lines of an
// idle instance, so they go to debug.
func KafkaErrorLogger(log *zap.Logger, msg string) kafka.Logger {
	return kafka.LoggerFunc(func(f string, a ...any) {
		detail := fmt.Sprintf(f, a...)
		if IdleTimeoutNoise(detail) {
			log.Debug(msg, zap.String("detail", detail))
			return
		}
		log.Warn(msg, zap.String("detail", detail))
	})
}

// IdleTimeoutNoise reports whether a kafka-go log line is only an idle
// connection's read timeout.
func IdleTimeoutNoise(detail string) bool {
	return strings.HasSuffix(strings.TrimSpace(detail), "i/o timeout") ||
		strings.Contains(detail, "i/o timeout") && strings.Contains(detail, "read tcp")
}
