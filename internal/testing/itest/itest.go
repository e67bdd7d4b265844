// Package itest holds helpers for integration tests against a real Kafka
// broker and a real Redis. Tests find them through CONSENTD_TEST_KAFKA and
// CONSENTD_TEST_REDIS (set by `make test`); without them the tests skip,
// unless CONSENTD_REQUIRE_INTEGRATION=1 (CI), where a missing service fails.
// Variants (variants.go) adds the secured set-ups: SASL_SSL Kafka, Redis
// Cluster and Sentinel. Test tooling: production code never imports it.
package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/kafkatest"
)

// Env locates the real services of one set-up (see Variants).
type Env struct {
	// Name of the set-up: Plain, Secure or Sentinel.
	Name string
	// Kafka is the bootstrap host:port; the helpers of this package
	// connect to it with KafkaTLS and KafkaSASL.
	Kafka string
	// KafkaTLS and KafkaSASL are the connection settings of Kafka, zero
	// for plaintext. KafkaSASL.PasswordEnv names the variable holding
	// the password; KafkaSASL.Password is resolved.
	KafkaTLS  config.TLS
	KafkaSASL config.KafkaSASL
	// Redis is what Redis(t, Redis) connects to: a host:port for a single
	// node, the comma-separated seeds of a cluster, or the sentinels.
	Redis string
	// RedisMode is config.RedisSingle, RedisCluster or RedisSentinel.
	RedisMode string
	// RedisMaster is the master's name in the sentinels.
	RedisMaster string

	kcat []string // kcat's connection settings for Kafka
}

// WithRedis returns e using the single Redis node at addr.
func (e Env) WithRedis(addr string) Env {
	e.Redis, e.RedisMode, e.RedisMaster = addr, config.RedisSingle, ""
	return e
}

// RedisAddrs are the addresses of Redis (one for a single node).
func (e Env) RedisAddrs() []string { return strings.Split(e.Redis, ",") }

// Require returns the services or skips (fails under CI) the test.
func Require(t testing.TB) Env {
	t.Helper()
	e := Env{Name: Plain, Kafka: os.Getenv("CONSENTD_TEST_KAFKA"), Redis: os.Getenv("CONSENTD_TEST_REDIS"), RedisMode: config.RedisSingle}
	if e.Kafka == "" || e.Redis == "" {
		if os.Getenv("CONSENTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("CONSENTD_REQUIRE_INTEGRATION=1 but CONSENTD_TEST_KAFKA / CONSENTD_TEST_REDIS are not set")
		}
		t.Skip("integration test: set CONSENTD_TEST_KAFKA and CONSENTD_TEST_REDIS (make test does)")
	}
	return e
}

// Unique returns prefix plus a random suffix, for topic, group and key names.
func Unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// CreateTopics creates topics with the given partition count and waits
// until their leaders are known.
func CreateTopics(t testing.TB, broker string, partitions int, topics ...string) {
	t.Helper()
	if err := kafkatest.CreateTopics(broker, partitions, topics...); err != nil {
		t.Fatal(err)
	}
}

// Produce writes msgs to topic with acks=all and fails the test on error.
func Produce(t testing.TB, broker, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Transport: kafkatest.Transport(broker), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A topic created a moment ago may not be known to every part of the
	// broker yet (UnknownTopicOrPartition): retry for a while.
	for attempt := 1; ; attempt++ {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			var retry []kafka.Message
			for i, e := range werrs {
				if e != nil {
					retry = append(retry, msgs[i])
				}
			}
			msgs = retry
		}
		if attempt >= 30 || ctx.Err() != nil {
			t.Errorf("produce to %s: %v", topic, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ReadAll returns every message currently in topic, partition by partition
// (ordered by partition then offset).
func ReadAll(t testing.TB, broker, topic string) []kafka.Message {
	t.Helper()
	msgs, err := readAll(broker, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

func readAll(broker, topic string) ([]kafka.Message, error) {
	parts, err := kafkatest.Partitions(broker, topic)
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for _, p := range parts {
		ms, err := readPartition(broker, topic, p)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

func readPartition(broker, topic string, partition int) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafkatest.Dialer(broker).DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	if first >= last {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Dialer: kafkatest.Dialer(broker), Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("partition %d at %d of %d: %w", partition, len(out), last-first, err)
		}
		out = append(out, m)
		if m.Offset >= last-1 {
			return out, nil
		}
	}
}

// Count returns how many messages topic holds (sum of end-start offsets).
// Transient broker errors are retried for a few seconds.
func Count(t testing.TB, broker, topic string) int64 {
	t.Helper()
	var err error
	for attempt := 0; attempt < 25; attempt++ {
		var n int64
		if n, err = count(broker, topic); err == nil {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("count %s: %v", topic, err)
	return 0
}

func count(broker, topic string) (int64, error) {
	ends, err := Offsets(broker, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range ends {
		n += o[1] - o[0]
	}
	return n, nil
}

// Offsets returns [first, end) per partition of topic.
func Offsets(broker, topic string) (map[int][2]int64, error) { return kafkatest.Offsets(broker, topic) }

// Committed returns the group's committed offset per partition of topic
// (-1 where none).
func Committed(t testing.TB, broker, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	out, err := kafkatest.Committed(broker, group, topic, partitions)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	return out
}

// Eventually polls cond every 50ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis returns a client for db 0 of the test Redis at addr: an Env's
// Redis (a cluster or sentinels when Variants set it up) or any single
// node's host:port.
func Redis(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	o := &redis.UniversalOptions{Addrs: []string{addr}}
	if v, ok := redisSetups.Load(addr); ok {
		o = v.(*redis.UniversalOptions)
	}
	rdb := redis.NewUniversalClient(o)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", addr, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Header returns the value of header key in m, and whether it is present.
func Header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisNoCheck returns a client without checking the server answers.
func RedisNoCheck(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
}
