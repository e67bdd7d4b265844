// Package app is consentd's composition root: it turns a loaded
// configuration into a running instance and holds no business rule of its
// own. New builds every part (the Redis consent store behind the local
// cache, the policy, the Kafka producer, the engine, the revocation
// barrier member, the consent-topic sync, the change service and the
// HTTP listeners) and connects their hooks; Run starts them and stops
// them in order. cmd/consentd (run, consent, dlq, redis), the demo, the
// benchmarks and the integration tests all start consentd through here.
//
// Where each concern lives: Kafka read and written by the engine,
// package pipeline; other Kafka traffic, package kafkaops; Redis,
// consent/redisstore; decisions, package policy; the revocation
// protocol, package barrier; data-subject requests and the consent API,
// consent/dsr; metrics, internal/metrics.
//
// Must not import Prometheus itself (internal/metrics does) and holds no
// business rule: a rule found here belongs to the package that owns its
// concern.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/barrier"
	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/dsr"
	"github.com/consentd/consentd/consent/ingest"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/internal/lib/hooks"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/internal/metrics"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/pipeline/aggregates"
	"github.com/consentd/consentd/policy"
)

// LoadPolicy loads the keyring named by cfg and compiles the policy with it.
func LoadPolicy(cfg *config.Config) (*policy.Policy, error) {
	return loadPolicy(cfg, cfg.Policy)
}

// LoadShadowPolicy compiles cfg's shadow_policy with the same keyring;
// nil when there is none.
func LoadShadowPolicy(cfg *config.Config) (*policy.Policy, error) {
	if cfg.ShadowPolicy == "" {
		return nil, nil
	}
	p, err := loadPolicy(cfg, cfg.ShadowPolicy)
	if err != nil {
		return nil, fmt.Errorf("shadow_policy: %w", err)
	}
	return p, nil
}

func loadPolicy(cfg *config.Config, path string) (*policy.Policy, error) {
	name, data, err := cfg.KeyMaterial()
	if err != nil {
		return nil, err
	}
	keys, err := policy.ParseKeyring(name, data)
	if err != nil {
		return nil, err
	}
	return policy.Load(path, keys)
}

// KeyRetention is how long a retired pseudonym key still gets
// retractions and erasures: pseudonymization.retention, or the longest
// retention an output of pol names when that is longer (its clean topic
// may still hold records keyed under a key retired that long ago).
func KeyRetention(cfg *config.Config, pol *policy.Policy) time.Duration {
	r := cfg.Pseudonymization.Retention
	for _, o := range pol.Outputs {
		if o.Retention > r {
			r = o.Retention
		}
	}
	return r
}

// App is a wired consentd instance.
type App struct {
	Config *config.Config
	Policy *policy.Policy
	// Shadow is the candidate policy decided beside Policy (shadow_policy);
	// nil when there is none.
	Shadow    *policy.Policy
	Metrics   *metrics.Metrics
	Stats     *pipeline.Stats // typed totals of acknowledged batches
	Readiness *hooks.Readiness
	Hooks     hooks.List // Readiness, Metrics and Stats
	Log       *zap.Logger
	Redis     redis.UniversalClient
	Kafka     *connect.Kafka
	Cache     *consent.Cache
	Producer  *kafka.Writer
	Changes   *changes.Service
	// Aggregator counts and releases the policy's aggregate outputs, with
	// its own writer; nil when the policy has none.
	Aggregator *aggregates.Aggregator
	aggWriter  *kafka.Writer

	level *zap.AtomicLevel // nil: the log level cannot be changed at run time
	// shadowReport writes the shadow policy's differences (shadow.report_topic).
	shadowReport *kafkaops.ShadowReporter
	runner       *pipeline.Runner
	store        *redisstore.Store
	member       *barrier.Member
	outageCfg    outage.Config
	outages      outages
	admin        *http.Server
	ln           net.Listener
	api          *http.Server // nil when the consent API is off
	apiLn        net.Listener
}

// Option changes how New wires an App.
type Option func(*App)

// WithShadow decides shadow as the shadow policy, instead of the
// configuration's shadow_policy (the demo's embedded policies).
func WithShadow(shadow *policy.Policy) Option {
	return func(a *App) { a.Shadow = shadow }
}

// WithHook adds h to the hooks every component is told about.
func WithHook(h any) Option {
	return func(a *App) { a.Hooks = append(a.Hooks, h) }
}

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
	a := &App{Config: cfg, Policy: pol, Log: log, Stats: &pipeline.Stats{}, Readiness: &hooks.Readiness{}}
	a.Metrics = metrics.New(a.Readiness)
	a.Metrics.Info.WithLabelValues(pol.Version).Set(1)
	a.Metrics.RegisterBuildInfo(Version)
	a.Hooks = hooks.List{a.Readiness, a.Metrics, a.Stats}
	a.Hooks.Condition(pipeline.CondGroup, errors.New("not joined yet"))
	for _, o := range opts {
		o(a)
	}
	a.outages = newOutages(cfg, log, a.outageCfg)
	if pol.PerOutputPseudonyms && len(cfg.Pipeline.CopyHeaders) > 0 {
		log.Warn("pipeline.copy_headers is set with pseudonymization.per_output: copied raw headers are the same on every output and can join them",
			zap.Strings("copy_headers", cfg.Pipeline.CopyHeaders))
	}
	var err error
	kctx, kcancel := context.WithTimeout(context.Background(), connect.DialTimeout)
	a.Kafka, err = connect.NewKafka(kctx, cfg.Kafka)
	kcancel()
	if err != nil {
		return nil, err
	}
	if a.Redis, err = NewRedis(cfg); err != nil {
		return nil, err
	}
	a.store = redisstore.New(a.Redis, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, a.Hooks)
	a.Cache = consent.NewCache(a.store, consent.CacheConfig{Size: *cfg.Cache.Size, TTL: cfg.Cache.TTL, MaxBytes: *cfg.Cache.MaxBytes, Purposes: pol.Purposes}, a.Hooks)
	a.Producer = NewProducer(cfg, a.Kafka)
	if a.Shadow == nil {
		if a.Shadow, err = LoadShadowPolicy(cfg); err != nil {
			a.Redis.Close()
			return nil, err
		}
	}
	if a.Shadow != nil && cfg.Shadow.ReportTopic != "" {
		a.shadowReport = &kafkaops.ShadowReporter{Topic: cfg.Shadow.ReportTopic, PerSecond: cfg.Shadow.ReportPerSecond, Producer: a.Producer, Live: pol, Shadow: a.Shadow, Log: log, Outage: a.outages.kafka}
		a.Hooks = append(a.Hooks, a.shadowReport)
	}
	a.Changes = NewChanges(cfg, pol, a.Redis, a.Producer, a.Hooks, log)
	lease := redisstore.NewBarrierMember(a.Redis, cfg.Redis.KeyPrefix, barrier.NewID(), barrier.DefaultLeaseTTL, log)
	lease.Outage = a.outages.redis
	a.member = barrier.NewMember(lease, a.Cache, a.Hooks, log)
	a.member.Outage = a.outages.redis
	if err := a.newAggregator(); err != nil {
		a.Redis.Close()
		return nil, err
	}
	if a.runner, err = a.newRunner(); err != nil {
		a.Redis.Close()
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if err := a.listen(); err != nil {
		a.Redis.Close()
		return nil, err
	}
	return a, nil
}

// The aggregates' metrics are told through hooks.Each, which skips a
// hook of the wrong type silently: this fails the build instead.
var _ aggregates.Hook = (*metrics.Aggregates)(nil)

// newAggregator builds the aggregator of the policy's aggregate
// outputs, if it has any, with a writer of its own, and adds it to the
// hooks told about acknowledged batches.
func (a *App) newAggregator() error {
	if len(a.Policy.Aggregates) == 0 {
		return nil
	}
	a.aggWriter = NewProducer(a.Config, a.Kafka)
	agg, err := aggregates.New(aggregates.Config{
		Policy:  a.Policy,
		Writer:  a.aggWriter,
		Backoff: Backoff(a.Config),
		Hooks:   append(hooks.List{metrics.NewAggregates(a.Metrics)}, a.Hooks...),
		Log:     a.Log,
	})
	if err != nil {
		return fmt.Errorf("policy aggregates: %w", err)
	}
	a.Aggregator = agg
	a.Hooks = append(a.Hooks, agg)
	return nil
}

// newRunner builds the engine over the cache, the barrier member and the
// producer.
func (a *App) newRunner() (*pipeline.Runner, error) {
	cfg := a.Config
	var linker pipeline.Linker
	if cfg.Identity.LinksFrom("events") {
		linker = NewUpdater(cfg, a.Redis)
	}
	newProcessor, err := pipeline.NewProcessorFactory(pipeline.ProcessorConfig{
		Policy:          a.Policy,
		Store:           consent.Linked{Store: a.Cache},
		Changes:         a.Cache,
		Linker:          linker,
		DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Backoff:         Backoff(cfg),
		CopyHeaders:     cfg.Pipeline.CopyHeaders,
		Shadow:          a.Shadow,
		ShadowEvery:     cfg.Shadow.Every,
		Hooks:           a.Hooks,
		Log:             a.Log,
		StoreOutage:     a.outages.redis,
	})
	if err != nil {
		return nil, err
	}
	rc := RunnerConfig(cfg, newProcessor, a.Producer, a.Hooks, a.Log)
	rc.Dialer = a.Kafka.Dialer()
	rc.Outage = a.outages.kafka
	rc.Fence = a.member
	return pipeline.NewRunner(rc)
}

// Backoff is the retry policy every part of consentd uses.
func Backoff(cfg *config.Config) retry.Backoff {
	return retry.Backoff{Min: cfg.Pipeline.RetryBackoffMin, Max: cfg.Pipeline.RetryBackoffMax}
}

// NewRedis returns a client for the consent store described by cfg (one
// node, Sentinel or Cluster, with TLS and ACL credentials; see
// connect.NewRedis). It does not retry by itself: the pipeline retries
// with its own backoff.
func NewRedis(cfg *config.Config) (redis.UniversalClient, error) {
	// go-redis's own messages (Sentinel lookups, dial retries) are not
	// for a command's terminal: a command reports the explained error.
	// New routes them to its logger first, which this leaves in place.
	routeRedisLogs(zap.NewNop())
	return connect.NewRedis(cfg.Redis)
}

// NewChanges returns the one consent change service: changes stored in
// Redis, retractions written through producer (nil, untyped: changes
// that need retractions fail), withdrawals and erasures waiting for the
// revocation barrier. The CLI, the consent API, the consent topic and the expiry
// sweeper all change consent through it.
func NewChanges(cfg *config.Config, pol *policy.Policy, rdb redis.UniversalClient, producer kafkaops.Producer, hs hooks.List, log *zap.Logger) *changes.Service {
	svc := &changes.Service{
		Store:    NewUpdater(cfg, rdb),
		Current:  redisstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, nil),
		Purposes: pol.Purposes,
		Barrier:  &barrier.Revoker{Registry: redisstore.NewBarrierRegistry(rdb, cfg.Redis.KeyPrefix), Hooks: hs},
	}
	if producer != nil {
		svc.Retractor = &kafkaops.Retractor{Policy: pol, Producer: producer, Backoff: Backoff(cfg), Log: log, Retention: KeyRetention(cfg, pol)}
	}
	return svc
}

// NewDSR returns the data-subject request service over the change
// service NewChanges builds; producer may be nil for read-only use.
func NewDSR(cfg *config.Config, pol *policy.Policy, rdb redis.UniversalClient, producer kafkaops.Producer, log *zap.Logger) *dsr.DSR {
	return newDSR(cfg, pol, rdb, NewChanges(cfg, pol, rdb, producer, nil, log), producer)
}

// newDSR returns the data-subject request service over svc; with a
// producer and a consent topic, its changes are journaled there.
func newDSR(cfg *config.Config, pol *policy.Policy, rdb redis.UniversalClient, svc *changes.Service, producer kafkaops.Producer) *dsr.DSR {
	d := &dsr.DSR{Policy: pol, Store: NewUpdater(cfg, rdb), Changes: svc, NoLinks: !cfg.Identity.LinksFrom("api")}
	if producer != nil && cfg.Consent.Topic != "" {
		d.Journal = &kafkaops.ConsentJournal{Producer: producer, Topic: cfg.Consent.Topic, Backoff: Backoff(cfg)}
	}
	return d
}

// NewUpdater returns the consent store's writer, with the configured
// erasure retention.
func NewUpdater(cfg *config.Config, rdb redis.UniversalClient) *redisstore.Updater {
	w := redisstore.NewUpdater(rdb, cfg.Redis.KeyPrefix)
	w.ErasureRetention = cfg.Consent.ErasureRetention
	w.Rules = redisstore.LinkRules{EventsMayRelink: cfg.Identity.EventsMayRelink}
	if cfg.Identity.MaxLinkedIDs != nil {
		w.Rules.MaxLinkedIDs = *cfg.Identity.MaxLinkedIDs
	}
	return w
}

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
		BatchBytes:             pipeline.DefaultMaxWriteBytes,
		MaxAttempts:            3,
		AllowAutoTopicCreation: false,
	}
}

// RunnerConfig maps cfg onto the engine's settings.
func RunnerConfig(cfg *config.Config, newProcessor func() pipeline.BatchProcessor, p pipeline.Producer, hs hooks.List, log *zap.Logger) pipeline.RunnerConfig {
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
		Backoff:          Backoff(cfg),
		ShutdownGrace:    cfg.Pipeline.ShutdownGrace,
		DeadLetterTopic:  cfg.Kafka.DeadLetterTopic,
		NewProcessor:     newProcessor,
		Producer:         p,
		Hooks:            hs,
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
	mux.Handle("/metrics", a.Metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := a.Readiness.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			if !a.authorized(r, config.ScopeRead) {
				// The causes name hosts and addresses: only the
				// conditions without a token with the read scope.
				why = a.Readiness.Failing()
			}
			fmt.Fprintln(w, "not ready: "+strings.Join(why, "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	a.logLevelHandler(mux)
	return mux
}

// APIHandler serves the consent API (dsr.Handler) behind the admin token.
func (a *App) APIHandler() http.Handler {
	var producer kafkaops.Producer // nil when unwired (an App built without Kafka): nothing to journal with
	if a.Producer != nil {
		producer = a.Producer
	}
	return dsr.Handler(newDSR(a.Config, a.Policy, a.Redis, a.Changes, producer), func(r *http.Request) (dsr.Caller, bool) {
		t, ok := a.authenticate(r)
		return dsr.Caller{Name: t.Name, Allows: t.Allows}, ok
	}, a.Log)
}

// Check connects to Redis (every master of a cluster) and to the brokers
// and verifies the topics, so that a wrong password, an untrusted
// certificate or a missing topic fails at start-up with a message that
// says so, before any event is read. It sizes the writes to the smallest
// max.message.bytes of the topics written.
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

// CheckTopics verifies that every raw, clean and dead-letter topic exists
// and sizes the writes (kafkaops.CheckTopics, kafkaops.WriteLimit). Call
// it before Run starts the pipeline (Run does).
func (a *App) CheckTopics(ctx context.Context) error {
	cfg := a.Config
	written := []string{cfg.Kafka.DeadLetterTopic}
	if a.shadowReport != nil {
		written = append(written, cfg.Shadow.ReportTopic)
	}
	for _, o := range a.Policy.Outputs {
		written = append(written, o.Topic)
	}
	read := append([]string(nil), cfg.Kafka.RawTopics...)
	for _, ag := range a.Policy.Aggregates {
		read = append(read, ag.Topic) // written, by aggWriter: small messages
	}
	if cfg.Consent.Topic != "" {
		read = append(read, cfg.Consent.Topic)
	}
	// A client with a transport of its own: see kafkaops.CheckTopics.
	client := a.Kafka.Client(10 * time.Second)
	defer connect.CloseClient(client)
	if err := kafkaops.CheckTopics(ctx, client, append(written, read...)); err != nil {
		return a.Kafka.Explain(err)
	}
	limit, err := kafkaops.WriteLimit(ctx, client, written)
	if err != nil {
		return err
	}
	a.Producer.BatchBytes = int64(limit)
	a.runner.SetMaxWriteBytes(limit)
	return nil
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
	cfg := a.Config
	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	var background []func()
	start := func(fn func(context.Context)) {
		done := make(chan struct{})
		go func() { defer close(done); fn(bg) }()
		background = append(background, func() { <-done })
	}
	start(func(ctx context.Context) {
		redisstore.WatchInvalidations(ctx, a.Redis, cfg.Redis.KeyPrefix, a.Cache, max(time.Second, 2*cfg.Redis.Timeout), a.outages.redis)
	})
	start(func(ctx context.Context) { consent.WatchStore(ctx, a.store, a.Hooks, consent.StoreCheckInterval) })
	start(a.member.Run)
	if a.shadowReport != nil {
		start(a.shadowReport.Run)
	}
	if a.Aggregator != nil {
		start(a.Aggregator.Run)
	}
	if a.Shadow != nil {
		a.Log.Info("shadow policy decided beside the live one; it writes nothing to clean topics",
			zap.String("shadow_policy_version", a.Shadow.Version), zap.String("shadow_policy_digest", a.Shadow.Digest),
			zap.Int("every", cfg.Shadow.Every), zap.String("report_topic", cfg.Shadow.ReportTopic))
	}
	start(func(ctx context.Context) {
		sw := redisstore.NewSweeper(a.Redis, cfg.Redis.KeyPrefix, a.Changes.Expire, a.Log)
		sw.Outage, sw.Backoff = a.outages.redis, Backoff(cfg)
		sw.Run(ctx, redisstore.SweepInterval)
	})
	// The consent sync stops with the engine (also when the engine stops
	// on a fatal error before ctx ends).
	syncCtx, stopSync := context.WithCancel(ctx)
	defer stopSync()
	syncDone := make(chan struct{})
	go func() { defer close(syncDone); a.runConsentSync(syncCtx) }()
	a.serve()
	a.Log.Info("consentd running",
		zap.Strings("raw_topics", cfg.Kafka.RawTopics),
		zap.String("group", cfg.Kafka.GroupID),
		zap.String("kafka", a.Kafka.String()),
		zap.String("policy_version", a.Policy.Version),
		zap.Int("outputs", len(a.Policy.Outputs)),
		zap.String("admin", a.AdminAddr()),
		zap.String("api", a.APIAddr()))
	err := a.runner.Run(ctx)
	stopSync()
	<-syncDone
	stopBackground()
	for _, wait := range background {
		wait()
	}
	werr := a.Producer.Close()
	if a.aggWriter != nil {
		a.aggWriter.Close()
	}
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

// runConsentSync applies the consent topic, if one is configured, until
// ctx ends.
func (a *App) runConsentSync(ctx context.Context) {
	cfg := a.Config
	if cfg.Consent.Topic == "" {
		return
	}
	s := &kafkaops.ConsentSyncer{
		Brokers:         a.Kafka.Brokers(),
		Dialer:          a.Kafka.Dialer(),
		Topic:           cfg.Consent.Topic,
		GroupID:         cfg.Consent.GroupID,
		Changes:         a.Changes,
		DeadLetter:      a.Producer,
		DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		PolicyVersion:   a.Policy.Version,
		Mapping:         ingest.Mapping{Purposes: a.Policy.Purposes, Categories: a.Policy.ConsentCategories, CMP: a.Policy.CMP},
		Backoff:         Backoff(cfg),
		Hooks:           a.Hooks,
		Log:             a.Log,
		KafkaOutage:     a.outages.kafka,
		StoreOutage:     a.outages.redis,
	}
	if err := s.Run(ctx); err != nil {
		a.Log.Error("consent ingestion stopped", zap.Error(err))
	}
}
