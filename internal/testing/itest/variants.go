package itest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/testing/kafkatest"
)

// Names of the service set-ups.
const (
	// Plain is plaintext Kafka and a single plaintext Redis.
	Plain = "plain"
	// Secure is Kafka over SASL_SSL (SCRAM-SHA-512, the test CA) and a
	// 3-master Redis Cluster.
	Secure = "sasl_ssl+cluster"
	// Sentinel is plaintext Kafka and Redis behind Sentinel (a master and
	// a replica).
	Sentinel = "sentinel"
)

// The variables scripts/services.sh writes to services.env for the
// secured set-ups.
const (
	EnvKafkaSASL      = "CONSENTD_TEST_KAFKA_SASL"
	EnvTLSCA          = "CONSENTD_TEST_TLS_CA"
	EnvSCRAMUser      = "CONSENTD_TEST_KAFKA_SCRAM512_USER"
	EnvSCRAMPassword  = "CONSENTD_TEST_KAFKA_SCRAM512_PASSWORD"
	EnvPlainUser      = "CONSENTD_TEST_KAFKA_PLAIN_USER"
	EnvPlainPassword  = "CONSENTD_TEST_KAFKA_PLAIN_PASSWORD"
	EnvRedisCluster   = "CONSENTD_TEST_REDIS_CLUSTER"
	EnvRedisSentinel  = "CONSENTD_TEST_REDIS_SENTINEL"
	EnvSentinelMaster = "CONSENTD_TEST_REDIS_SENTINEL_MASTER"
)

var redisSetups sync.Map // Env.Redis -> *redis.UniversalOptions

// Variants runs fn as one subtest per named set-up (Plain, Secure,
// Sentinel), each with its Env. A set-up whose variables are not set is
// skipped, or fails under CONSENTD_REQUIRE_INTEGRATION=1.
func Variants(t *testing.T, names []string, fn func(t *testing.T, env Env)) {
	t.Helper()
	base := Require(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			env, missing := variant(base, name)
			if len(missing) > 0 {
				if os.Getenv("CONSENTD_REQUIRE_INTEGRATION") == "1" {
					t.Fatalf("CONSENTD_REQUIRE_INTEGRATION=1 but %s is not set (scripts/services.sh writes it)", strings.Join(missing, ", "))
				}
				t.Skipf("set %s for the %s set-up (make test does)", strings.Join(missing, ", "), name)
			}
			fn(t, env)
		})
	}
}

func variant(base Env, name string) (Env, []string) {
	var missing []string
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			missing = append(missing, k)
		}
		return v
	}
	env := base
	env.Name = name
	switch name {
	case Plain:
	case Secure:
		env.Kafka = get(EnvKafkaSASL)
		env.KafkaTLS = config.TLS{Enabled: true, CAFile: get(EnvTLSCA)}
		env.KafkaSASL = config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: get(EnvSCRAMUser), PasswordEnv: EnvSCRAMPassword,
			Password: config.Secret(get(EnvSCRAMPassword))}
		env.Redis, env.RedisMode = get(EnvRedisCluster), config.RedisCluster
		// kcat (librdkafka as packaged by Debian) fails SCRAM against the
		// test broker; third-party clients use PLAIN on the same listener.
		env.kcat = []string{"-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + env.KafkaTLS.CAFile,
			"-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=" + get(EnvPlainUser), "-X", "sasl.password=" + get(EnvPlainPassword)}
	case Sentinel:
		env.Redis, env.RedisMode, env.RedisMaster = get(EnvRedisSentinel), config.RedisSentinel, get(EnvSentinelMaster)
	default:
		panic("itest: unknown set-up " + name)
	}
	if len(missing) > 0 {
		return env, missing
	}
	if env.KafkaSASL.Mechanism != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k, err := connect.NewKafka(ctx, env.KafkaConfig())
		if err != nil {
			panic("itest: " + err.Error())
		}
		tr := k.Transport()
		tr.MetadataTTL = 500 * time.Millisecond // topics are created by the tests
		kafkatest.Secure(env.Kafka, kafkatest.Security{Dialer: k.Dialer(), Transport: tr})
	}
	if env.RedisMode != config.RedisSingle {
		o := &redis.UniversalOptions{Addrs: env.RedisAddrs(), MasterName: env.RedisMaster, IsClusterMode: env.RedisMode == config.RedisCluster}
		redisSetups.Store(env.Redis, o)
	}
	return env, nil
}

// KafkaConfig is the kafka section (brokers, TLS, SASL) that connects
// to e's Kafka.
func (e Env) KafkaConfig() config.Kafka {
	return config.Kafka{Brokers: []string{e.Kafka}, TLS: e.KafkaTLS, SASL: e.KafkaSASL}
}

// KcatArgs are the kcat arguments that connect to e's Kafka.
func (e Env) KcatArgs() []string {
	return append([]string{"-b", e.Kafka}, e.kcat...)
}
