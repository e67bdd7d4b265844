package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/consentd/consentd/config"
)

// ClientID is the client id consentd sends to the brokers.
const ClientID = "consentd"

// DialTimeout bounds one connection attempt, TLS and SASL included.
const DialTimeout = 10 * time.Second

// Kafka holds what every connection to the brokers needs: the bootstrap
// addresses, the TLS configuration and the SASL mechanism. It is safe for
// concurrent use; each Dialer, Transport or Client it returns is new.
type Kafka struct {
	brokers   []string
	tls       *tls.Config
	mechanism sasl.Mechanism
	saslName  string // the mechanism's name, for messages
	username  string // for messages; never the password
}

// NewKafka resolves cfg's TLS and SASL settings (reading the CA and client
// certificate files). cfg.SASL.Password must have been resolved (config.Load
// does). ctx bounds loading AWS credentials for AWS_MSK_IAM.
func NewKafka(ctx context.Context, cfg config.Kafka) (*Kafka, error) {
	k := &Kafka{brokers: cfg.Brokers, saslName: cfg.SASL.Mechanism, username: cfg.SASL.Username}
	var err error
	if k.tls, err = TLSConfig("kafka.tls", cfg.TLS); err != nil {
		return nil, err
	}
	s := cfg.SASL
	switch s.Mechanism {
	case "":
	case config.SASLPlain:
		k.mechanism = plain.Mechanism{Username: s.Username, Password: string(s.Password)}
	case config.SASLScramSHA256, config.SASLScramSHA512:
		algo := scram.SHA256
		if s.Mechanism == config.SASLScramSHA512 {
			algo = scram.SHA512
		}
		if k.mechanism, err = scram.Mechanism(algo, s.Username, string(s.Password)); err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
	case config.SASLAWSMSKIAM:
		if k.mechanism, err = mskIAM(ctx, s.AWSRegion); err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not supported", s.Mechanism)
	}
	if k.mechanism != nil && (s.Mechanism == config.SASLPlain || s.Mechanism == config.SASLScramSHA256 || s.Mechanism == config.SASLScramSHA512) && s.Password == "" {
		return nil, fmt.Errorf("kafka.sasl: the password for %s is empty", s.Mechanism)
	}
	return k, nil
}

// Brokers are the bootstrap addresses.
func (k *Kafka) Brokers() []string { return k.brokers }

// String describes the connection without secrets.
func (k *Kafka) String() string {
	s := fmt.Sprintf("kafka %v", k.brokers)
	if k.tls != nil {
		s += " tls"
	}
	if k.mechanism != nil {
		s += " sasl " + k.saslName
		if k.username != "" {
			s += " as " + k.username
		}
	}
	return s
}

// GoString keeps %#v from printing the mechanism's password.
func (k *Kafka) GoString() string { return k.String() }

// Dialer returns a new dialer for kafka.ReaderConfig.Dialer (partition
// readers and consumer groups, whose coordination goes through it too) and
// for kafka.Dialer.DialContext / DialLeader.
func (k *Kafka) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      ClientID,
		Timeout:       DialTimeout,
		DualStack:     true,
		TLS:           k.tls,
		SASLMechanism: k.mechanism,
	}
}

// Transport returns a new transport for kafka.Writer.Transport and
// kafka.Client.Transport. Each has its own connection pool and metadata
// cache; call CloseIdleConnections when done with a short-lived one.
func (k *Kafka) Transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    ClientID,
		DialTimeout: DialTimeout,
		TLS:         k.tls,
		SASL:        k.mechanism,
	}
}

// Client returns an admin/metadata client on a transport of its own (so
// that its metadata is never stale from another user), with the given
// timeout per request. Close it with CloseClient.
func (k *Kafka) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.brokers...), Timeout: timeout, Transport: k.Transport()}
}

// CloseClient closes the idle connections of a client made by Client.
func CloseClient(c *kafka.Client) {
	if tr, ok := c.Transport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// Check connects to the bootstrap brokers (TLS handshake and SASL
// authentication included) and reads the cluster metadata, returning an
// error that says what is wrong (see Explain).
func (k *Kafka) Check(ctx context.Context) error {
	c := k.Client(DialTimeout)
	defer CloseClient(c)
	_, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return k.Explain(err)
	}
	return nil
}

// Explain wraps an error from a kafka-go call made with this connection
// with what it most likely means: the broker's certificate is not trusted,
// the SASL credentials were refused, the port does not speak TLS. Errors it
// does not recognise are only prefixed with the connection's description.
// The wrapped error stays reachable with errors.Is/As.
func (k *Kafka) Explain(err error) error {
	if err == nil {
		return nil
	}
	peer := fmt.Sprint(k.brokers)
	if e := explainTLS("kafka.tls", "broker "+peer, err); e != err {
		return e
	}
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("kafka.sasl: %s authentication as %q refused by %s (wrong username or password?): %w", k.saslName, k.username, peer, err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("kafka.sasl.mechanism: %s is not enabled on the listener at %s: %w", k.saslName, peer, err)
	case errors.Is(err, kafka.IllegalSASLState) && k.mechanism == nil:
		return fmt.Errorf("kafka.sasl: the listener at %s requires SASL authentication: %w", peer, err)
	case k.tls == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("kafka: %s closed the connection (a TLS or SASL listener? see kafka.tls and kafka.sasl): %w", peer, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("kafka: %s did not answer in time (%s): %w", peer, k, err)
	}
	return fmt.Errorf("kafka (%s): %w", k, err)
}
