// Package config loads consentd's YAML configuration: strictly parsed,
// defaults applied in one place (ApplyDefaults), validated before anything
// connects (Validate). Secrets may come from files or environment variables
// and are never printed.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/consentd/consentd/internal/yamlx"
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
}

// ConsentSync reads consent records (native, Segment or RudderStack
// format) from a compacted topic keyed by subject and applies them to
// Redis, newest version wins.
type ConsentSync struct {
	// Topic of consent records. Default: none (no ingestion).
	Topic string `yaml:"topic"`
	// GroupID of the ingesting consumer group. Default: <kafka.group_id>-consent.
	GroupID string `yaml:"group_id"`
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
}

// Redis locates the consent store.
type Redis struct {
	// Addr is host:port. Default: 127.0.0.1:6379.
	Addr string `yaml:"addr"`
	// DB is the database number. Default: 0.
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

	// Password is resolved from PasswordFile or PasswordEnv by Load.
	Password Secret `yaml:"-"`
}

// Cache is the in-process consent cache in front of Redis.
type Cache struct {
	// Size is the most subjects cached. 0 disables the cache.
	// Default: 100000.
	Size *int `yaml:"size"`
	// TTL is how long an answer (including "no record") is reused.
	// Default: 2s. Max: 1m.
	TTL time.Duration `yaml:"ttl"`
}

// Admin is the HTTP server for /metrics, /healthz and /readyz.
type Admin struct {
	// Listen address. Default: 127.0.0.1:9464.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token that the consent API
	// (/v1/consent/...) requires, relative to this file's directory unless
	// absolute. Default: none (the API is off).
	TokenFile string `yaml:"token_file"`

	// Token is read from TokenFile by Load.
	Token Secret `yaml:"-"`
}

// Pipeline tunes batching, retries and shutdown.
type Pipeline struct {
	// BatchSize is the most messages processed together per partition
	// (one consent round trip, one produce call). Default: 1000.
	BatchSize int `yaml:"batch_size"`
	// BatchLinger is how long a partition waits to fill a batch once it has
	// one message. Default: 5ms.
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
}

// Pseudonymization locates the HMAC keys (see policy.ParseKeyring).
type Pseudonymization struct {
	// KeyFile holds "KEYID:BASE64SECRET" lines, relative to this file's
	// directory unless absolute.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable with the same content.
	// Exactly one of key_file and key_env is required.
	KeyEnv string `yaml:"key_env"`
}

// Log configures zap.
type Log struct {
	// Level is debug, info, warn or error. Default: info. Debug logs may
	// name decision details but never subject ids or event bodies.
	Level string `yaml:"level"`
}

// Secret is a string that never prints.
type Secret string

func (Secret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the secret.
func (Secret) GoString() string { return "[redacted]" }

// Defaults.
const (
	DefaultGroupID         = "consentd"
	DefaultMaxMessageBytes = 1 << 20
	DefaultRedisAddr       = "127.0.0.1:6379"
	DefaultKeyPrefix       = "consent:"
	DefaultCacheSize       = 100000
	DefaultCacheTTL        = 2 * time.Second
	DefaultAdminListen     = "127.0.0.1:9464"
)

// ApplyDefaults fills every unset field with its documented default.
func (c *Config) ApplyDefaults() {
	setDefault(&c.Kafka.GroupID, DefaultGroupID)
	setDefault(&c.Kafka.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&c.Kafka.SessionTimeout, 10*time.Second)
	setDefault(&c.Kafka.RebalanceTimeout, 30*time.Second)
	setDefault(&c.Kafka.StartFrom, "earliest")
	setDefault(&c.Redis.Addr, DefaultRedisAddr)
	setDefault(&c.Redis.KeyPrefix, DefaultKeyPrefix)
	setDefault(&c.Redis.Timeout, 500*time.Millisecond)
	if c.Cache.Size == nil {
		n := DefaultCacheSize
		c.Cache.Size = &n
	}
	setDefault(&c.Cache.TTL, DefaultCacheTTL)
	setDefault(&c.Admin.Listen, DefaultAdminListen)
	setDefault(&c.Pipeline.BatchSize, 1000)
	setDefault(&c.Pipeline.BatchLinger, 5*time.Millisecond)
	setDefault(&c.Pipeline.ProduceLinger, 2*time.Millisecond)
	setDefault(&c.Pipeline.CommitInterval, 500*time.Millisecond)
	setDefault(&c.Pipeline.RetryBackoffMin, 100*time.Millisecond)
	setDefault(&c.Pipeline.RetryBackoffMax, 5*time.Second)
	setDefault(&c.Pipeline.ShutdownGrace, 20*time.Second)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Consent.GroupID, c.Kafka.GroupID+"-consent")
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every invalid setting, joined. It does not connect to
// anything.
func (c *Config) Validate() error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Kafka.Brokers) == 0 {
		fail("kafka.brokers: at least one broker is required")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			fail("kafka.brokers: %q: want host:port", b)
		}
	}
	if len(c.Kafka.RawTopics) == 0 {
		fail("kafka.raw_topics: at least one topic is required")
	}
	for _, t := range c.Kafka.RawTopics {
		if strings.TrimSpace(t) == "" {
			fail("kafka.raw_topics: empty topic name")
		}
		if t == c.Kafka.DeadLetterTopic {
			fail("kafka.raw_topics: %q is also the dead-letter topic", t)
		}
	}
	if c.Kafka.DeadLetterTopic == "" {
		fail("kafka.dead_letter_topic: required (undecidable events must go somewhere)")
	}
	if c.Kafka.MaxMessageBytes < 64 {
		fail("kafka.max_message_bytes: %d is too small (min 64)", c.Kafka.MaxMessageBytes)
	}
	if c.Kafka.StartFrom != "earliest" && c.Kafka.StartFrom != "latest" {
		fail("kafka.start_from: %q: want earliest or latest", c.Kafka.StartFrom)
	}
	if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		fail("redis.addr: %q: want host:port", c.Redis.Addr)
	}
	if c.Redis.DB < 0 {
		fail("redis.db: %d: must be >= 0", c.Redis.DB)
	}
	if c.Redis.PasswordFile != "" && c.Redis.PasswordEnv != "" {
		fail("redis: set at most one of password_file and password_env")
	}
	if c.Redis.Timeout <= 0 {
		fail("redis.timeout: must be positive")
	}
	if c.Cache.Size != nil && *c.Cache.Size < 0 {
		fail("cache.size: %d: must be >= 0", *c.Cache.Size)
	}
	if c.Cache.TTL < 0 || c.Cache.TTL > time.Minute {
		fail("cache.ttl: %s: want 0..1m (a long TTL delays revocations)", c.Cache.TTL)
	}
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
		fail("admin.listen: %q: want host:port", c.Admin.Listen)
	}
	p := c.Pipeline
	if p.BatchSize < 1 || p.BatchSize > 100000 {
		fail("pipeline.batch_size: %d: want 1..100000", p.BatchSize)
	}
	if p.BatchLinger < 0 || p.ProduceLinger < 0 || p.CommitInterval <= 0 {
		fail("pipeline: batch_linger and produce_linger must be >= 0, commit_interval > 0")
	}
	if p.ProduceLinger >= time.Second {
		fail("pipeline.produce_linger: %s: must be under 1s", p.ProduceLinger)
	}
	if p.RetryBackoffMin <= 0 || p.RetryBackoffMax < p.RetryBackoffMin {
		fail("pipeline: want 0 < retry_backoff_min <= retry_backoff_max")
	}
	if p.ShutdownGrace <= 0 {
		fail("pipeline.shutdown_grace: must be positive")
	}
	if t := c.Consent.Topic; t != "" {
		if t == c.Kafka.DeadLetterTopic || slices.Contains(c.Kafka.RawTopics, t) {
			fail("consent.topic: %q is also a raw or dead-letter topic", t)
		}
		if c.Consent.GroupID == c.Kafka.GroupID {
			fail("consent.group_id: must differ from kafka.group_id")
		}
	}
	if c.Policy == "" {
		fail("policy: required (path of the policy file)")
	}
	if (c.Pseudonymization.KeyFile == "") == (c.Pseudonymization.KeyEnv == "") {
		fail("pseudonymization: set exactly one of key_file and key_env")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		fail("log.level: %q: want debug, info, warn or error", c.Log.Level)
	}
	return errors.Join(errs...)
}

// Parse strictly decodes data (from file name), applies defaults and
// validates. Relative paths are resolved against the file's directory.
// Secrets are not read; see Load.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	if err := yamlx.Decode(name, data, &c); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	dir := filepath.Dir(name)
	c.Policy = resolve(dir, c.Policy)
	c.Pseudonymization.KeyFile = resolve(dir, c.Pseudonymization.KeyFile)
	c.Redis.PasswordFile = resolve(dir, c.Redis.PasswordFile)
	c.Admin.TokenFile = resolve(dir, c.Admin.TokenFile)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: invalid config:\n%w", name, err)
	}
	return &c, nil
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Load reads the file at path, parses it and resolves secrets.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := c.resolveSecrets(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) resolveSecrets() error {
	if c.Admin.TokenFile != "" {
		b, err := os.ReadFile(c.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return fmt.Errorf("admin.token_file: the token must be at least 16 characters")
		}
		c.Admin.Token = Secret(tok)
	}
	switch {
	case c.Redis.PasswordFile != "":
		b, err := os.ReadFile(c.Redis.PasswordFile)
		if err != nil {
			return fmt.Errorf("redis.password_file: %w", err)
		}
		c.Redis.Password = Secret(strings.TrimRight(string(b), "\r\n"))
	case c.Redis.PasswordEnv != "":
		v, ok := os.LookupEnv(c.Redis.PasswordEnv)
		if !ok {
			return fmt.Errorf("redis.password_env: environment variable %s is not set", c.Redis.PasswordEnv)
		}
		c.Redis.Password = Secret(v)
	}
	return nil
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
	b, err := os.ReadFile(c.Pseudonymization.KeyFile)
	if err != nil {
		return "", nil, fmt.Errorf("pseudonymization.key_file: %w", err)
	}
	return c.Pseudonymization.KeyFile, b, nil
}
