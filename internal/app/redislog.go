package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

var redisLoggerOnce sync.Once

// zapRedisLogger routes go-redis's internal messages (dial failures, pool
// events) to zap at debug level instead of stderr; failures that matter
// are reported by the pipeline itself.
type zapRedisLogger struct{ log *zap.Logger }

func (l zapRedisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis client", zap.String("detail", fmt.Sprintf(format, v...)))
}

func routeRedisLogs(log *zap.Logger) {
	redisLoggerOnce.Do(func() { redis.SetLogger(zapRedisLogger{log: log}) })
}
