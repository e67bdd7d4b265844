// Package demo runs the real consentd pipeline against an in-process
// Kafka-protocol broker (kfake) and an in-process Redis (miniredis), with
// synthetic users and events, and reports what happened. It needs nothing
// installed. It starts consentd through the composition root, like `run`.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/kafkaops"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/configs"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// Options tune the demo.
type Options struct {
	// Duration of event production. Default: 4s.
	Duration time.Duration
	// Users with seeded consent. Default: 3000.
	Users int
	// ShadowPolicy, if set, is a policy file decided as a shadow beside
	// the embedded one (compiled with the demo's key); the report then
	// sums its differences. Default: none.
	ShadowPolicy string
	// Chart, if set, is a file (.svg, .png, .pdf) the representation
	// report's chart is drawn into. Default: none.
	Chart string
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options { return Options{Duration: 4 * time.Second, Users: 3000} }

const (
	rawTopic = "raw.events"
	dlqTopic = "consentd.dlq"
)

// Run runs the demo and prints a report to out.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	if opts.Users < 10 {
		return errors.New("demo: --users must be at least 10")
	}
	if opts.Duration <= 0 {
		return errors.New("demo: --duration must be positive")
	}
	pol, keys, err := demoPolicy()
	if err != nil {
		return err
	}
	var shadow *policy.Policy
	if opts.ShadowPolicy != "" {
		data, err := os.ReadFile(opts.ShadowPolicy)
		if err != nil {
			return fmt.Errorf("shadow policy: %w", err)
		}
		if shadow, err = policy.FromBytes(opts.ShadowPolicy, data, keys); err != nil {
			return fmt.Errorf("shadow policy: %w", err)
		}
	}
	topics := []string{rawTopic, dlqTopic}
	for _, o := range pol.Outputs {
		topics = append(topics, o.Topic)
	}
	fmt.Fprintf(out, "consentd demo: in-process Kafka (kfake) and Redis (miniredis); policy %q with %d outputs\n", pol.Version, len(pol.Outputs))
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		return fmt.Errorf("starting in-process kafka: %w", err)
	}
	defer cluster.Close()
	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("starting in-process redis: %w", err)
	}
	defer mr.Close()
	gen := synth.New(42, opts.Users)
	if err := seedConsent(ctx, mr.Addr(), gen, opts.Users, out); err != nil {
		return err
	}
	brokers := cluster.ListenAddrs()
	diffs := &shadowTally{sum: kafkaops.ShadowSummary{Counts: map[[2]string]int{}, Paths: map[[3]string]int{}, Policies: map[string]int{}}}
	var extra []app.Option
	if shadow != nil {
		extra = append(extra, app.WithShadow(shadow), app.WithHook(diffs))
		fmt.Fprintf(out, "shadow policy %q (%s) decided beside it, writing nothing\n", shadow.Version, shadow.Digest)
	}
	a, err := newApp(brokers, mr.Addr(), pol, extra...)
	if err != nil {
		return err
	}
	runCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	appDone := make(chan error, 1)
	go func() { appDone <- a.Run(runCtx) }()
	fmt.Fprintf(out, "pipeline running; metrics at http://%s/metrics\n", a.AdminAddr())
	started := time.Now().Add(-time.Second)
	produced, err := produce(ctx, brokers, gen, opts.Duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "produced %d raw events in %s; waiting until all are accounted for\n", produced, opts.Duration)
	waitErr := waitAccounted(ctx, a, produced)
	stopApp()
	if err := <-appDone; err != nil {
		return err
	}
	if waitErr != nil {
		return waitErr
	}
	report(out, a, pol, brokers, produced)
	if err := reportRepresentation(ctx, out, pol, brokers, started, opts.Chart); err != nil {
		return err
	}
	if shadow != nil {
		fmt.Fprintln(out, "\n== the shadow policy's differences (consentd_shadow_diff_total) ==")
		diffs.mu.Lock()
		diffs.sum.Print(out, 5)
		diffs.mu.Unlock()
	}
	return nil
}

// demoPolicy compiles the embedded policy with a fresh random key.
func demoPolicy() (*policy.Policy, *policy.Keyring, error) {
	spec, err := policy.ParseSpec("configs/policy.yaml (embedded)", configs.Policy)
	if err != nil {
		return nil, nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, err
	}
	keys, err := policy.NewKeyring(map[string][]byte{spec.PseudonymKey: secret})
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.FromBytes("configs/policy.yaml (embedded)", configs.Policy, keys)
	return p, keys, err
}

// shadowTally sums the shadow policy's differences (pipeline.ShadowHook).
type shadowTally struct {
	mu  sync.Mutex
	sum kafkaops.ShadowSummary
}

func (s *shadowTally) OnShadow(_ []byte, diffs []policy.Diff) {
	if len(diffs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Records++
	for _, d := range diffs {
		s.sum.Counts[[2]string{d.Output, d.Kind}]++
		if d.Path != "" {
			s.sum.Paths[[3]string{d.Output, d.Kind, d.Path}]++
		}
	}
}

// seedConsent stores the synthetic users' consent; the users the bad
// events name have full consent.
func seedConsent(ctx context.Context, addr string, gen *synth.Generator, users int, out io.Writer) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	seeded := 0
	for i := 0; i < users; i++ {
		purposes, ok := gen.Consent(i)
		if i < 4 {
			purposes, ok = map[string]bool{"personalization": true, "analytics": true, "advertising": true}, true
		}
		if !ok {
			continue
		}
		if err := redisstore.Put(ctx, rdb, config.DefaultKeyPrefix, synth.UserID(i), int64(1000+i), purposes); err != nil {
			return err
		}
		if err := redisstore.Put(ctx, rdb, config.DefaultKeyPrefix, synth.AnonID(i), int64(1000+i), purposes); err != nil {
			return err
		}
		seeded++
	}
	fmt.Fprintf(out, "seeded consent for %d of %d users (the rest have no record: nothing granted)\n", seeded, users)
	return nil
}

// newApp wires consentd on the in-process services.
func newApp(brokers []string, redisAddr string, pol *policy.Policy, opts ...app.Option) (*app.App, error) {
	cfg := &config.Config{
		Kafka:            config.Kafka{Brokers: brokers, RawTopics: []string{rawTopic}, DeadLetterTopic: dlqTopic, GroupID: "consentd-demo", SessionTimeout: 6 * time.Second},
		Redis:            config.Redis{Addr: redisAddr},
		Admin:            config.Admin{Listen: "127.0.0.1:0"},
		Policy:           "embedded",
		Pipeline:         config.Pipeline{CommitInterval: 200 * time.Millisecond},
		Pseudonymization: config.Pseudonymization{KeyEnv: "unused"},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return app.New(cfg, pol, zap.NewNop(), opts...)
}

// produce writes the hostile events, the bad events and, for d, a steady
// stream of synthetic ones; it returns how many it wrote.
func produce(ctx context.Context, brokers []string, gen *synth.Generator, d time.Duration) (int, error) {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: rawTopic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 5 * time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	first := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: rawTopic, Balancer: toPartition0, RequiredAcks: kafka.RequireAll}
	err := first.WriteMessages(ctx, hostileEvents()...)
	first.Close()
	if err != nil {
		return 0, fmt.Errorf("producing: %w", err)
	}
	produced := len(hostileEvents())
	for _, b := range synth.BadEvents {
		if err := w.WriteMessages(ctx, kafka.Message{Value: b.Value}); err != nil {
			return produced, fmt.Errorf("producing: %w", err)
		}
		produced++
	}
	deadline := time.Now().Add(d)
	batch := make([]kafka.Message, 0, 500)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		batch = batch[:0]
		for range 500 {
			v, u := gen.Event()
			batch = append(batch, kafka.Message{Key: []byte(synth.AnonID(u)), Value: v})
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return produced, fmt.Errorf("producing: %w", err)
		}
		produced += len(batch)
		time.Sleep(20 * time.Millisecond) // a steady stream, not one burst
	}
	return produced, nil
}

// waitAccounted waits until every raw event is consumed and its writes
// acknowledged.
func waitAccounted(ctx context.Context, a *app.App, produced int) error {
	waitUntil := time.Now().Add(30 * time.Second)
	for pipeline.Total(a.Stats.Snapshot().Consumed) < produced {
		if time.Now().After(waitUntil) || ctx.Err() != nil {
			return fmt.Errorf("demo: only %d of %d events were processed in time", pipeline.Total(a.Stats.Snapshot().Consumed), produced)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func report(out io.Writer, a *app.App, pol *policy.Policy, brokers []string, produced int) {
	st := a.Stats.Snapshot()
	fmt.Fprintf(out, "\n== accounting: %d raw events in ==\n", produced)
	for _, o := range pol.Outputs {
		fmt.Fprintf(out, "output %-16s -> %-22s written %6d\n", o.Name, o.Topic, st.Written[o.Name])
		skipped := map[string]int{}
		for d, n := range st.Decisions {
			if d.Output == o.Name && d.Action == "skip" && n > 0 {
				skipped[d.Reason] += n
			}
		}
		for _, r := range byCount(skipped) {
			fmt.Fprintf(out, "    skipped %-34s %6d\n", r.label, r.value)
		}
	}
	fmt.Fprintln(out, "events written to no output (dropped), by reason:")
	for _, r := range byCount(st.Dropped) {
		fmt.Fprintf(out, "    %-42s %6d\n", r.label, r.value)
	}
	fmt.Fprintln(out, "dead-lettered, by reason:")
	for _, r := range byCount(st.Dead) {
		fmt.Fprintf(out, "    %-42s %6d\n", r.label, r.value)
	}
	fmt.Fprintf(out, "consent lookups: %d subjects, %d from the local cache, %d Redis round trips\n",
		st.Lookups, st.CacheHits, st.RoundTrips)

	fmt.Fprintln(out, "\n== one event before and after, per output ==")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range pol.Outputs {
		clean, ok := firstMessage(ctx, brokers, o.Topic)
		if !ok {
			fmt.Fprintf(out, "\n[%s] nothing written\n", o.Name)
			continue
		}
		fmt.Fprintf(out, "\n[%s] topic %s, key %s\n", o.Name, o.Topic, clean.Key)
		for _, h := range clean.Headers {
			if h.Key == wire.HeaderActions || h.Key == wire.HeaderConsentVersion || h.Key == wire.HeaderPolicyVersion {
				fmt.Fprintf(out, "  header %s: %s\n", h.Key, h.Value)
			}
		}
		if raw, ok := sourceOf(ctx, brokers, clean); ok {
			fmt.Fprintf(out, "  before: %s\n", raw.Value)
		}
		fmt.Fprintf(out, "  after:  %s\n", clean.Value)
	}
	outputs := map[string]string{}
	for _, o := range pol.Outputs {
		outputs[o.Name] = o.Topic
	}
	reportHostile(ctx, out, brokers, outputs)
	if dl, ok := firstMessage(ctx, brokers, dlqTopic); ok {
		fmt.Fprintf(out, "\n[dead-letter] topic %s\n", dlqTopic)
		for _, h := range dl.Headers {
			fmt.Fprintf(out, "  header %s: %s\n", h.Key, h.Value)
		}
		fmt.Fprintf(out, "  value:  %s\n", dl.Value)
	}
}

func firstMessage(ctx context.Context, brokers []string, topic string) (kafka.Message, bool) {
	for p := 0; p < 4; p++ {
		if m, ok := readAt(ctx, brokers, topic, p, kafka.FirstOffset); ok {
			return m, true
		}
	}
	return kafka.Message{}, false
}

func sourceOf(ctx context.Context, brokers []string, clean kafka.Message) (kafka.Message, bool) {
	topic, p, off, err := wire.ParseSource(string(wire.Header(&clean, wire.HeaderSource)))
	if err != nil {
		return kafka.Message{}, false
	}
	return readAt(ctx, brokers, topic, p, off)
}

func readAt(ctx context.Context, brokers []string, topic string, partition int, offset int64) (kafka.Message, bool) {
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, partition)
	if err != nil {
		return kafka.Message{}, false
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil || last == 0 {
		return kafka.Message{}, false
	}
	if offset == kafka.FirstOffset {
		offset, _ = conn.ReadFirstOffset()
	}
	if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
		return kafka.Message{}, false
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	m, err := conn.ReadMessage(10 << 20)
	return m, err == nil
}

type labeled struct {
	label string
	value int
}

// byCount returns counts by label, largest first.
func byCount(m map[string]int) []labeled {
	var out []labeled
	for k, v := range m {
		if v > 0 {
			out = append(out, labeled{label: k, value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].value != out[j].value {
			return out[i].value > out[j].value
		}
		return out[i].label < out[j].label
	})
	return out
}

// reportRepresentation prints what consentd report representation
// prints over the demo's topics: the seeded skew (synth.SkewedCountry
// consents less) shows as an under-represented country.
func reportRepresentation(ctx context.Context, out io.Writer, pol *policy.Policy, brokers []string, from time.Time, chart string) error {
	fmt.Fprintf(out, "\n== representation: how consent changes each output's mix (consentd report representation; users in %s were seeded to consent less) ==\n", synth.SkewedCountry)
	counts, err := kafkaops.RepresentationFromTopics(ctx, pol, kafkaops.RepresentationSource{
		Dialer: &kafka.Dialer{Timeout: 5 * time.Second}, Brokers: brokers, RawTopics: []string{rawTopic}, From: from, To: time.Now().Add(time.Second)})
	if err != nil {
		return fmt.Errorf("representation report: %w", err)
	}
	rep := representation.Build(counts, representation.Options{Top: pol.Segments.Top, FlagRatio: pol.Segments.FlagRatio})
	if err := rep.WriteText(out); err != nil {
		return err
	}
	if chart != "" {
		if err := rep.WriteChart(chart); err != nil {
			return fmt.Errorf("representation chart: %w", err)
		}
		fmt.Fprintf(out, "chart written to %s\n", chart)
	}
	return nil
}
