// Package app wires a loaded configuration into a running consentd: Redis
// consent store behind the local cache, policy, Kafka writer, consumer group
// runner and the admin HTTP server. cmd/consentd, the demo and the
// integration tests all start consentd through here.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/ingest"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

// LoadPolicy loads the keyring named by cfg and compiles the policy with it.
func LoadPolicy(cfg *config.Config) (*policy.Policy, error) {
	name, data, err := cfg.KeyMaterial()
	if err != nil {
		return nil, err
	}
	keys, err := policy.ParseKeyring(name, data)
	if err != nil {
		return nil, err
	}
	return policy.Load(cfg.Policy, keys)
}

// App is a wired consentd instance.
type App struct {
	Config   *config.Config
	Policy   *policy.Policy
	Metrics  *metrics.Metrics
	Stats    *pipeline.Stats // typed totals of acknowledged batches
	Health   *pipeline.Health
	Log      *zap.Logger
	Redis    redis.UniversalClient
	Kafka    *connect.Kafka
	Cache    *consent.Cache
	Producer *kafka.Writer

	level  *zap.AtomicLevel // nil: the log level cannot be changed at run time
	runner *pipeline.Runner
	store  *redisstore.Store
	admin  *http.Server
	fence  *barrierMember // revocation barrier (barrier.go)
	ln     net.Listener
	api    *http.Server // nil when the consent API is off
	apiLn  net.Listener
}

// Option changes how New wires an App.
type Option func(*App)

// WithLogLevel lets PUT /loglevel change level, the level of the logger
// given to New.
func WithLogLevel(level zap.AtomicLevel) Option {
	return func(a *App) { a.level = &level }
}

// New builds an App. Nothing is fetched until Run (which checks that
// Kafka and Redis accept the connection settings before anything flows);
// the admin ports are bound here so that a busy port fails fast.
func New(cfg *config.Config, pol *policy.Policy, log *zap.Logger, opts ...Option) (*App, error) {
	routeRedisLogs(log)
	m := metrics.New()
	m.Info.WithLabelValues(pol.Version).Set(1)
	registerBuildInfo(m.Registry)
	stats := &pipeline.Stats{}
	hooks := pipeline.Tee(m, stats)
	h := pipeline.NewHealth(m, map[string]string{pipeline.CondGroup: "not joined yet"})
	kctx, kcancel := context.WithTimeout(context.Background(), connect.DialTimeout)
	kc, err := connect.NewKafka(kctx, cfg.Kafka)
	kcancel()
	if err != nil {
		return nil, err
	}
	rdb, err := NewRedis(cfg)
	if err != nil {
		return nil, err
	}
	store := redisstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, storeHooks{m, stats})
	cache := consent.NewCache(store, *cfg.Cache.Size, cfg.Cache.TTL, storeHooks{m, stats})
	producer := NewProducer(cfg, kc)
	a := &App{Config: cfg, Policy: pol, Metrics: m, Stats: stats, Health: h, Log: log, Redis: rdb, Kafka: kc, Cache: cache, Producer: producer, store: store}
	for _, o := range opts {
		o(a)
	}
	linker := redisstore.NewUpdater(rdb, cfg.Redis.KeyPrefix)
	newProcessor := func() pipeline.BatchProcessor {
		return pipeline.NewProcessor(pipeline.ProcessorConfig{
			Policy:          pol,
			Store:           consent.Linked{Store: cache},
			Changes:         cache,
			Linker:          linker,
			DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
			MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
			Backoff:         backoff(cfg),
			Health:          h,
			Log:             log,
		})
	}
	rc := RunnerConfig(cfg, newProcessor, producer, hooks, h, log)
	rc.Dialer = kc.Dialer()
	a.fence = newBarrierMember(rdb, cfg.Redis.KeyPrefix, cache, h, log) // revocation barrier (barrier.go)
	a.fence.changes = a.Changes
	rc.Fence = a.fence.fence
	runner, err := pipeline.NewRunner(rc)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	a.runner = runner
	if err := a.listen(); err != nil {
		rdb.Close()
		return nil, err
	}
	return a, nil
}

// storeHooks sends the consent store's observations to the metrics and
// the typed stats.
type storeHooks struct {
	m *metrics.Metrics
	s *pipeline.Stats
}

func (h storeHooks) OnLookup(subjects, hits int) {
	h.m.OnLookup(subjects, hits)
	h.s.OnLookup(subjects, hits)
}
func (h storeHooks) OnRoundTrip(d time.Duration, err error) {
	h.m.OnRoundTrip(d, err)
	h.s.OnRoundTrip(d, err)
}
func (h storeHooks) OnInvalidRecord() { h.m.OnInvalidRecord() }

// backoff is the retry policy every part of consentd uses.
func backoff(cfg *config.Config) retry.Backoff {
	return retry.Backoff{Min: cfg.Pipeline.RetryBackoffMin, Max: cfg.Pipeline.RetryBackoffMax}
}

// NewRedis returns a client for the consent store described by cfg (one
// node, Sentinel or Cluster, with TLS and ACL credentials; see
// connect.NewRedis). It does not retry by itself: the pipeline retries
// with its own backoff.
func NewRedis(cfg *config.Config) (redis.UniversalClient, error) {
	return connect.NewRedis(cfg.Redis)
}

// MaxWriteBytes is the largest message consentd writes: what a topic
// with Kafka's default max.message.bytes (1048588) accepts, less the
// record batch overhead.
const MaxWriteBytes = pipeline.DefaultMaxWriteBytes

// NewProducer returns the producer for clean messages, dead letters and
// retractions, connected through k (TLS, SASL): acks from all in-sync
// replicas, murmur2 partitioning by key (as Java clients do), a short
// batch timeout instead of kafka-go's 1s, and batches no larger than a
// topic accepts, so that one large message never makes a batch of others
// fail.
func NewProducer(cfg *config.Config, k *connect.Kafka) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(k.Brokers()...),
		Transport:              k.Transport(),
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           cfg.Pipeline.ProduceLinger,
		BatchSize:              2 * cfg.Pipeline.BatchSize,
		BatchBytes:             MaxWriteBytes,
		MaxAttempts:            3,
		AllowAutoTopicCreation: false,
	}
}

// RunnerConfig maps cfg onto the pipeline runner's settings.
func RunnerConfig(cfg *config.Config, newProcessor func() pipeline.BatchProcessor, p pipeline.Producer, hooks pipeline.Hooks, h *pipeline.Health, log *zap.Logger) pipeline.RunnerConfig {
	startOffset := kafka.FirstOffset
	if cfg.Kafka.StartFrom == "latest" {
		startOffset = kafka.LastOffset
	}
	return pipeline.RunnerConfig{
		Brokers:          cfg.Kafka.Brokers,
		Topics:           cfg.Kafka.RawTopics,
		GroupID:          cfg.Kafka.GroupID,
		SessionTimeout:   cfg.Kafka.SessionTimeout,
		RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		StartOffset:      startOffset,
		MaxFetchBytes:    max(pipeline.DefaultMaxFetchBytes, 2*cfg.Kafka.MaxMessageBytes),
		BatchSize:        cfg.Pipeline.BatchSize,
		BatchLinger:      cfg.Pipeline.BatchLinger,
		CommitInterval:   cfg.Pipeline.CommitInterval,
		Backoff:          backoff(cfg),
		ShutdownGrace:    cfg.Pipeline.ShutdownGrace,
		DeadLetterTopic:  cfg.Kafka.DeadLetterTopic,
		MaxWriteBytes:    MaxWriteBytes,
		CopyHeaders:      cfg.Pipeline.CopyHeaders,
		NewProcessor:     newProcessor,
		Producer:         p,
		Hooks:            hooks,
		Health:           h,
		Log:              log,
	}
}

// AdminAddr is the address the admin server (probes, metrics, log level)
// listens on.
func (a *App) AdminAddr() string { return a.ln.Addr().String() }

// APIAddr is the address the consent API listens on, or "" when the API
// is off (no admin.token_file).
func (a *App) APIAddr() string {
	if a.apiLn == nil {
		return ""
	}
	return a.apiLn.Addr().String()
}

// AdminHandler serves /metrics, /healthz, /readyz and /loglevel.
func (a *App) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := a.Health.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+strings.Join(why, "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	a.logLevelHandler(mux)
	return mux
}

// APIHandler serves the consent API (see consentAPI).
func (a *App) APIHandler() http.Handler {
	mux := http.NewServeMux()
	a.consentAPI(mux)
	return mux
}

// CheckTopics verifies that every raw, clean and dead-letter topic exists,
// so that a typo fails at start-up instead of as endless write retries,
// and sizes the writes to the smallest max.message.bytes of the topics
// written. Call it before Run starts the pipeline (Run does).
func (a *App) CheckTopics(ctx context.Context) error {
	topics := append([]string{a.Config.Kafka.DeadLetterTopic}, a.Config.Kafka.RawTopics...)
	if a.Config.Consent.Topic != "" {
		topics = append(topics, a.Config.Consent.Topic)
	}
	for _, o := range a.Policy.Outputs {
		topics = append(topics, o.Topic)
	}
	// A client with a transport of its own: a shared transport answers
	// from cached metadata that may predate recently created topics.
	client := a.Kafka.Client(10 * time.Second)
	defer connect.CloseClient(client)
	// Only "unknown topic" is fatal; other per-topic errors (a leader not
	// elected yet) pass and are retried by the pipeline.
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("reading topic metadata: %w", a.Kafka.Explain(err))
	}
	var missing []string
	for _, t := range meta.Topics {
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("topics do not exist (consentd does not create topics): %s", strings.Join(missing, ", "))
	}
	// Size messages and batches to what the written topics accept, so
	// that no write is refused for its size.
	written := []string{a.Config.Kafka.DeadLetterTopic}
	for _, o := range a.Policy.Outputs {
		written = append(written, o.Topic)
	}
	limit, err := writeLimit(ctx, client, written)
	if err != nil {
		return err
	}
	a.Producer.BatchBytes = int64(limit)
	a.runner.SetMaxWriteBytes(limit)
	return nil
}

// Check connects to Redis (every master of a cluster) and to the brokers
// and verifies the topics, so that a wrong password, an untrusted
// certificate or a missing topic fails at start-up with a message that
// says so, before any event is read.
func (a *App) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*connect.DialTimeout)
	defer cancel()
	if err := connect.PingRedis(ctx, a.Redis); err != nil {
		return fmt.Errorf("connecting to the consent store: %w", err)
	}
	if err := a.Kafka.Check(ctx); err != nil {
		return fmt.Errorf("connecting to Kafka: %w", err)
	}
	return a.CheckTopics(ctx)
}

// Run checks the connections and topics, serves the admin endpoints and
// runs the pipeline until ctx ends, then drains, commits and closes
// everything.
func (a *App) Run(ctx context.Context) error {
	if err := a.Check(ctx); err != nil {
		a.Producer.Close()
		a.Redis.Close()
		a.closeListeners()
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go redisstore.WatchInvalidations(watchCtx, a.Redis, a.Config.Redis.KeyPrefix, a.Cache, max(time.Second, 2*a.Config.Redis.Timeout), a.Log)
	go watchStore(watchCtx, a.store, a.Health, StoreCheckInterval)
	barrierDone := make(chan struct{})
	go func() { defer close(barrierDone); a.fence.run(watchCtx) }()
	syncDone := make(chan struct{})
	if a.Config.Consent.Topic != "" {
		go func() {
			defer close(syncDone)
			a.runConsentSync(ctx)
		}()
	} else {
		close(syncDone)
	}
	a.serve()
	a.Log.Info("consentd running",
		zap.Strings("raw_topics", a.Config.Kafka.RawTopics),
		zap.String("group", a.Config.Kafka.GroupID),
		zap.String("kafka", a.Kafka.String()),
		zap.String("policy_version", a.Policy.Version),
		zap.Int("outputs", len(a.Policy.Outputs)),
		zap.String("admin", a.AdminAddr()),
		zap.String("api", a.APIAddr()))
	err := a.runner.Run(ctx)
	<-syncDone
	stopWatch()
	<-barrierDone
	werr := a.Producer.Close()
	a.Redis.Close()
	a.shutdownServers()
	a.Log.Info("consentd stopped")
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("closing writer: %w", werr)
	}
	return nil
}

// Changes returns the consent change service: retractions through the
// instance's producer, changes stored in Redis.
func (a *App) Changes() *changes.Service {
	return &changes.Service{
		Store:     redisstore.NewUpdater(a.Redis, a.Config.Redis.KeyPrefix),
		Current:   redisstore.New(a.Redis, a.Config.Redis.KeyPrefix, a.Config.Redis.Timeout, nil),
		Retractor: &pipeline.Retractor{Policy: a.Policy, Producer: a.Producer, Backoff: backoff(a.Config), Log: a.Log, Retention: a.Config.Pseudonymization.Retention},
		Purposes:  a.Policy.Purposes,
		Barrier:   redisstore.NewBarrier(a.Redis, a.Config.Redis.KeyPrefix),
	}
}

// runConsentSync applies the consent topic to Redis until ctx ends.
func (a *App) runConsentSync(ctx context.Context) {
	cfg := a.Config
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     a.Kafka.Brokers(),
		Dialer:      a.Kafka.Dialer(),
		GroupID:     cfg.Consent.GroupID,
		Topic:       cfg.Consent.Topic,
		MinBytes:    1,
		MaxBytes:    pipeline.DefaultMaxFetchBytes,
		MaxWait:     100 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
		ErrorLogger: pipeline.KafkaErrorLogger(a.Log, "kafka consent reader"),
	})
	defer r.Close()
	s := &pipeline.ConsentSyncer{
		Reader:          r,
		Changes:         a.Changes(),
		DeadLetter:      a.Producer,
		DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		PolicyVersion:   a.Policy.Version,
		Mapping:         ingest.Mapping{Purposes: a.Policy.Purposes, Categories: a.Policy.ConsentCategories, CMP: a.Policy.CMP},
		Backoff:         backoff(cfg),
		Hooks:           a.Metrics,
		Log:             a.Log,
	}
	a.Log.Info("consent ingestion running", zap.String("topic", cfg.Consent.Topic), zap.String("group", cfg.Consent.GroupID))
	_ = s.Run(ctx)
}
