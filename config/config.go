// Package config loads consentd's YAML configuration: strictly parsed,
// overridable by environment variables (see env.go), defaults applied in
// one place (ApplyDefaults) and only to keys that were not written,
// validated before anything connects (Validate), errors naming the file and
// line (or the environment variable) a bad value came from. Secrets may come
// from files or environment variables and are never printed.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/lib/kafkax"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/internal/lib/yamlx"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/pipeline"
)

// Config is the whole of consentd.yaml.
type Config struct {
	Kafka            Kafka            `yaml:"kafka"`
	Redis            Redis            `yaml:"redis"`
	Cache            Cache            `yaml:"cache"`
	Admin            Admin            `yaml:"admin"`
	Pipeline         Pipeline         `yaml:"pipeline"`
	Pseudonymization Pseudonymization `yaml:"pseudonymization"`
	// Policy is the path of the policy file, relative to this file's
	// directory unless absolute. Required.
	Policy string `yaml:"policy"`
	Log    Log    `yaml:"log"`
	// Consent configures ingestion of consent records from Kafka.
	Consent ConsentSync `yaml:"consent"`
	// Identity says how far identity links are trusted.
	Identity Identity `yaml:"identity"`
	// ShadowPolicy is a candidate policy file decided beside Policy on
	// live events, writing nothing but metrics and a report of the
	// differences (see Shadow), relative to this file's directory unless
	// absolute. Default: none.
	ShadowPolicy string `yaml:"shadow_policy"`
	// Shadow tunes the shadow policy.
	Shadow Shadow `yaml:"shadow"`
}

// Shadow tunes the shadow policy (shadow_policy).
type Shadow struct {
	// Every decides the shadow policy on one event in Every: the shadow
	// costs a second decision per event it decides. Default: 1.
	Every int `yaml:"every"`
	// ReportTopic receives a sample of the differences (the event's
	// pseudonymous key, the output, the kinds and paths of the
	// differences; never a value), for consentd shadow report.
	// Default: none (metrics only).
	ReportTopic string `yaml:"report_topic"`
	// ReportPerSecond bounds the differences written to ReportTopic per
	// second (the rest are counted only). Default: 20.
	ReportPerSecond int `yaml:"report_per_second"`
}

// Identity is the trust model of identity links (anonymous id → user id):
// identify and alias events can be forged by anyone who can send events;
// the command line and the consent API are authenticated and audited.
type Identity struct {
	// LinkSources lists who may link: "events" (identify and alias
	// events) and "api" (consentd consent link and PUT /v1/identity).
	// Default: [events, api].
	LinkSources []string `yaml:"link_sources"`
	// EventsMayRelink lets an event re-point an anonymous id already
	// linked to a different user. Default: false (the first link stands;
	// the API re-points).
	EventsMayRelink bool `yaml:"events_may_relink"`
	// MaxLinkedIDs caps the anonymous ids events may link to one user; an
	// event beyond it is dead-lettered (too_many_linked_ids). Default: 100.
	MaxLinkedIDs *int `yaml:"max_linked_ids"`
}

// LinksFrom reports whether source ("events" or "api") may link.
func (i Identity) LinksFrom(source string) bool { return slices.Contains(i.LinkSources, source) }

// ConsentSync reads consent records (native, Segment or RudderStack
// format) from a compacted topic keyed by subject and applies them to
// Redis, newest version wins.
type ConsentSync struct {
	// Topic of consent records. Default: none (no ingestion).
	Topic string `yaml:"topic"`
	// GroupID of the ingesting consumer group. Default: <kafka.group_id>-consent.
	GroupID string `yaml:"group_id"`
	// ErasureRetention is how long an erasure is remembered (an erasure
	// marker in Redis): no change older than the erasure, by version or
	// by consent-topic record time, re-grants while it lasts. Set it to
	// at least the consent topic's retention (for a compacted topic: the
	// longest a replay may lag, plus delete.retention.ms). Default: 720h.
	ErasureRetention time.Duration `yaml:"erasure_retention"`
}

// Kafka says where raw events come from and where clean ones go.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string `yaml:"brokers"`
	// RawTopics are the topics of raw tracking events. Required.
	RawTopics []string `yaml:"raw_topics"`
	// GroupID is the consumer group. Default: consentd.
	GroupID string `yaml:"group_id"`
	// DeadLetterTopic receives events that cannot be decided, with the
	// reason in headers. Required.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// MaxMessageBytes is the largest raw event accepted; larger ones are
	// dead-lettered (reason too_large) without being parsed.
	// Default: 1048576 (1 MiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// SessionTimeout of the consumer group membership. Default: 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout bounds how long members take to rejoin. Default: 30s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// StartFrom is where a partition without a committed offset starts:
	// earliest or latest. Default: earliest.
	StartFrom string `yaml:"start_from"`
	// TLS to the brokers (every connection: readers, writers, topic checks,
	// the CLI). Default: off.
	TLS TLS `yaml:"tls"`
	// SASL authentication to the brokers. Default: none.
	SASL KafkaSASL `yaml:"sasl"`
}

// TLS configures the client side of TLS connections. Setting any field but
// enabled requires enabled: true, so that a forgotten switch never means
// plaintext.
type TLS struct {
	// Enabled turns TLS on. Default: false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the certificate authorities to trust,
	// relative to this file's directory unless absolute. Default: "" (the
	// system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its private key,
	// for servers that require mutual TLS. Both or neither. Default: none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server certificate must carry. Default: ""
	// (the host of each address dialled).
	ServerName string `yaml:"server_name"`
}

// SASL mechanisms for Kafka.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLAWSMSKIAM   = "AWS_MSK_IAM"
)

// KafkaSASL authenticates to the brokers.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM.
	// PLAIN requires kafka.tls (it sends the password as is). AWS_MSK_IAM
	// signs with the AWS default credential chain (environment, shared
	// files, web identity, container or instance role). Default: "" (none).
	Mechanism string `yaml:"mechanism"`
	// Username for PLAIN and SCRAM. Default: none.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newline ignored), relative
	// to this file's directory unless absolute. Default: none.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	// Exactly one of password_file and password_env for PLAIN and SCRAM.
	// Default: none.
	PasswordEnv string `yaml:"password_env"`
	// AWSRegion of the MSK cluster, for AWS_MSK_IAM. Default: "" (the
	// AWS_REGION environment variable).
	AWSRegion string `yaml:"aws_region"`

	// Password is resolved from PasswordFile or PasswordEnv by Load.
	Password Secret `yaml:"-"`
}

// Redis topologies.
const (
	RedisSingle   = "single"
	RedisSentinel = "sentinel"
	RedisCluster  = "cluster"
)

// Redis locates the consent store.
type Redis struct {
	// Mode is single (one node at addr), sentinel (the master that the
	// sentinels at addrs name master_name) or cluster (seed nodes at
	// addrs). Default: single.
	Mode string `yaml:"mode"`
	// Addr is host:port, for mode single. Default: 127.0.0.1:6379.
	Addr string `yaml:"addr"`
	// Addrs are the sentinels (mode sentinel) or cluster seed nodes (mode
	// cluster), host:port. Required in those modes.
	Addrs []string `yaml:"addrs"`
	// MasterName is the name the sentinels know the master by. Required in
	// mode sentinel.
	MasterName string `yaml:"master_name"`
	// SentinelUsername, SentinelPasswordFile and SentinelPasswordEnv
	// authenticate to the sentinels when they require it (at most one of
	// the two password sources). Default: none.
	SentinelUsername     string `yaml:"sentinel_username"`
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	SentinelPasswordEnv  string `yaml:"sentinel_password_env"`
	// DB is the database number; a cluster has only 0. Default: 0.
	DB int `yaml:"db"`
	// Username for ACL auth. Default: none.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newline ignored).
	// Default: none.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	// Default: none. At most one of password_file and password_env.
	PasswordEnv string `yaml:"password_env"`
	// KeyPrefix of consent hashes. Default: "consent:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout for one pipelined lookup. Default: 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// TLS to Redis (and to the sentinels). Default: off.
	TLS TLS `yaml:"tls"`

	// Password is resolved from PasswordFile or PasswordEnv by Load.
	Password Secret `yaml:"-"`
	// SentinelPassword is resolved from SentinelPasswordFile or
	// SentinelPasswordEnv by Load.
	SentinelPassword Secret `yaml:"-"`
}

// Cache is the in-process consent cache in front of Redis.
type Cache struct {
	// Size is the most subjects cached. 0 disables the cache.
	// Default: 100000.
	Size *int `yaml:"size"`
	// TTL is how long an answer (including "no record") is reused.
	// Default: 2s. Max: 1m.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes bounds, in bytes, the memory the cache accounts to its
	// entries (subjects, grant times, links and bookkeeping); past it,
	// entries not used lately are evicted as past Size. 0: no byte
	// bound, only Size. Default: 33554432 (32 MiB: some 2.5 times what
	// Size typical entries take, so Size binds unless records are
	// unusually large).
	MaxBytes *int `yaml:"max_bytes"`
}

// Admin configures the two HTTP listeners: probes, metrics and the log
// level on one, the consent API on another, so that exposing metrics to a
// scraper never exposes the API.
type Admin struct {
	// Listen is the address of /metrics, /healthz, /readyz and /loglevel.
	// Default: 127.0.0.1:9464.
	Listen string `yaml:"listen"`
	// APIListen is the address of the consent API (/v1/...), served only
	// when token_file is set. It must differ from listen.
	// Default: 127.0.0.1:9465.
	APIListen string `yaml:"api_listen"`
	// TokenFile holds the bearer tokens that the consent API
	// (/v1/consent/...), PUT /loglevel and a detailed /readyz require,
	// relative to this file's directory unless absolute: one token alone
	// (every scope), or lines "NAME:SCOPES:TOKEN" with scopes read (get,
	// export), write (set, revoke, erase, link) and admin (log level),
	// comma-separated; each call's audit line names its token. It must not be readable by others, nor by
	// its group when consentd owns it (mode 0600 or 0400; a root-owned
	// 0440 Kubernetes secret with fsGroup is accepted). Default: none (the
	// API is off).
	TokenFile string `yaml:"token_file"`
	// ReadTimeout bounds reading one request, body included. Default: 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response. Default: 35s (the consent
	// API gives a request 30s).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	// Default: 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TLS serves both listeners over TLS (1.2 at least). Default: off
	// (plain HTTP: keep the listeners on 127.0.0.1 or behind a policy).
	TLS ServerTLS `yaml:"tls"`

	// Token is read from TokenFile by Load when it holds one unnamed
	// token (every scope).
	Token Secret `yaml:"-"`
	// Tokens are read from TokenFile by Load (see AllTokens).
	Tokens []Token `yaml:"-"`
}

// ServerTLS is the TLS of the admin and API listeners.
type ServerTLS struct {
	// CertFile and KeyFile are the PEM server certificate (chain) and its
	// private key, relative to this file's directory unless absolute.
	// Both set turn TLS on.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, if set, requires every client to present a
	// certificate signed by one of these PEM authorities (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the listeners serve TLS.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// Pipeline tunes batching, retries and shutdown.
type Pipeline struct {
	// BatchSize is the most messages processed together per partition
	// (one consent round trip, one produce call). Default: 1000.
	BatchSize int `yaml:"batch_size"`
	// BatchLinger is the longest a partition waits to fill a batch once it
	// has one message; the batch goes sooner when the partition's writer
	// has nothing left to write (adaptive linger). Default: 5ms.
	BatchLinger time.Duration `yaml:"batch_linger"`
	// ProduceLinger is the producer's batch timeout (kafka-go's 1s
	// default would add a second to every write). Default: 2ms.
	ProduceLinger time.Duration `yaml:"produce_linger"`
	// CommitInterval is how often acknowledged offsets are committed.
	// Default: 500ms.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// RetryBackoffMin and RetryBackoffMax bound the backoff while Redis or
	// Kafka writes fail. Defaults: 100ms and 5s.
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// ShutdownGrace bounds the time to finish in-flight writes and commit
	// after SIGTERM. Default: 20s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// CopyHeaders names raw Kafka headers copied as they are to every clean
	// message (e.g. traceparent). Only list headers that carry no personal
	// data: their values are not inspected. Default: [] (none).
	CopyHeaders []string `yaml:"copy_headers"`
}

// Pseudonymization locates the HMAC keys (see policy.ParseKeyring).
type Pseudonymization struct {
	// KeyFile holds "KEYID:BASE64SECRET" lines, relative to this file's
	// directory unless absolute.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable with the same content.
	// Exactly one of key_file and key_env is required.
	KeyEnv string `yaml:"key_env"`
	// Retention is how long the clean topics keep records: retractions
	// and erasures go out under the current pseudonym key and under every
	// key retired less than this long ago (see policy.ParseKeyring). An
	// output's own retention (policy outputs[].retention) that is longer
	// wins. Default: 168h (7 days).
	Retention time.Duration `yaml:"retention"`
}

// DefaultErasureRetention is the default consent.erasure_retention: the
// consent store's.
const DefaultErasureRetention = redisstore.DefaultErasureRetention

// DefaultPseudonymRetention is the default pseudonymization.retention:
// the retraction writer's.
const DefaultPseudonymRetention = kafkaops.DefaultRetention

// Log configures zap.
type Log struct {
	// Level is debug, info, warn or error. Default: info. Debug logs may
	// name decision details but never subject ids or event bodies.
	Level string `yaml:"level"`
	// TimeFormat is how each log line's "ts" is written: epoch (seconds
	// since 1970 as a float, what log pipelines parse fastest) or
	// iso8601 (2026-12-07T04:15:30.123Z, for people reading the logs).
	// Default: epoch.
	TimeFormat string `yaml:"time_format"`
}

// Secret is a string that never prints.
type Secret string

func (Secret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the secret.
func (Secret) GoString() string { return "[redacted]" }

// Defaults. Settings that configure a component take that component's
// declared default (one source per setting); the rest are the
// configuration's own.
const (
	DefaultGroupID         = "consentd"
	DefaultMaxMessageBytes = pipeline.DefaultMaxMessageBytes
	DefaultRedisAddr       = "127.0.0.1:6379"
	DefaultKeyPrefix       = redisstore.DefaultKeyPrefix
	DefaultCacheSize       = consent.DefaultCacheSize
	DefaultCacheTTL        = consent.DefaultCacheTTL
	DefaultCacheMaxBytes   = consent.DefaultCacheMaxBytes
	DefaultAdminListen     = "127.0.0.1:9464"
	DefaultAPIListen       = "127.0.0.1:9465"
)

// ApplyDefaults fills every unset (zero) field with its documented
// default. Parse and Load apply defaults only to keys that were neither
// written in the file nor set in the environment.
func (c *Config) ApplyDefaults() { c.applyDefaults(func(string) bool { return false }) }

// applyDefaults fills the zero fields whose key is not set.
func (c *Config) applyDefaults(set func(key string) bool) {
	d := func(key string, apply func()) {
		if !set(key) {
			apply()
		}
	}
	d("kafka.group_id", func() { setDefault(&c.Kafka.GroupID, DefaultGroupID) })
	d("kafka.max_message_bytes", func() { setDefault(&c.Kafka.MaxMessageBytes, DefaultMaxMessageBytes) })
	d("kafka.session_timeout", func() { setDefault(&c.Kafka.SessionTimeout, pipeline.DefaultSessionTimeout) })
	d("kafka.rebalance_timeout", func() { setDefault(&c.Kafka.RebalanceTimeout, pipeline.DefaultRebalanceTimeout) })
	d("kafka.start_from", func() { setDefault(&c.Kafka.StartFrom, "earliest") })
	d("redis.mode", func() { setDefault(&c.Redis.Mode, RedisSingle) })
	if c.Redis.Mode == RedisSingle || c.Redis.Mode == "" {
		d("redis.addr", func() { setDefault(&c.Redis.Addr, DefaultRedisAddr) })
	}
	d("redis.key_prefix", func() { setDefault(&c.Redis.KeyPrefix, DefaultKeyPrefix) })
	d("redis.timeout", func() { setDefault(&c.Redis.Timeout, redisstore.DefaultTimeout) })
	if c.Cache.Size == nil {
		n := DefaultCacheSize
		c.Cache.Size = &n
	}
	d("cache.ttl", func() { setDefault(&c.Cache.TTL, DefaultCacheTTL) })
	if c.Cache.MaxBytes == nil {
		n := DefaultCacheMaxBytes
		c.Cache.MaxBytes = &n
	}
	d("admin.listen", func() { setDefault(&c.Admin.Listen, DefaultAdminListen) })
	d("admin.api_listen", func() { setDefault(&c.Admin.APIListen, DefaultAPIListen) })
	d("admin.read_timeout", func() { setDefault(&c.Admin.ReadTimeout, 10*time.Second) })
	d("admin.write_timeout", func() { setDefault(&c.Admin.WriteTimeout, 35*time.Second) })
	d("admin.idle_timeout", func() { setDefault(&c.Admin.IdleTimeout, 60*time.Second) })
	d("pipeline.batch_size", func() { setDefault(&c.Pipeline.BatchSize, pipeline.DefaultBatchSize) })
	d("pipeline.batch_linger", func() { setDefault(&c.Pipeline.BatchLinger, pipeline.DefaultBatchLinger) })
	d("pipeline.produce_linger", func() { setDefault(&c.Pipeline.ProduceLinger, kafkax.DefaultProduceLinger) })
	d("pipeline.commit_interval", func() { setDefault(&c.Pipeline.CommitInterval, pipeline.DefaultCommitInterval) })
	d("pipeline.retry_backoff_min", func() { setDefault(&c.Pipeline.RetryBackoffMin, retry.DefaultMin) })
	d("pipeline.retry_backoff_max", func() { setDefault(&c.Pipeline.RetryBackoffMax, retry.DefaultMax) })
	d("pipeline.shutdown_grace", func() { setDefault(&c.Pipeline.ShutdownGrace, pipeline.DefaultShutdownGrace) })
	d("pseudonymization.retention", func() { setDefault(&c.Pseudonymization.Retention, DefaultPseudonymRetention) })
	d("log.level", func() { setDefault(&c.Log.Level, "info") })
	d("log.time_format", func() { setDefault(&c.Log.TimeFormat, "epoch") })
	d("consent.group_id", func() { setDefault(&c.Consent.GroupID, c.Kafka.GroupID+"-consent") })
	d("consent.erasure_retention", func() { setDefault(&c.Consent.ErasureRetention, DefaultErasureRetention) })
	d("shadow.every", func() { setDefault(&c.Shadow.Every, 1) })
	d("shadow.report_per_second", func() { setDefault(&c.Shadow.ReportPerSecond, 20) })
	d("identity.link_sources", func() {
		if c.Identity.LinkSources == nil {
			c.Identity.LinkSources = []string{"events", "api"}
		}
	})
	d("identity.max_linked_ids", func() {
		if c.Identity.MaxLinkedIDs == nil {
			n := redisstore.DefaultMaxLinkedIDs
			c.Identity.MaxLinkedIDs = &n
		}
	})
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// fieldError is one invalid setting: the dotted key it concerns and what
// is wrong. Parse adds where the value was written.
type fieldError struct {
	key, msg string
}

func (e *fieldError) Error() string { return e.key + ": " + e.msg }

// Validate reports every invalid setting, joined. It does not connect to
// anything.
func (c *Config) Validate() error {
	errs := c.validate()
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

func (c *Config) validate() []*fieldError {
	var v fieldErrors
	c.validateKafka(&v)
	v.errs = append(v.errs, c.Kafka.TLS.validate("kafka.tls")...)
	v.errs = append(v.errs, c.Kafka.SASL.validate(c.Kafka.TLS.Enabled)...)
	v.errs = append(v.errs, c.Redis.validate()...)
	c.validateCacheAndAdmin(&v)
	c.validatePipeline(&v)
	c.validateConsentAndPolicy(&v)
	return v.errs
}

// fieldErrors collects the problems of one validation.
type fieldErrors struct{ errs []*fieldError }

func (v *fieldErrors) fail(key, format string, a ...any) {
	v.errs = append(v.errs, &fieldError{key: key, msg: fmt.Sprintf(format, a...)})
}

func (c *Config) validateKafka(v *fieldErrors) {
	fail := v.fail
	if len(c.Kafka.Brokers) == 0 {
		fail("kafka.brokers", "at least one broker is required")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			fail("kafka.brokers", "%q: want host:port", b)
		}
	}
	if len(c.Kafka.RawTopics) == 0 {
		fail("kafka.raw_topics", "at least one topic is required")
	}
	for _, t := range c.Kafka.RawTopics {
		if strings.TrimSpace(t) == "" {
			fail("kafka.raw_topics", "empty topic name")
		}
		if t == c.Kafka.DeadLetterTopic {
			fail("kafka.raw_topics", "%q is also the dead-letter topic", t)
		}
	}
	if strings.TrimSpace(c.Kafka.GroupID) == "" {
		fail("kafka.group_id", "must not be empty (omit the key for the default %q)", DefaultGroupID)
	}
	if c.Kafka.DeadLetterTopic == "" {
		fail("kafka.dead_letter_topic", "required (undecidable events must go somewhere)")
	}
	if c.Kafka.MaxMessageBytes < 64 {
		fail("kafka.max_message_bytes", "%d is too small (min 64)", c.Kafka.MaxMessageBytes)
	}
	if c.Kafka.SessionTimeout <= 0 {
		fail("kafka.session_timeout", "%s: must be positive", c.Kafka.SessionTimeout)
	}
	if c.Kafka.RebalanceTimeout <= 0 {
		fail("kafka.rebalance_timeout", "%s: must be positive", c.Kafka.RebalanceTimeout)
	}
	if c.Kafka.StartFrom != "earliest" && c.Kafka.StartFrom != "latest" {
		fail("kafka.start_from", "%q: want earliest or latest", c.Kafka.StartFrom)
	}
}

func (c *Config) validateCacheAndAdmin(v *fieldErrors) {
	fail := v.fail
	if c.Cache.Size != nil && *c.Cache.Size < 0 {
		fail("cache.size", "%d: must be >= 0", *c.Cache.Size)
	}
	if c.Cache.MaxBytes != nil && *c.Cache.MaxBytes < 0 {
		fail("cache.max_bytes", "%d: must be >= 0 (0: no byte bound)", *c.Cache.MaxBytes)
	}
	if c.Cache.TTL < 0 || c.Cache.TTL > time.Minute {
		fail("cache.ttl", "%s: want 0..1m (a long TTL delays revocations)", c.Cache.TTL)
	}
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
		fail("admin.listen", "%q: want host:port", c.Admin.Listen)
	}
	if _, port, err := net.SplitHostPort(c.Admin.APIListen); err != nil {
		fail("admin.api_listen", "%q: want host:port", c.Admin.APIListen)
	} else if c.Admin.APIListen == c.Admin.Listen && port != "0" {
		fail("admin.api_listen", "%q: must differ from admin.listen (the API is never served with the metrics)", c.Admin.APIListen)
	}
	if t := c.Admin.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		fail("admin.tls", "set both cert_file and key_file, or neither")
	} else if t.ClientCAFile != "" && !t.Enabled() {
		fail("admin.tls.client_ca_file", "needs cert_file and key_file (TLS on)")
	}
	for key, d := range map[string]time.Duration{"admin.read_timeout": c.Admin.ReadTimeout, "admin.write_timeout": c.Admin.WriteTimeout, "admin.idle_timeout": c.Admin.IdleTimeout} {
		if d <= 0 {
			fail(key, "%s: must be positive", d)
		}
	}
}

func (c *Config) validatePipeline(v *fieldErrors) {
	fail := v.fail
	p := c.Pipeline
	if p.BatchSize < 1 || p.BatchSize > 100000 {
		fail("pipeline.batch_size", "%d: want 1..100000", p.BatchSize)
	}
	if p.BatchLinger < 0 {
		fail("pipeline.batch_linger", "%s: must be >= 0", p.BatchLinger)
	}
	if p.ProduceLinger <= 0 {
		// kafka-go reads a zero batch timeout as 1s.
		fail("pipeline.produce_linger", "%s: must be positive (the producer would wait 1s)", p.ProduceLinger)
	}
	if p.CommitInterval <= 0 {
		fail("pipeline.commit_interval", "%s: must be positive", p.CommitInterval)
	}
	if p.ProduceLinger >= time.Second {
		fail("pipeline.produce_linger", "%s: must be under 1s", p.ProduceLinger)
	}
	if p.RetryBackoffMin <= 0 || p.RetryBackoffMax < p.RetryBackoffMin {
		fail("pipeline", "want 0 < retry_backoff_min <= retry_backoff_max")
	}
	if p.ShutdownGrace <= 0 {
		fail("pipeline.shutdown_grace", "must be positive")
	}
	for _, h := range p.CopyHeaders {
		if strings.TrimSpace(h) == "" || strings.HasPrefix(strings.ToLower(h), "consentd-") {
			fail("pipeline.copy_headers", "%q: want a header name that does not start with consentd- (those are consentd's own)", h)
		}
	}
}

func (c *Config) validateConsentAndPolicy(v *fieldErrors) {
	fail := v.fail
	if t := c.Consent.Topic; t != "" {
		if t == c.Kafka.DeadLetterTopic || slices.Contains(c.Kafka.RawTopics, t) {
			fail("consent.topic", "%q is also a raw or dead-letter topic", t)
		}
		if c.Consent.GroupID == c.Kafka.GroupID {
			fail("consent.group_id", "must differ from kafka.group_id")
		}
	}
	for _, src := range c.Identity.LinkSources {
		if src != "events" && src != "api" {
			fail("identity.link_sources", "%q: want events or api", src)
		}
	}
	if c.Identity.MaxLinkedIDs != nil && *c.Identity.MaxLinkedIDs <= 0 {
		fail("identity.max_linked_ids", "must be positive")
	}
	if c.Consent.ErasureRetention <= 0 {
		fail("consent.erasure_retention", "must be positive (how long an erasure is remembered)")
	}
	if strings.TrimSpace(c.Consent.GroupID) == "" {
		fail("consent.group_id", "must not be empty (omit the key for the default <kafka.group_id>-consent)")
	}
	if c.Policy == "" {
		fail("policy", "required (path of the policy file)")
	}
	if c.ShadowPolicy != "" && c.ShadowPolicy == c.Policy {
		fail("shadow_policy", "is the live policy itself")
	}
	if c.Shadow.Every < 1 {
		fail("shadow.every", "%d: must be at least 1", c.Shadow.Every)
	}
	if c.Shadow.ReportPerSecond < 1 {
		fail("shadow.report_per_second", "%d: must be at least 1", c.Shadow.ReportPerSecond)
	}
	if t := c.Shadow.ReportTopic; t != "" && (t == c.Kafka.DeadLetterTopic || slices.Contains(c.Kafka.RawTopics, t) || t == c.Consent.Topic) {
		fail("shadow.report_topic", "%q is also a raw, dead-letter or consent topic", t)
	}
	if (c.Pseudonymization.KeyFile == "") == (c.Pseudonymization.KeyEnv == "") {
		fail("pseudonymization", "set exactly one of key_file and key_env")
	}
	if c.Pseudonymization.Retention <= 0 {
		fail("pseudonymization.retention", "must be positive (the clean topics' retention)")
	}
	switch c.Log.TimeFormat {
	case "epoch", "iso8601":
	default:
		fail("log.time_format", "%q: want epoch or iso8601", c.Log.TimeFormat)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		fail("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
}

func (t TLS) validate(key string) []*fieldError {
	var errs []*fieldError
	fail := func(k, format string, a ...any) {
		errs = append(errs, &fieldError{key: key + k, msg: fmt.Sprintf(format, a...)})
	}
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		fail(".enabled", "TLS settings are given but TLS is off; set enabled: true")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		fail("", "set both cert_file and key_file, or neither")
	}
	return errs
}

func (s KafkaSASL) validate(tlsOn bool) []*fieldError {
	var errs []*fieldError
	fail := func(k, format string, a ...any) {
		errs = append(errs, &fieldError{key: "kafka.sasl" + k, msg: fmt.Sprintf(format, a...)})
	}
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.PasswordFile != "" || s.PasswordEnv != "" || s.AWSRegion != "" {
			fail(".mechanism", "SASL settings are given but no mechanism; want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			fail(".username", "required for %s", s.Mechanism)
		}
		if (s.PasswordFile == "") == (s.PasswordEnv == "") {
			fail("", "set exactly one of password_file and password_env for %s", s.Mechanism)
		}
		if s.Mechanism == SASLPlain && !tlsOn {
			fail(".mechanism", "PLAIN sends the password as is; it needs kafka.tls.enabled: true")
		}
		if s.AWSRegion != "" {
			fail(".aws_region", "only for AWS_MSK_IAM")
		}
	case SASLAWSMSKIAM:
		if s.Username != "" || s.PasswordFile != "" || s.PasswordEnv != "" {
			fail("", "AWS_MSK_IAM takes no username or password (it uses the AWS credential chain)")
		}
		if !tlsOn {
			fail(".mechanism", "MSK's IAM listener needs kafka.tls.enabled: true")
		}
	default:
		fail(".mechanism", "%q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", s.Mechanism)
	}
	return errs
}

func (r Redis) validate() []*fieldError {
	var errs []*fieldError
	fail := func(key, format string, a ...any) {
		errs = append(errs, &fieldError{key: key, msg: fmt.Sprintf(format, a...)})
	}
	switch r.Mode {
	case RedisSingle:
		if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			fail("redis.addr", "%q: want host:port", r.Addr)
		}
		if len(r.Addrs) > 0 || r.MasterName != "" {
			fail("redis.mode", "addrs and master_name need mode sentinel or cluster")
		}
	case RedisSentinel, RedisCluster:
		if r.Addr != "" {
			fail("redis.addr", "mode %s connects to redis.addrs; remove addr", r.Mode)
		}
		if len(r.Addrs) == 0 {
			fail("redis.addrs", "at least one address is required in mode %s", r.Mode)
		}
		for _, a := range r.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				fail("redis.addrs", "%q: want host:port", a)
			}
		}
		if r.Mode == RedisSentinel && r.MasterName == "" {
			fail("redis.master_name", "required in mode sentinel")
		}
		if r.Mode == RedisCluster {
			if r.MasterName != "" {
				fail("redis.master_name", "only for mode sentinel")
			}
			if r.DB != 0 {
				fail("redis.db", "%d: a cluster has only database 0", r.DB)
			}
		}
	default:
		fail("redis.mode", "%q: want single, sentinel or cluster", r.Mode)
	}
	if r.Mode != RedisSentinel && (r.SentinelUsername != "" || r.SentinelPasswordFile != "" || r.SentinelPasswordEnv != "") {
		fail("redis", "sentinel_username and sentinel_password_* need mode sentinel")
	}
	if r.DB < 0 {
		fail("redis.db", "%d: must be >= 0", r.DB)
	}
	if r.PasswordFile != "" && r.PasswordEnv != "" {
		fail("redis", "set at most one of password_file and password_env")
	}
	if r.SentinelPasswordFile != "" && r.SentinelPasswordEnv != "" {
		fail("redis", "set at most one of sentinel_password_file and sentinel_password_env")
	}
	if r.KeyPrefix == "" {
		fail("redis.key_prefix", "must not be empty (omit the key for the default %q)", DefaultKeyPrefix)
	}
	if r.Timeout <= 0 {
		fail("redis.timeout", "must be positive")
	}
	errs = append(errs, r.TLS.validate("redis.tls")...)
	return errs
}

// Parse strictly decodes data (from file name), applies defaults and
// validates. Relative paths are resolved against the file's directory.
// The environment is not read (see Load and ParseEnv); secrets are not
// read (see Load).
func Parse(name string, data []byte) (*Config, error) {
	return ParseEnv(name, data, func(string) (string, bool) { return "", false })
}

// ParseEnv is Parse with the overrides that lookup (os.LookupEnv in Load)
// finds for the variables listed by EnvVars. Overrides win over the file;
// relative paths from the environment are left relative to the working
// directory.
func ParseEnv(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var c Config
	if err := yamlx.Decode(name, data, &c); err != nil {
		if strings.Contains(err.Error(), "pseudonymization.per_output:") {
			err = fmt.Errorf("%w\n(per_output is a policy setting: set pseudonymization: {per_output: true} in the policy file)", err)
		}
		return nil, err
	}
	written := writtenKeys(data)
	fromEnv, err := c.applyEnv(lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid environment:\n%w", name, err)
	}
	c.applyDefaults(func(key string) bool {
		_, inFile := written[key]
		_, inEnv := fromEnv[key]
		return inFile || inEnv
	})
	dir := filepath.Dir(name)
	for _, p := range c.paths() {
		if _, ok := fromEnv[p.key]; !ok {
			*p.value = resolve(dir, *p.value)
		}
	}
	if errs := c.validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = locate(name, e, written, fromEnv)
		}
		return nil, fmt.Errorf("%s: invalid config:\n%s", name, strings.Join(msgs, "\n"))
	}
	return &c, nil
}

// locate prefixes e with where its value came from: the environment
// variable, the file and line of the key (or of its nearest written
// parent), or the file alone for a missing key.
func locate(name string, e *fieldError, written map[string]int, fromEnv map[string]string) string {
	if v, ok := fromEnv[e.key]; ok {
		return fmt.Sprintf("$%s: %s", v, e)
	}
	for k := e.key; k != ""; {
		if line, ok := written[k]; ok {
			return fmt.Sprintf("%s:%d: %s", name, line, e)
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return fmt.Sprintf("%s: %s", name, e)
}

type pathField struct {
	key   string
	value *string
}

// paths are the settings that name files.
func (c *Config) paths() []pathField {
	return []pathField{
		{"policy", &c.Policy},
		{"shadow_policy", &c.ShadowPolicy},
		{"pseudonymization.key_file", &c.Pseudonymization.KeyFile},
		{"redis.password_file", &c.Redis.PasswordFile},
		{"redis.sentinel_password_file", &c.Redis.SentinelPasswordFile},
		{"redis.tls.ca_file", &c.Redis.TLS.CAFile},
		{"redis.tls.cert_file", &c.Redis.TLS.CertFile},
		{"redis.tls.key_file", &c.Redis.TLS.KeyFile},
		{"kafka.tls.ca_file", &c.Kafka.TLS.CAFile},
		{"kafka.tls.cert_file", &c.Kafka.TLS.CertFile},
		{"kafka.tls.key_file", &c.Kafka.TLS.KeyFile},
		{"kafka.sasl.password_file", &c.Kafka.SASL.PasswordFile},
		{"admin.token_file", &c.Admin.TokenFile},
		{"admin.tls.cert_file", &c.Admin.TLS.CertFile},
		{"admin.tls.key_file", &c.Admin.TLS.KeyFile},
		{"admin.tls.client_ca_file", &c.Admin.TLS.ClientCAFile},
	}
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Load reads the file at path, applies the environment's overrides, parses
// it and resolves secrets. A variable starting with EnvPrefix that names
// no setting is an error (see NonSettingEnv).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := ParseEnv(path, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := c.checkEnvNames(os.Environ()); err != nil {
		return nil, fmt.Errorf("%s: invalid environment:\n%w", path, err)
	}
	if err := c.resolveSecrets(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) resolveSecrets() error {
	for setting, path := range map[string]string{"kafka.tls.key_file": c.Kafka.TLS.KeyFile, "redis.tls.key_file": c.Redis.TLS.KeyFile, "admin.tls.key_file": c.Admin.TLS.KeyFile} {
		if path != "" {
			if err := CheckSecretFile(setting, path); err != nil {
				return err
			}
		}
	}
	if c.Admin.TokenFile != "" {
		if err := CheckSecretFile("admin.token_file", c.Admin.TokenFile); err != nil {
			return err
		}
		b, err := os.ReadFile(c.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		toks, err := parseTokens(string(b))
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		c.Admin.Tokens = toks
		if len(toks) == 1 && toks[0].Name == "admin" {
			c.Admin.Token = toks[0].Secret
		}
	}
	var err error
	if c.Redis.Password, err = readSecret("redis.password", c.Redis.PasswordFile, c.Redis.PasswordEnv); err != nil {
		return err
	}
	if c.Redis.SentinelPassword, err = readSecret("redis.sentinel_password", c.Redis.SentinelPasswordFile, c.Redis.SentinelPasswordEnv); err != nil {
		return err
	}
	if c.Kafka.SASL.Password, err = readSecret("kafka.sasl.password", c.Kafka.SASL.PasswordFile, c.Kafka.SASL.PasswordEnv); err != nil {
		return err
	}
	return nil
}

// CheckSecretFile refuses a secret file (token, password, pseudonymization
// key, TLS private key) that others can read, or that its group can read
// when consentd owns it (mode 0600 or 0400 would do). A group-readable
// file owned by someone else is how Kubernetes mounts secrets for a
// non-root user (root-owned, group fsGroup, mode 0440), so it is
// accepted. setting names the file in the error.
func CheckSecretFile(setting, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	perm := fi.Mode().Perm()
	groupOK := false
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		groupOK = true
	}
	if perm&0o007 != 0 || (perm&0o070 != 0 && !groupOK) {
		return fmt.Errorf("%s: %s has mode %04o: a secret must not be readable by others (chmod 600)", setting, path, perm)
	}
	return nil
}

// readSecret reads a password from file (trailing newline ignored) or from
// the environment variable env; neither set means none.
func readSecret(key, file, env string) (Secret, error) {
	switch {
	case file != "":
		if err := CheckSecretFile(key+"_file", file); err != nil {
			return "", err
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", key, err)
		}
		return Secret(strings.TrimRight(string(b), "\r\n")), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s_env: environment variable %s is not set", key, env)
		}
		return Secret(v), nil
	}
	return "", nil
}

// KeyMaterial returns the pseudonymization key file's contents and a name
// for error messages, from key_file or key_env.
func (c *Config) KeyMaterial() (name string, data []byte, err error) {
	if c.Pseudonymization.KeyEnv != "" {
		v, ok := os.LookupEnv(c.Pseudonymization.KeyEnv)
		if !ok {
			return "", nil, fmt.Errorf("pseudonymization.key_env: environment variable %s is not set", c.Pseudonymization.KeyEnv)
		}
		return "$" + c.Pseudonymization.KeyEnv, []byte(v), nil
	}
	if err := CheckSecretFile("pseudonymization.key_file", c.Pseudonymization.KeyFile); err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile(c.Pseudonymization.KeyFile)
	if err != nil {
		return "", nil, fmt.Errorf("pseudonymization.key_file: %w", err)
	}
	return c.Pseudonymization.KeyFile, b, nil
}
