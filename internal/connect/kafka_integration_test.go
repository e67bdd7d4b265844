package connect

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
)

// saslEnv is the SASL_SSL listener of scripts/services.sh.
type saslEnv struct {
	addr, ca, clientCert, clientKey string
	users                           map[string][2]string // mechanism -> user, password
}

func needSASL(t *testing.T) saslEnv {
	v := need(t, "CONSENTD_TEST_KAFKA_SASL", "CONSENTD_TEST_TLS_CA", "CONSENTD_TEST_TLS_CLIENT_CERT", "CONSENTD_TEST_TLS_CLIENT_KEY",
		"CONSENTD_TEST_KAFKA_PLAIN_USER", "CONSENTD_TEST_KAFKA_PLAIN_PASSWORD",
		"CONSENTD_TEST_KAFKA_SCRAM256_USER", "CONSENTD_TEST_KAFKA_SCRAM256_PASSWORD",
		"CONSENTD_TEST_KAFKA_SCRAM512_USER", "CONSENTD_TEST_KAFKA_SCRAM512_PASSWORD")
	return saslEnv{
		addr: v["CONSENTD_TEST_KAFKA_SASL"], ca: v["CONSENTD_TEST_TLS_CA"],
		clientCert: v["CONSENTD_TEST_TLS_CLIENT_CERT"], clientKey: v["CONSENTD_TEST_TLS_CLIENT_KEY"],
		users: map[string][2]string{
			config.SASLPlain:       {v["CONSENTD_TEST_KAFKA_PLAIN_USER"], v["CONSENTD_TEST_KAFKA_PLAIN_PASSWORD"]},
			config.SASLScramSHA256: {v["CONSENTD_TEST_KAFKA_SCRAM256_USER"], v["CONSENTD_TEST_KAFKA_SCRAM256_PASSWORD"]},
			config.SASLScramSHA512: {v["CONSENTD_TEST_KAFKA_SCRAM512_USER"], v["CONSENTD_TEST_KAFKA_SCRAM512_PASSWORD"]},
		},
	}
}

func (e saslEnv) config(mechanism string) config.Kafka {
	u := e.users[mechanism]
	return config.Kafka{
		Brokers: []string{e.addr},
		TLS:     config.TLS{Enabled: true, CAFile: e.ca},
		SASL:    config.KafkaSASL{Mechanism: mechanism, Username: u[0], Password: config.Secret(u[1])},
	}
}

func newKafka(t *testing.T, cfg config.Kafka) *Kafka {
	t.Helper()
	k, err := NewKafka(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func createTopic(t *testing.T, k *Kafka, topic string, partitions int) {
	t.Helper()
	c := k.Client(10 * time.Second)
	defer CloseClient(c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(k.Explain(err))
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatal(err)
	}
}

func newWriter(k *Kafka, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(k.Brokers()...), Topic: topic, Transport: k.Transport(),
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond,
		MaxAttempts: 2, WriteBackoffMin: 10 * time.Millisecond, WriteBackoffMax: 50 * time.Millisecond,
	}
}

// consume reads n messages from topic in consumer group group through the
// dialer of k, committing them.
func consume(t *testing.T, k *Kafka, topic, group string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: k.Brokers(), GroupID: group, Topic: topic, Dialer: k.Dialer(),
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond,
		SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, k.Explain(err))
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(k.Explain(err))
		}
		out = append(out, m)
	}
	return out
}

// TestIntegrationKafkaSASLSSL produces and consumes (consumer group,
// committed offsets) over the broker's SASL_SSL listener with each
// mechanism, and with a client certificate as well.
func TestIntegrationKafkaSASLSSL(t *testing.T) {
	e := needSASL(t)
	cases := []struct {
		name      string
		mechanism string
		mutualTLS bool
	}{
		{"PLAIN", config.SASLPlain, false},
		{"SCRAM-SHA-256", config.SASLScramSHA256, false},
		{"SCRAM-SHA-512", config.SASLScramSHA512, false},
		{"SCRAM-SHA-512 with a client certificate", config.SASLScramSHA512, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(tc.mechanism)
			if tc.mutualTLS {
				cfg.TLS.CertFile, cfg.TLS.KeyFile = e.clientCert, e.clientKey
			}
			k := newKafka(t, cfg)
			if err := k.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			topic := unique("connect-sasl")
			createTopic(t, k, topic, 2)
			w := newWriter(k, topic)
			defer w.Close()
			want := map[string]string{}
			var msgs []kafka.Message
			for i := range 20 {
				key, val := unique("k"), unique("v")
				want[key] = val
				_ = i
				msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(val)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(k.Explain(err))
			}
			got := consume(t, k, topic, unique("connect-group"), len(msgs))
			for _, m := range got {
				if want[string(m.Key)] != string(m.Value) {
					t.Errorf("message %s=%s was not produced", m.Key, m.Value)
				}
				delete(want, string(m.Key))
			}
			if len(want) != 0 {
				t.Errorf("%d messages not consumed", len(want))
			}
		})
	}
}

// TestIntegrationKafkaRefusedCredentials proves that a wrong password or
// an untrusted certificate fails with an error that says so, and that
// nothing is written meanwhile.
func TestIntegrationKafkaRefusedCredentials(t *testing.T) {
	e := needSASL(t)
	good := newKafka(t, e.config(config.SASLScramSHA512))
	topic := unique("connect-refused")
	createTopic(t, good, topic, 1)

	wrongPassword := e.config(config.SASLScramSHA512)
	wrongPassword.SASL.Password = "not-the-password"
	wrongPlain := e.config(config.SASLPlain)
	wrongPlain.SASL.Password = "not-the-password"
	untrusted := e.config(config.SASLScramSHA512)
	untrusted.TLS.CAFile = otherCA(t)
	systemRoots := e.config(config.SASLScramSHA512)
	systemRoots.TLS.CAFile = ""
	wrongName := e.config(config.SASLScramSHA512)
	wrongName.TLS.ServerName = "kafka.example.com"
	noTLS := e.config(config.SASLScramSHA512)
	noTLS.TLS = config.TLS{}

	cases := []struct {
		name  string
		cfg   config.Kafka
		is    func(error) bool
		words string
	}{
		{"wrong SCRAM password", wrongPassword, func(err error) bool { return errors.Is(err, kafka.SASLAuthenticationFailed) }, `SCRAM-SHA-512 authentication as "consentd-scram512" refused`},
		{"wrong PLAIN password", wrongPlain, func(err error) bool { return errors.Is(err, kafka.SASLAuthenticationFailed) }, `PLAIN authentication as "consentd-plain" refused`},
		{"certificate from another CA", untrusted, isUnknownAuthority, "is not signed by a trusted authority"},
		{"system roots by default", systemRoots, isUnknownAuthority, "is not signed by a trusted authority"},
		{"certificate for another name", wrongName, func(err error) bool { var h x509.HostnameError; return errors.As(err, &h) }, "not valid for the name dialled"},
		{"plaintext client on the TLS listener", noTLS, func(err error) bool { var nk *NotKafkaError; return errors.As(err, &nk) && nk.TLS },
			"kafka.tls: " + e.addr + " answered in TLS: a TLS or SASL_SSL listener (turn kafka.tls on, with kafka.sasl if it is SASL_SSL)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKafka(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := k.Check(ctx)
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Check: %v\nwant an error saying %q", err, tc.words)
			}
			t.Logf("refused: %v", err)
			if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), e.users[config.SASLScramSHA512][1]) {
				t.Fatalf("the error prints a password: %v", err)
			}
			w := newWriter(k, topic)
			defer w.Close()
			werr := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte(tc.name)})
			if werr == nil || !tc.is(werr) {
				t.Fatalf("write: %v, want the same refusal", werr)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers(), Topic: topic, Partition: 0, Dialer: k.Dialer(), MaxWait: 100 * time.Millisecond})
			defer r.Close()
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			defer rcancel()
			if m, rerr := r.ReadMessage(rctx); rerr == nil {
				t.Fatalf("read %q without valid credentials", m.Value)
			}
		})
	}

	// nothing reached the topic: it holds no message at all
	c := good.Client(10 * time.Second)
	defer CloseClient(c)
	offs, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if po := offs.Topics[topic]; len(po) != 1 || po[0].LastOffset != 0 {
		t.Fatalf("the topic's end offset is %+v, want 0 (nothing written)", po)
	}
}

// TestIntegrationKafkaTLSOnPlaintextListener: TLS and SASL settings
// against the plaintext listener name kafka.tls and the likely cause, not
// a bare EOF.
func TestIntegrationKafkaTLSOnPlaintextListener(t *testing.T) {
	e := needSASL(t)
	plain := need(t, "CONSENTD_TEST_KAFKA")["CONSENTD_TEST_KAFKA"]
	cfg := e.config(config.SASLScramSHA512)
	cfg.Brokers = []string{plain}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := newKafka(t, cfg).Check(ctx)
	want := "kafka.tls: " + plain + " closed the connection during the TLS handshake: a plaintext listener? "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Check: %v\nwant %s...", err, want)
	}
}

func isUnknownAuthority(err error) bool {
	var u x509.UnknownAuthorityError
	return errors.As(err, &u)
}
