// Package kafkatest holds Kafka helpers for tests and benchmarks only: an
// in-process broker (Fake), reading a topic back (ReadAll, Scan), and small
// administration helpers shared by the integration tests and the
// end-to-end benchmark: create topics (with topic configs such as
// LogAppendTime), read offsets, count what was appended, read a group's
// committed offsets. Test and benchmark tooling:
// production code never imports it.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Security is how to connect to one bootstrap address that needs TLS or
// SASL: every helper given that address dials through it.
type Security struct {
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
}

var secured sync.Map // bootstrap address -> Security

// Secure makes every helper reach broker (a bootstrap host:port, as
// passed to the helpers) through sec. Addresses never registered are
// dialled in plaintext.
func Secure(broker string, sec Security) { secured.Store(broker, sec) }

// Dialer returns the dialer for broker.
func Dialer(broker string) *kafka.Dialer {
	if s, ok := secured.Load(broker); ok {
		return s.(Security).Dialer
	}
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
}

// Transport returns the transport for broker (nil: kafka-go's default).
func Transport(broker string) kafka.RoundTripper {
	if s, ok := secured.Load(broker); ok {
		return s.(Security).Transport
	}
	return nil
}

// CreateTopics creates topics with the given partition count (replication
// factor 1) and waits until every partition has a leader.
func CreateTopics(broker string, partitions int, topics ...string) error {
	return CreateTopicsWithConfig(broker, partitions, nil, topics...)
}

// CreateTopicsWithConfig is CreateTopics with topic configs
// (e.g. message.timestamp.type).
func CreateTopicsWithConfig(broker string, partitions int, configs map[string]string, topics ...string) error {
	d := Dialer(broker)
	conn, err := d.Dial("tcp", broker)
	if err != nil {
		return fmt.Errorf("dial kafka: %w", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	cc, err := d.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, tp := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: tp, NumPartitions: partitions, ReplicationFactor: 1}
		for k, v := range configs {
			cfgs[i].ConfigEntries = append(cfgs[i].ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
	}
	if err := cc.CreateTopics(cfgs...); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	// A new partition is usable once its leader answers for it; until
	// then clients see UnknownTopicOrPartition or NotLeaderForPartition.
	deadline := time.Now().Add(30 * time.Second)
	for _, tp := range topics {
		for {
			offs, err := Offsets(broker, tp)
			if err == nil && len(offs) == partitions {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("topic %s not ready: %v", tp, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// Partitions returns topic's partition ids in ascending order.
func Partitions(broker, topic string) ([]int, error) {
	conn, err := Dialer(broker).Dial("tcp", broker)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	sort.Ints(ids)
	return ids, nil
}

// Offsets returns [first, end) per partition of topic.
func Offsets(broker, topic string) (map[int][2]int64, error) {
	parts, err := Partitions(broker, topic)
	if err != nil {
		return nil, err
	}
	out := map[int][2]int64{}
	for _, id := range parts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := Dialer(broker).DialLeader(ctx, "tcp", broker, topic, id)
		cancel()
		if err != nil {
			return nil, err
		}
		f, l, err := c.ReadOffsets()
		c.Close()
		if err != nil {
			return nil, err
		}
		out[id] = [2]int64{f, l}
	}
	return out, nil
}

// Scan calls fn with every message of topic, partition by partition,
// from its first to its last offset at the call, and stops at fn's first
// error. Each partition must be read within 10 seconds of its start
// (per 100 000 messages).
func Scan(ctx context.Context, broker, topic string, fn func(kafka.Message) error) error {
	offs, err := Offsets(broker, topic)
	if err != nil {
		return err
	}
	parts := make([]int, 0, len(offs))
	for p := range offs {
		parts = append(parts, p)
	}
	sort.Ints(parts)
	for _, p := range parts {
		first, end := offs[p][0], offs[p][1]
		if end <= first {
			continue
		}
		if err := scanPartition(ctx, broker, topic, p, first, end, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanPartition(ctx context.Context, broker, topic string, p int, first, end int64, fn func(kafka.Message) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Dialer: Dialer(broker), Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond, MaxBytes: 10 << 20})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return fmt.Errorf("reading %s/%d: %w", topic, p, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second*time.Duration(1+(end-first)/100000))
	defer cancel()
	for n := first; n < end; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("reading %s/%d: %w", topic, p, err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// SumEnds adds up the end offsets of every partition of topics: how many
// records were ever appended to them (before compaction or retention).
func SumEnds(broker string, topics ...string) (int64, error) {
	var n int64
	for _, tp := range topics {
		offs, err := Offsets(broker, tp)
		if err != nil {
			return 0, err
		}
		for _, o := range offs {
			n += o[1]
		}
	}
	return n, nil
}

// Committed returns group's committed offset for partitions 0..partitions-1
// of topic (-1 where none).
func Committed(broker, group, topic string, partitions int) (map[int]int64, error) {
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: Transport(broker)}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	// A group's coordinator may be moving or loading (NotCoordinatorForGroup,
	// CoordinatorLoadInProgress): those are retried for a while.
	var resp *kafka.OffsetFetchResponse
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		resp, err = c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
		if err == nil {
			err = resp.Error
		}
		var ke kafka.Error
		if err != nil && errors.As(err, &ke) && ke.Temporary() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// SumCommitted adds up the committed offsets, ignoring partitions without one.
func SumCommitted(committed map[int]int64) int64 {
	var n int64
	for _, o := range committed {
		if o > 0 {
			n += o
		}
	}
	return n
}
