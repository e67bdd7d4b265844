package app

import (
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/lib/outage"
)

// outages are the Trackers of the two systems consentd waits for: every
// loop that talks to Redis reports to redis, every loop that talks to
// Kafka to kafka, so that an outage of either logs a warning, a summary
// a minute and a recovery line, whatever the number of loops.
type outages struct {
	redis, kafka *outage.Tracker
}

func newOutages(cfg *config.Config, log *zap.Logger, oc outage.Config) outages {
	redisSetting := "redis.addr"
	if cfg.Redis.Mode == config.RedisSentinel || cfg.Redis.Mode == config.RedisCluster {
		redisSetting = "redis.addrs"
	}
	return outages{
		redis: outage.New("Redis", redisSetting, log, oc),
		kafka: outage.New("Kafka", "kafka.brokers", log, oc),
	}
}

// WithOutageReports changes how outages are reported (the interval of
// the summaries, the clock): tests shorten the interval. Default: the
// zero outage.Config (a summary a minute).
func WithOutageReports(oc outage.Config) Option {
	return func(a *App) { a.outageCfg = oc }
}
