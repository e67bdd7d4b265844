package connect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/consentd/consentd/config"
)

// listen serves each connection of a local listener with serve and
// returns its address.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpServer answers HTTP and waits silently for a request line.
func httpServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// fakeRedis answers a plaintext PING like Redis and says nothing to
// anything else (a TLS ClientHello has no line end to wait for).
func fakeRedis(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && strings.HasPrefix(line, "PING") {
		c.Write([]byte("+PONG\r\n"))
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 1))
}

// TestErrorsNameTheSetting holds the text of each connection error: the
// setting at fault first, then the likely cause, then the error itself.
func TestErrorsNameTheSetting(t *testing.T) {
	bg := context.Background()
	kafkaCheck := func(cfg config.Kafka) error {
		k, err := NewKafka(bg, cfg)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(bg, 20*time.Second)
		defer cancel()
		return k.Check(ctx)
	}
	redisPing := func(cfg config.Redis) error {
		cfg.Timeout = 300 * time.Millisecond
		rdb, err := NewRedis(cfg)
		if err != nil {
			return err
		}
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(bg, 20*time.Second)
		defer cancel()
		return PingRedis(ctx, rdb)
	}
	mr := miniredis.RunT(t)
	mr.RequireUserAuth("consentd", "right")
	tlsOn := config.TLS{Enabled: true}

	refused := closedPort(t)
	web := httpServer(t)
	http400 := listen(t, func(c net.Conn) { c.Read(make([]byte, 64)); c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) })
	other := listen(t, func(c net.Conn) { c.Read(make([]byte, 64)); c.Write([]byte("-ERR unknown command\r\n")) })
	tlsAlert := listen(t, func(c net.Conn) { c.Read(make([]byte, 64)); c.Write([]byte("\x15\x03\x03\x00\x02\x02\x32")) })
	closesOnTLS := listen(t, func(c net.Conn) { c.Read(make([]byte, 64)) })
	redisPlain := listen(t, fakeRedis)

	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"kafka refused", func() error { return kafkaCheck(config.Kafka{Brokers: []string{refused}}) },
			"kafka.brokers: cannot reach " + refused + " (connection refused): is Kafka running there?: "},
		{"kafka host unknown", func() error { return kafkaCheck(config.Kafka{Brokers: []string{"no-such-host.invalid:9092"}}) },
			"kafka.brokers: cannot resolve no-such-host.invalid (a typo in the host name?): "},
		{"http port as a broker", func() error { return kafkaCheck(config.Kafka{Brokers: []string{web}}) },
			"kafka.brokers: " + web + " answered like an HTTP server, not Kafka (a web or admin port?): "},
		{"http port that answers at once", func() error { return kafkaCheck(config.Kafka{Brokers: []string{http400}}) },
			"kafka.brokers: " + http400 + " answered like an HTTP server, not Kafka (a web or admin port?): "},
		{"another protocol as a broker", func() error { return kafkaCheck(config.Kafka{Brokers: []string{other}}) },
			"kafka.brokers: " + other + " answered with something that is not Kafka (another service's port?): "},
		{"plaintext against a TLS listener", func() error { return kafkaCheck(config.Kafka{Brokers: []string{tlsAlert}}) },
			"kafka.tls: " + tlsAlert + " answered in TLS: a TLS or SASL_SSL listener (turn kafka.tls on, with kafka.sasl if it is SASL_SSL): "},
		{"kafka tls against a plaintext port", func() error {
			return kafkaCheck(config.Kafka{Brokers: []string{closesOnTLS}, TLS: tlsOn, SASL: config.KafkaSASL{Mechanism: config.SASLPlain, Username: "u", Password: "p"}})
		}, "kafka.tls: " + closesOnTLS + " closed the connection during the TLS handshake: a plaintext listener? (turn kafka.tls off, or use the port of the SSL or SASL_SSL listener; kafka.sasl is sent only after the handshake): "},
		{"redis refused", func() error { return redisPing(config.Redis{Addr: refused}) },
			"redis.addr: cannot reach " + refused + " (connection refused): is Redis running there?: "},
		{"cluster seed refused", func() error { return redisPing(config.Redis{Mode: config.RedisCluster, Addrs: []string{refused}}) },
			"redis.addrs: cannot reach " + refused + " (connection refused): is a Redis Cluster node running there?: "},
		{"sentinel refused", func() error {
			return redisPing(config.Redis{Mode: config.RedisSentinel, Addrs: []string{refused}, MasterName: "m"})
		}, "redis.addrs: cannot reach "},
		{"redis wrong password", func() error { return redisPing(config.Redis{Addr: mr.Addr(), Username: "consentd", Password: "wrong"}) },
			"redis.username, redis.password_file: " + mr.Addr() + ` refused user "consentd" and its password (a wrong password, or a user that does not exist or is disabled): WRONGPASS`},
		{"redis no password", func() error { return redisPing(config.Redis{Addr: mr.Addr()}) },
			"redis.password_file: " + mr.Addr() + " requires a password and none is set (redis.password_file or redis.password_env): NOAUTH"},
		{"redis tls against a plaintext port", func() error { return redisPing(config.Redis{Addr: redisPlain, TLS: tlsOn}) },
			"redis.tls: " + redisPlain + " did not speak TLS: it answers plaintext Redis (turn redis.tls off, or use the TLS port): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got  %v\nwant %s...", err, tc.want)
			}
			if errors.Unwrap(err) == nil {
				t.Fatalf("%v wraps nothing", err)
			}
		})
	}
}

// TestExplainAdvertisedBroker: a broker the cluster advertises that
// cannot be reached is not blamed on kafka.brokers.
func TestExplainAdvertisedBroker(t *testing.T) {
	k, err := NewKafka(context.Background(), config.Kafka{Brokers: []string{"bootstrap:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	got := k.Explain(fmt.Errorf("fetching: %w", &dialError{addr: "kafka-0.internal:9092", err: refused})).Error()
	want := "kafka: cannot reach broker kafka-0.internal:9092, which the cluster advertises (its advertised.listeners must be reachable from here; kafka.brokers only bootstraps): fetching: dial tcp: connection refused"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = k.Explain(&dialError{addr: "bootstrap:9092", err: refused}).Error()
	if !strings.HasPrefix(got, "kafka.brokers: cannot reach bootstrap:9092 (connection refused): is Kafka running there?") {
		t.Fatalf("bootstrap: %s", got)
	}
}
