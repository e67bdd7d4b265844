package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

// staticStore answers every lookup with one record (consentd explain
// --consent): the subject's, and no record for anyone else.
type staticStore struct {
	subject string
	rec     consent.Record
}

func (s staticStore) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	out := make(map[string]consent.Record, len(subjects))
	for _, sub := range subjects {
		if s.subject == "" || sub == s.subject {
			out[sub] = s.rec
		} else {
			out[sub] = consent.Record{}
		}
	}
	return out, nil
}

// NewExplainer returns a processor wired as run wires its own (the
// policy, the consent store behind identity links, the dead-letter topic,
// the size limit, the copied headers), to explain events with
// (pipeline.Processor.Explain). With inline set, lookups are answered
// with it, offline (for subject, or for any subject when subject is "");
// else from Redis. close releases what it opened.
func NewExplainer(cfg *config.Config, inline *consent.Record, subject string) (p *pipeline.Processor, close func(), err error) {
	pol, err := LoadPolicy(cfg)
	if err != nil {
		return nil, nil, err
	}
	close = func() {}
	var store consent.Store
	if inline != nil {
		store = staticStore{subject: subject, rec: *inline}
	} else {
		rdb, err := NewRedis(cfg)
		if err != nil {
			return nil, nil, err
		}
		close = func() { rdb.Close() }
		store = redisstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, nil)
	}
	p, err = pipeline.NewProcessor(pipeline.ProcessorConfig{
		Policy:          pol,
		Store:           consent.Linked{Store: store},
		DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Backoff:         Backoff(cfg),
		CopyHeaders:     cfg.Pipeline.CopyHeaders,
	})
	if err != nil {
		close()
		return nil, nil, err
	}
	return p, close, nil
}

// ErrNoMessage reports an offset with no message (beyond the partition's
// end, or before its start).
var ErrNoMessage = errors.New("no message at that offset")

// ReadRaw reads the message at offset of topic's partition, through the
// configured connection (TLS, SASL), for consentd explain --from.
func ReadRaw(ctx context.Context, cfg *config.Config, topic string, partition int, offset int64) (kafka.Message, error) {
	k, err := connect.NewKafka(ctx, cfg.Kafka)
	if err != nil {
		return kafka.Message{}, err
	}
	// Ask for the partition first: a missing topic or partition is an
	// answer, not a wait for a leader that never comes.
	var meta *kafka.Conn
	for _, b := range k.Brokers() {
		if meta, err = k.Dialer().DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return kafka.Message{}, k.Explain(fmt.Errorf("connecting to Kafka: %w", err))
	}
	parts, err := meta.ReadPartitions(topic)
	meta.Close()
	if err != nil {
		return kafka.Message{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	if !slices.ContainsFunc(parts, func(p kafka.Partition) bool { return p.ID == partition }) {
		return kafka.Message{}, fmt.Errorf("topic %s has %d partitions, no partition %d: %w", topic, len(parts), partition, ErrNoMessage)
	}
	var conn *kafka.Conn
	for _, b := range k.Brokers() {
		if conn, err = k.Dialer().DialLeader(ctx, "tcp", b, topic, partition); err == nil {
			break
		}
	}
	if err != nil {
		return kafka.Message{}, k.Explain(fmt.Errorf("reading %s/%d: %w", topic, partition, err))
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return kafka.Message{}, fmt.Errorf("reading the offsets of %s/%d: %w", topic, partition, err)
	}
	if offset < first || offset >= last {
		return kafka.Message{}, fmt.Errorf("%s/%d holds offsets %d to %d: %w", topic, partition, first, last-1, ErrNoMessage)
	}
	if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
		return kafka.Message{}, fmt.Errorf("seeking %s/%d to %d: %w", topic, partition, offset, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	for {
		m, err := conn.ReadMessage(10 << 20)
		if err != nil {
			return kafka.Message{}, fmt.Errorf("reading %s/%d at %d: %w", topic, partition, offset, err)
		}
		if m.Offset == offset {
			m.Topic, m.Partition = topic, partition
			return m, nil
		}
		if m.Offset > offset {
			// A compacted or transactional gap: nothing at offset itself.
			return kafka.Message{}, fmt.Errorf("%s/%d has no message at %d (the next is %d): %w", topic, partition, offset, m.Offset, ErrNoMessage)
		}
	}
}

// TopicPlan lists every topic cfg and its policy name, with the settings
// each must have: raw topics, one per clean output, the aggregates topics, the dead-letter
// topic, the consent topic (compacted: its latest record per subject is
// the consent), the shadow report topic. Every topic gets partitions
// partitions when created.
func TopicPlan(cfg *config.Config, pol *policy.Policy, partitions int) []kafkaops.TopicSpec {
	var out []kafkaops.TopicSpec
	seen := map[string]bool{}
	add := func(name, role string, configs map[string]string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, kafkaops.TopicSpec{Name: name, Role: role, Partitions: partitions, Configs: configs})
	}
	for _, t := range cfg.Kafka.RawTopics {
		add(t, "raw", nil)
	}
	for _, o := range pol.Outputs {
		var configs map[string]string
		if o.Retention > 0 {
			configs = map[string]string{"retention.ms": strconv.FormatInt(o.Retention.Milliseconds(), 10)}
		}
		add(o.Topic, "clean (output "+o.Name+")", configs)
	}
	for _, ag := range pol.Aggregates {
		add(ag.Topic, "aggregates (output "+ag.Name+")", nil)
	}
	add(cfg.Kafka.DeadLetterTopic, "dead-letter", nil)
	add(cfg.Consent.Topic, "consent", map[string]string{"cleanup.policy": "compact"})
	add(cfg.Shadow.ReportTopic, "shadow report", nil)
	return out
}
