// Package e2ebench measures consentd end to end on a real Kafka broker and
// Redis, on the same preloaded data in the same run, against two kafka-go
// pass-throughs: the plain consume→produce→commit idiom and consentd's
// own partition-parallel plumbing with a processor that only copies.
// Every contender runs in a child process of its own (child.go), for its
// steady rate, CPU time per event and peak RSS, then again at a fixed
// offered rate for its raw→clean latency (latency.go); the result is one
// markdown table (table.go). Every pass's writes are checked against the
// count the data must give (expect.go). Benchmark tooling: production
// code never imports it.
package e2ebench

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/configs"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/internal/testing/kafkatest"
	"github.com/consentd/consentd/policy"
)

// Options configure a run.
type Options struct {
	Brokers    string
	Redis      string
	Events     int // raw events preloaded and processed by every throughput pass
	Users      int
	Partitions int // of every topic
	Rounds     int // rounds, each running every contender in turn
	BatchSize  int
	// LatencyRate is the raw events/s offered in the latency phase.
	// Default (0): half the steady rate of consentd's 1-output job
	// measured in the same run.
	LatencyRate float64
	// LatencyDuration is how long each latency pass offers events at
	// LatencyRate (after a warm-up of 1000 events). 0 skips the latency
	// phase.
	LatencyDuration time.Duration
	// KafkaVersion labels the broker in the machine line. Default: not
	// given.
	KafkaVersion string
	// ConsentdCPUProfile, when set, makes every consentd child write a CPU
	// profile of its whole process to
	// <ConsentdCPUProfile>-<job>-<phase>-r<round>.pprof.
	ConsentdCPUProfile string
	// Executable is the bench binary the contenders run in (with the
	// hidden --role flag, see RunChild). Default: os.Executable().
	Executable string
}

// Result of one throughput pass of one contender.
type Result struct {
	Name     string
	Round    int
	Events   int
	Outputs  int64         // records written (clean + dead-letter, or pass-through copies), checked
	Wall     time.Duration // from the child's start, group join included
	Steady   time.Duration // from the first message fetched to the last commit
	PerSec   float64       // Events / Steady
	WallRate float64       // Events / Wall
	CPU      time.Duration // user + system time of the contender's process
	MaxRSS   int64         // peak resident set size of the contender's process, bytes
}

// Report is what Run measured.
type Report struct {
	Machine    Machine
	Throughput []Result
	Latency    map[string][]Latency // by contender, one per round
	Rows       []Row                // the table
}

// Contender names, in table order.
const (
	namePassThrough = "kafka-go pass-through"
	nameParallel    = "kafka-go parallel pass-through"
	nameConsentd1   = "consentd, 1-output job"
	nameConsentd3   = "consentd, shipped 3-output policy"
)

//go:embed policy_one_output.yaml
var onePolicy []byte

// contender is one pipeline under test.
type contender struct {
	name    string
	key     string   // in topic and group names
	role    string   // of its child process
	outputs []string // output topic suffixes, in policy order
	policy  []byte   // consentd: the policy, its topics named clean.<suffix>
	spec    *policy.Spec
}

func contenders() ([]*contender, error) {
	cs := []*contender{
		{name: namePassThrough, key: "pt", role: RolePassThrough, outputs: []string{"passthrough"}},
		{name: nameParallel, key: "ppt", role: RoleParallel, outputs: []string{"passthrough"}},
		{name: nameConsentd1, key: "cd1", role: RoleConsentd, outputs: []string{"events"}, policy: onePolicy},
		{name: nameConsentd3, key: "cd3", role: RoleConsentd, outputs: []string{"personalization", "analytics", "advertising"}, policy: configs.Policy},
	}
	for _, c := range cs {
		if c.policy == nil {
			continue
		}
		spec, err := policy.ParseSpec(c.key, c.policy)
		if err != nil {
			return nil, err
		}
		for i, o := range spec.Outputs {
			if i >= len(c.outputs) || o.Topic != "clean."+c.outputs[i] {
				return nil, fmt.Errorf("%s: output %d writes to %s, the bench expects clean.%s", c.name, i, o.Topic, c.outputs[i])
			}
		}
		c.spec = spec
	}
	return cs, nil
}

// topics returns c's output topics under prefix, and its dead-letter
// topic ("" for the pass-throughs).
func (c *contender) topics(prefix string) (outputs []string, dlq string) {
	for _, s := range c.outputs {
		outputs = append(outputs, prefix+"."+s)
	}
	if c.role == RoleConsentd {
		dlq = prefix + ".dlq"
	}
	return outputs, dlq
}

// expected returns, per output, the records a pass over events events of
// synth.New(seed, users) must write.
func expected(cs []*contender, seed uint64, users, events int) (map[*contender][]int64, error) {
	var specs []*policy.Spec
	for _, c := range cs {
		if c.spec != nil {
			specs = append(specs, c.spec)
		}
	}
	counts, err := expectOutputs(specs, seed, users, events)
	if err != nil {
		return nil, err
	}
	out := map[*contender][]int64{}
	for _, c := range cs {
		if c.spec == nil {
			out[c] = []int64{int64(events)}
			continue
		}
		out[c], counts = counts[0], counts[1:]
	}
	return out, nil
}

// run is one Run in progress.
type run struct {
	o       Options
	out     io.Writer
	id      string
	dir     string // policy and key files
	keys    string // key file
	prefix  string // Redis consent keys
	raw     string // throughput raw topic
	cs      []*contender
	machine Machine
}

const (
	throughputSeed = 7
	latencySeed    = 11
	latencyWarmup  = 1000
)

// Run seeds consent, preloads the raw topic, runs every contender
// o.Rounds times in turn for its throughput, then again for its latency
// at a fixed offered rate, checks every pass's writes, and prints the
// passes and the comparison table to out.
func Run(ctx context.Context, o Options, out io.Writer) (Report, error) {
	r, err := setUp(ctx, o, out)
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(r.dir)
	rep := Report{Latency: map[string][]Latency{}}
	if rep.Throughput, err = r.throughputPhase(ctx); err != nil {
		return rep, err
	}
	var names []string
	for _, c := range r.cs {
		names = append(names, c.name)
	}
	if o.LatencyDuration > 0 {
		rate, source := o.LatencyRate, "--latency-rate"
		if rate <= 0 {
			rate = rows([]string{nameConsentd1}, rep.Throughput, nil)[0].PerSec / 2
			source = "half the consentd 1-output rate above"
		}
		n := max(int(rate*o.LatencyDuration.Seconds()), 1)
		r.machine.LatencyRate, r.machine.LatencySource, r.machine.LatencyEvents = rate, source, n
		if rep.Latency, err = r.latencyPhase(ctx, rate, n); err != nil {
			return rep, err
		}
	}
	rep.Machine = r.machine
	rep.Rows = rows(names, rep.Throughput, rep.Latency)
	fmt.Fprintln(out)
	renderTable(out, rep.Machine, rep.Rows, nameParallel, namePassThrough)
	return rep, nil
}

// setUp creates the throughput topics, seeds consent and preloads the raw
// events.
func setUp(ctx context.Context, o Options, out io.Writer) (_ *run, err error) {
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("the bench binary, to run the contenders: %w", err)
		}
		o.Executable = exe
	}
	cs, err := contenders()
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	r := &run{o: o, out: out, id: id, prefix: id + ":consent:", raw: id + ".raw", cs: cs}
	topics := []string{r.raw}
	for _, c := range cs {
		outs, dlq := c.topics(id + "." + c.key)
		topics = append(topics, outs...)
		if dlq != "" {
			topics = append(topics, dlq)
		}
	}
	if err := kafkatest.CreateTopics(o.Brokers, o.Partitions, topics...); err != nil {
		return nil, err
	}
	if r.dir, err = os.MkdirTemp("", "consentd-bench"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(r.dir)
		}
	}()
	if r.keys, err = writeKeys(r.dir); err != nil {
		return nil, err
	}
	gen := synth.New(throughputSeed, o.Users)
	if err = seedConsent(ctx, o, r.prefix, gen); err != nil {
		return nil, err
	}
	r.machine = thisMachine()
	r.machine.Kafka, r.machine.EventBytes, r.machine.Partitions, r.machine.Users, r.machine.Events, r.machine.Rounds =
		o.KafkaVersion, avgSize(synth.New(throughputSeed, o.Users)), o.Partitions, o.Users, o.Events, o.Rounds
	fmt.Fprintf(out, "preloading %d events (~%d bytes each) into %s (%d partitions)\n", o.Events, r.machine.EventBytes, r.raw, o.Partitions)
	if err = preload(ctx, o, r.raw, gen); err != nil {
		return nil, err
	}
	return r, nil
}

// seedConsent writes every user's consent record under both of its ids,
// and links every user's anonymous id to it: the steady state of known
// identities, the same for every consentd pass. (The identify events
// would otherwise link them during the first consentd pass only, and
// each new link invalidates cached consent, which makes consentd decide
// batches again: the first pass would pay for it alone.)
func seedConsent(ctx context.Context, o Options, prefix string, gen *synth.Generator) error {
	rdb := redis.NewClient(&redis.Options{Addr: o.Redis})
	defer rdb.Close()
	pipe := rdb.Pipeline()
	for i := 0; i < o.Users; i++ {
		if p, ok := gen.Consent(i); ok {
			for _, s := range []string{synth.UserID(i), synth.AnonID(i)} {
				fields := []any{redisstore.VersionField, 1}
				for k, v := range p {
					fields = append(fields, k, map[bool]string{true: "1", false: "0"}[v])
				}
				pipe.HSet(ctx, redisstore.RecordKey(prefix, s), fields...)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("seeding consent: %w", err)
	}
	up := redisstore.NewUpdater(rdb, prefix)
	links := map[string]string{}
	for i := 0; i < o.Users; i++ {
		links[synth.AnonID(i)] = synth.UserID(i)
		if len(links) == 1000 || i == o.Users-1 {
			if err := up.Link(ctx, links); err != nil {
				return fmt.Errorf("seeding identity links: %w", err)
			}
			clear(links)
		}
	}
	return nil
}

// childSpec is what c's child runs: raw from its start, writing to the
// topics under prefix.
func (r *run) childSpec(c *contender, prefix, raw, group string, events int, profile string) (ChildSpec, error) {
	outs, dlq := c.topics(prefix)
	s := ChildSpec{Brokers: r.o.Brokers, Redis: r.o.Redis, Raw: raw, Group: group, Events: events, Partitions: r.o.Partitions, BatchSize: r.o.BatchSize}
	if c.role != RoleConsentd {
		s.Out = outs[0]
		return s, nil
	}
	pol := string(c.policy)
	for i, suffix := range c.outputs {
		from := "topic: clean." + suffix
		if !strings.Contains(pol, from) {
			return s, fmt.Errorf("%s: the policy has no %q", c.name, from)
		}
		pol = replaceOnce(pol, from, "topic: "+outs[i])
	}
	s.Policy = filepath.Join(r.dir, prefix+".yaml")
	if err := os.WriteFile(s.Policy, []byte(pol), 0o600); err != nil {
		return s, err
	}
	s.DeadLetter, s.Keys, s.KeyPrefix = dlq, r.keys, r.prefix
	if r.o.ConsentdCPUProfile != "" {
		s.CPUProfile = r.o.ConsentdCPUProfile + "-" + c.key + "-" + profile + ".pprof"
	}
	return s, nil
}

// childTimeout bounds one child's life: a hung contender fails the run.
func childTimeout(events int) time.Duration {
	return 5*time.Minute + time.Duration(events)*2*time.Millisecond
}

// throughputPhase runs every contender over the preloaded events, round
// after round.
func (r *run) throughputPhase(ctx context.Context) ([]Result, error) {
	exp, err := expected(r.cs, throughputSeed, r.o.Users, r.o.Events)
	if err != nil {
		return nil, err
	}
	var results []Result
	for round := 1; round <= r.o.Rounds; round++ {
		for _, c := range r.cs {
			res, err := r.throughput(ctx, c, round, exp[c])
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", c.name, round, err)
			}
			results = append(results, res)
			fmt.Fprintf(r.out, "round %d %-34s %8d events %8d writes  steady %7.3fs = %7.0f events/s  (wall %6.3fs incl. group join)  CPU %6.1f µs/event  peak RSS %4.0f MiB\n",
				round, res.Name, res.Events, res.Outputs, res.Steady.Seconds(), res.PerSec, res.Wall.Seconds(),
				micros(res.CPU/time.Duration(res.Events)), mib(res.MaxRSS))
		}
	}
	return results, nil
}

// throughput runs c once over the preloaded raw topic, with a group of
// its own, and checks what it wrote against exp.
func (r *run) throughput(ctx context.Context, c *contender, round int, exp []int64) (Result, error) {
	prefix := r.id + "." + c.key
	outs, dlq := c.topics(prefix)
	checked := append(slices.Clone(outs), dlq)
	if dlq == "" {
		checked = outs
	}
	before, err := ends(r.o.Brokers, checked)
	if err != nil {
		return Result{}, err
	}
	spec, err := r.childSpec(c, prefix, r.raw, fmt.Sprintf("%s.r%d", prefix, round), r.o.Events, fmt.Sprintf("throughput-r%d", round))
	if err != nil {
		return Result{}, err
	}
	ch, err := startChild(ctx, r.o.Executable, c.role, spec, childTimeout(r.o.Events))
	if err != nil {
		return Result{}, err
	}
	cr, err := ch.wait()
	if err != nil {
		return Result{}, err
	}
	after, err := ends(r.o.Brokers, checked)
	if err != nil {
		return Result{}, err
	}
	if cr.Consumed != r.o.Events {
		return Result{}, fmt.Errorf("consumed %d events, the raw topic holds %d", cr.Consumed, r.o.Events)
	}
	if want := sum(exp); cr.Outputs != want {
		return Result{}, fmt.Errorf("counted %d writes, the data gives %d", cr.Outputs, want)
	}
	for i, tp := range checked {
		want := int64(0) // dead letters
		if i < len(exp) {
			want = exp[i]
		}
		if got := after[i] - before[i]; got != want {
			return Result{}, fmt.Errorf("appended %d records to %s, the data gives %d", got, tp, want)
		}
	}
	res := Result{Name: c.name, Round: round, Events: r.o.Events, Outputs: cr.Outputs, Wall: cr.Wall, Steady: cr.Steady, CPU: cr.CPU, MaxRSS: cr.MaxRSS}
	res.PerSec = float64(res.Events) / res.Steady.Seconds()
	res.WallRate = float64(res.Events) / res.Wall.Seconds()
	return res, nil
}

// ends returns each topic's appended record count.
func ends(broker string, topics []string) ([]int64, error) {
	out := make([]int64, len(topics))
	for i, tp := range topics {
		n, err := kafkatest.SumEnds(broker, tp)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// latencyPhase runs every contender, round after round, on fresh topics
// while n raw events (after the warm-up) are offered at rate.
func (r *run) latencyPhase(ctx context.Context, rate float64, n int) (map[string][]Latency, error) {
	total := latencyWarmup + n
	exp, err := expected(r.cs, latencySeed, r.o.Users, total)
	if err != nil {
		return nil, err
	}
	gen := synth.New(latencySeed, r.o.Users)
	msgs := make([]kafka.Message, total)
	for i := range msgs {
		v, u := gen.Event()
		msgs[i] = kafka.Message{Key: []byte(synth.AnonID(u)), Value: v}
	}
	fmt.Fprintf(r.out, "latency: %d events offered at %.0f/s per pass, after %d warm-up events\n", n, rate, latencyWarmup)
	out := map[string][]Latency{}
	for round := 1; round <= r.o.Rounds; round++ {
		for _, c := range r.cs {
			l, err := r.latency(ctx, c, round, rate, msgs, exp[c])
			if err != nil {
				return nil, fmt.Errorf("%s, latency round %d: %w", c.name, round, err)
			}
			out[c.name] = append(out[c.name], l)
			fmt.Fprintf(r.out, "round %d %-34s offered %7.0f/s (achieved %7.0f/s)  %7d clean records  latency p50 %4.0f ms  p99 %5.0f ms  max %5.0f ms  (p50 of the first/last tenth %.0f/%.0f ms)\n",
				round, c.name, l.Offered, l.Achieved, l.Samples, ms(l.P50), ms(l.P99), ms(l.Max), ms(l.FirstP50), ms(l.LastP50))
		}
	}
	return out, nil
}

// latency runs c on fresh LogAppendTime topics: the warm-up events at
// once (the contender has joined its group once they are committed),
// then the rest at rate; then it matches every clean record to its raw
// event.
func (r *run) latency(ctx context.Context, c *contender, round int, rate float64, msgs []kafka.Message, exp []int64) (l Latency, err error) {
	prefix := fmt.Sprintf("%s.lat%d.%s", r.id, round, c.key)
	raw := prefix + ".raw"
	outs, dlq := c.topics(prefix)
	topics := append([]string{raw}, outs...)
	if dlq != "" {
		topics = append(topics, dlq)
	}
	if err := kafkatest.CreateTopicsWithConfig(r.o.Brokers, r.o.Partitions, latencyTopicConfig, topics...); err != nil {
		return l, err
	}
	spec, err := r.childSpec(c, prefix, raw, prefix, len(msgs), fmt.Sprintf("latency-r%d", round))
	if err != nil {
		return l, err
	}
	ch, err := startChild(ctx, r.o.Executable, c.role, spec, childTimeout(len(msgs)))
	if err != nil {
		return l, err
	}
	defer func() {
		if err != nil {
			ch.cancel()
			<-ch.done
		}
	}()
	pw := newPacedWriter(r.o.Brokers, raw)
	msgs = slices.Clone(msgs) // the writer owns what it is given
	if err := pw.write(ctx, msgs[:latencyWarmup]); err != nil {
		pw.close()
		return l, err
	}
	if err := waitCommitted(ctx, ch, r.o.Brokers, prefix, raw, r.o.Partitions, latencyWarmup); err != nil {
		pw.close()
		return l, err
	}
	achieved, err := pw.pace(ctx, msgs[latencyWarmup:], rate)
	if cerr := pw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l, fmt.Errorf("paced producer: %w", err)
	}
	cr, err := ch.wait()
	if err != nil {
		return l, err
	}
	if cr.Consumed != len(msgs) {
		return l, fmt.Errorf("consumed %d events, %d were produced", cr.Consumed, len(msgs))
	}
	rawAt, err := appendTimes(ctx, r.o.Brokers, raw)
	if err != nil {
		return l, err
	}
	if len(rawAt) != len(msgs) {
		return l, fmt.Errorf("%s holds %d distinct events, %d were produced", raw, len(rawAt), len(msgs))
	}
	var samples []sample
	for i, tp := range outs {
		var n int64
		if n, samples, err = cleanLatencies(ctx, r.o.Brokers, tp, rawAt, latencyWarmup, samples); err != nil {
			return l, err
		}
		if n != exp[i] {
			return l, fmt.Errorf("%s holds %d records, the data gives %d", tp, n, exp[i])
		}
	}
	if dlq != "" {
		if n, err := kafkatest.SumEnds(r.o.Brokers, dlq); err != nil || n != 0 {
			return l, firstErr(err, fmt.Errorf("%s holds %d dead letters, the data gives none", dlq, n))
		}
	}
	l = Latency{Offered: rate, Achieved: achieved, Events: len(msgs) - latencyWarmup}
	l.summarize(samples, latencyWarmup+1, len(msgs))
	return l, nil
}

func avgSize(g *synth.Generator) int {
	total := 0
	for range 100 {
		v, _ := g.Event()
		total += len(v)
	}
	return total / 100
}

func preload(ctx context.Context, o Options, topic string, gen *synth.Generator) error {
	w := &kafka.Writer{Addr: kafka.TCP(o.Brokers), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 5 * time.Millisecond, BatchSize: 2000, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	batch := make([]kafka.Message, 0, 2000)
	for sent := 0; sent < o.Events; {
		batch = batch[:0]
		for len(batch) < cap(batch) && sent+len(batch) < o.Events {
			v, u := gen.Event()
			batch = append(batch, kafka.Message{Key: []byte(synth.AnonID(u)), Value: v})
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return err
		}
		sent += len(batch)
	}
	return nil
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// writePolicyAndKeys writes the shipped policy, with its clean topics
// renamed to clean (personalization, analytics, advertising), and a fresh
// k1 key file into dir; it returns their paths.
func writePolicyAndKeys(dir string, clean []string) (policyPath, keyPath string, err error) {
	pol := string(configs.Policy)
	for i, name := range []string{"clean.personalization", "clean.analytics", "clean.advertising"} {
		pol = replaceOnce(pol, "topic: "+name, "topic: "+clean[i])
	}
	policyPath = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		return "", "", err
	}
	keyPath, err = writeKeys(dir)
	return policyPath, keyPath, err
}

// writeKeys writes a fresh k1 key file into dir and returns its path.
func writeKeys(dir string) (string, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	path := filepath.Join(dir, "keys")
	return path, os.WriteFile(path, []byte("k1:"+base64.StdEncoding.EncodeToString(secret)), 0o600)
}
