package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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
		DialFunc:      k.dial,
		TLS:           k.tls,
		SASLMechanism: k.mechanism,
	}
}

// dial opens every TCP connection to a broker (TLS goes on top): a
// connection that answers with something other than Kafka fails at its
// first bytes (see NotKafkaError).
func (k *Kafka) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: DialTimeout}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{addr: addr, err: err}
	}
	return &sniffConn{Conn: c, addr: addr, frames: k.tls == nil}, nil
}

// dialError is a failed dial of addr, as the client asked for it (a
// bootstrap address, or one the cluster advertises).
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Transport returns a new transport for kafka.Writer.Transport and
// kafka.Client.Transport. Each has its own connection pool and metadata
// cache; call CloseIdleConnections when done with a short-lived one.
func (k *Kafka) Transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    ClientID,
		DialTimeout: DialTimeout,
		Dial:        k.dial,
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
// error that says what is wrong (see Explain). A broker that has not
// answered after a second is asked, on a connection of its own, whether
// it is an HTTP server (which waits silently for a request line that a
// Kafka request never sends): a wrong port then fails at once instead of
// after the request timeout.
func (k *Kafka) Check(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	quiet := time.AfterFunc(silenceBeforeProbe, func() {
		for _, b := range k.brokers {
			if err := probeHTTP(b, k.tls); err != nil {
				cancel(err)
				return
			}
		}
	})
	defer quiet.Stop()
	c := k.Client(DialTimeout)
	defer CloseClient(c)
	_, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	var nk *NotKafkaError
	if cause := context.Cause(ctx); errors.As(cause, &nk) {
		err = cause
	}
	if err != nil {
		return k.Explain(err)
	}
	return nil
}

// silenceBeforeProbe is how long Check waits for the brokers before
// asking whether they are HTTP servers; a broker answers metadata in
// milliseconds.
const silenceBeforeProbe = time.Second

// probeHTTP sends an HTTP request to addr and returns a NotKafkaError if
// the answer is HTTP. A Kafka broker closes the connection (the request
// reads as an oversized frame).
func probeHTTP(addr string, tc *tls.Config) error {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: probeTimeout}
	if tc != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: tc}).Dial("tcp", addr)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := io.WriteString(c, "HEAD / HTTP/1.0\r\n\r\n"); err != nil {
		return nil
	}
	head := make([]byte, 5)
	if _, err := io.ReadFull(c, head); err != nil || string(head) != "HTTP/" {
		return nil
	}
	return &NotKafkaError{Addr: addr, HTTP: true, Head: head[:4]}
}

// Explain wraps an error from a kafka-go call made with this connection
// with the setting at fault and what it most likely means: nothing listens
// at a broker address, the address is another service's port, the broker's
// certificate is not trusted, the SASL credentials were refused, the port
// does or does not speak TLS. Errors it does not recognise are only
// prefixed with the connection's description. The wrapped error stays
// reachable with errors.Is/As.
func (k *Kafka) Explain(err error) error {
	if err == nil {
		return nil
	}
	peer := fmt.Sprint(k.brokers)
	var nk *NotKafkaError
	if errors.As(err, &nk) {
		switch {
		case nk.HTTP:
			return fmt.Errorf("kafka.brokers: %s answered like an HTTP server, not Kafka (a web or admin port?): %w", nk.Addr, err)
		case nk.TLS:
			return fmt.Errorf("kafka.tls: %s answered in TLS: a TLS or SASL_SSL listener (turn kafka.tls on, with kafka.sasl if it is SASL_SSL): %w", nk.Addr, err)
		}
		return fmt.Errorf("kafka.brokers: %s answered with something that is not Kafka (another service's port?): %w", nk.Addr, err)
	}
	var de *dialError
	if errors.As(err, &de) && !slices.Contains(k.brokers, de.addr) {
		return fmt.Errorf("kafka: cannot reach broker %s, which the cluster advertises (its advertised.listeners must be reachable from here; kafka.brokers only bootstraps): %w", de.addr, err)
	}
	dialled := ""
	if de != nil {
		dialled = de.addr
	}
	if e := explainDial("kafka.brokers", "Kafka", dialled, err); e != nil {
		return e
	}
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
	case k.tls == nil && closedByPeer(err):
		return fmt.Errorf("kafka: %s closed the connection (a TLS or SASL listener? see kafka.tls and kafka.sasl): %w", peer, err)
	case k.tls != nil && closedByPeer(err):
		return k.explainClosedTLS(err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("kafka: %s did not answer in time (%s): %w", peer, k, err)
	}
	return fmt.Errorf("kafka (%s): %w", k, err)
}

// explainClosedTLS says why a broker closed a TLS connection: a TLS
// handshake of its own tells a plaintext listener (which closes during
// the handshake) from a TLS listener that closed after it (SASL).
func (k *Kafka) explainClosedTLS(err error) error {
	addr := k.brokers[0]
	perr := probeTLS(addr, k.tls)
	switch {
	case perr != nil && (closedByPeer(perr) || isRecordHeader(perr)):
		return fmt.Errorf("kafka.tls: %s closed the connection during the TLS handshake: a plaintext listener? (turn kafka.tls off, or use the port of the SSL or SASL_SSL listener; kafka.sasl is sent only after the handshake): %w", addr, err)
	case perr == nil && k.mechanism != nil:
		return fmt.Errorf("kafka.sasl: %s speaks TLS but closed the connection: is SASL %s enabled on this listener? (an SSL listener without SASL? see kafka.sasl.mechanism): %w", addr, k.saslName, err)
	case perr == nil:
		return fmt.Errorf("kafka.sasl: %s speaks TLS but closed the connection: does the listener require SASL (kafka.sasl)?: %w", addr, err)
	}
	return fmt.Errorf("kafka.tls: %s closed the connection (TLS handshake: %v): %w", addr, perr, err)
}

// probeTLS makes one TLS handshake with addr, bounded by a few seconds.
func probeTLS(addr string, c *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	conn, err := (&tls.Dialer{NetDialer: &net.Dialer{Timeout: probeTimeout}, Config: c}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// probeTimeout bounds the connections made to explain an error.
const probeTimeout = 3 * time.Second

// closedByPeer: the peer closed or reset the connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func isRecordHeader(err error) bool {
	var header tls.RecordHeaderError
	return errors.As(err, &header)
}

// explainDial names the setting key when err is a failure to resolve or
// reach an address (what is the service expected there; dialled, if set,
// is the address as configured), or returns nil.
func explainDial(key, what, dialled string, err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("%s: cannot resolve %s (a typo in the host name?): %w", key, dns.Name, err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return nil
	}
	addr := dialled
	if addr == "" && op.Addr != nil {
		addr = op.Addr.String()
	}
	if addr == "" {
		addr = "the address"
	}
	cause, hint := "", "is "+what+" running there?"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "connection refused"
	case op.Timeout():
		cause, hint = "timed out", "a firewall, or a wrong address?"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		cause, hint = "no route to it", "a wrong address?"
	default:
		cause = op.Err.Error()
	}
	return fmt.Errorf("%s: cannot reach %s (%s): %s: %w", key, addr, cause, hint, err)
}
