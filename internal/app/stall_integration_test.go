package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/wire"
)

// readCorpus reads testdata/stall_corpus.txt: raw values a producer can
// send, each of which must end written, dropped or dead-lettered.
func readCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/stall_corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, b64, ok := strings.Cut(line, "\t")
		v, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil {
			t.Fatalf("corpus line %q: %v", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntegrationNoInputStallsAPartition sends every kind of input that
// stopped partitions before (a wrong-typed consent key, subjects that look
// like internal keys, a compressed event larger than the broker's limit
// once decompressed, 40 000 keys, large events of one subject beside
// small ones of others, empty and null values) and the committed corpus,
// and asserts that every partition commits to its end, every raw event is
// accounted for, nothing of a denied subject is written and /readyz is
// ready again.
func TestIntegrationNoInputStallsAPartition(t *testing.T) {
	env := itest.Require(t)
	s := newStack(t, env, 4)
	ctx := context.Background()
	rdb := itest.Redis(t, env.Redis)
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	for _, u := range []string{"u1", "u2", "u3", "u-corpus", "l:{x}"} {
		if err := redisstore.Put(ctx, rdb, s.prefix, u, 5, all); err != nil {
			t.Fatal(err)
		}
	}
	// A key of the wrong type where a consent hash belongs (written by a
	// careless operator or CMP).
	if err := rdb.Set(ctx, redisstore.RecordKey(s.prefix, "wt"), "granted", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ev := func(key, body string) kafka.Message { return kafka.Message{Key: []byte(key), Value: []byte(body)} }
	track := func(subject, id, extra string) kafka.Message {
		return ev(subject, `{"type":"track","event":"Order Completed","userId":"`+subject+`","messageId":"`+id+`","timestamp":"`+time.Now().UTC().Format(time.RFC3339)+`"`+extra+`}`)
	}
	var msgs []kafka.Message
	msgs = append(msgs,
		track("wt", "wrong-type", ""),
		// Subjects that look like the internal keys of another subject.
		ev("evil", `{"type":"identify","userId":"u1","anonymousId":"evil"}`),
		track("l:{evil}", "link-shaped", ""),
		track("_link:evil", "old-link-shaped", ""),
		track("r:{u1}", "record-shaped", ""),
		ev("x", `{"type":"identify","userId":"u1","anonymousId":"x"}`),
		ev("x", `{"type":"track","event":"Viewed","anonymousId":"x","messageId":"anon-x"}`),
		// 40 000 short keys: the actions header must stay bounded.
		track("u2", "many-keys", `,"properties":{`+manyKeys(40000)+`}`),
		// Empty and null values.
		kafka.Message{Key: []byte("empty"), Value: []byte{}},
		kafka.Message{Key: []byte("null"), Value: nil},
	)
	for i := range 6 { // large events of one subject: their writes exceed one broker batch together
		msgs = append(msgs, track("u3", fmt.Sprintf("large-%d", i), `,"properties":{"title":"`+strings.Repeat("b", 600<<10)+`"}`))
	}
	for i := range 60 { // small events of others, on every partition
		msgs = append(msgs, track(fmt.Sprintf("u%d", 1+i%2), fmt.Sprintf("small-%d", i), ""))
	}
	corpus := readCorpus(t)
	for name, v := range corpus {
		msgs = append(msgs, kafka.Message{Key: []byte("corpus-" + name), Value: v})
	}
	total := len(msgs) + 1 // and the compressed one below

	w := &kafka.Writer{Addr: kafka.TCP(env.Kafka), Topic: s.raw, Balancer: &kafka.Hash{}, BatchTimeout: 2 * time.Millisecond,
		BatchBytes: 8 << 20, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	for _, m := range msgs { // one by one: some are near the broker's limit
		produceOne(t, w, m)
	}
	// 2 MiB once decompressed, far less on the wire: the broker accepts it.
	huge := `{"type":"track","userId":"u1","messageId":"huge","properties":{"blob":"` + strings.Repeat("z", 2<<20) + `"}}`
	gz := &kafka.Writer{Addr: kafka.TCP(env.Kafka), Topic: s.raw, Compression: kafka.Gzip, BatchBytes: 8 << 20, RequiredAcks: kafka.RequireAll}
	defer gz.Close()
	produceOne(t, gz, kafka.Message{Key: []byte("huge"), Value: []byte(huge)})

	r := s.start(t, func(c *config.Config) { c.Kafka.MaxMessageBytes = 1 << 20 })
	itest.Eventually(t, 120*time.Second, "every raw event consumed and committed", func() bool {
		if pipeline.Total(r.app.Stats.Snapshot().Consumed) < total {
			return false
		}
		end, err := itest.Offsets(env.Kafka, s.raw)
		if err != nil {
			return false
		}
		committed := itest.Committed(t, env.Kafka, s.group, s.raw, 4)
		for p, o := range end {
			if committed[p] < o[1] {
				return false
			}
		}
		return true
	})
	itest.Eventually(t, 10*time.Second, "ready", func() bool { code, _ := r.get(t, "/readyz"); return code == 200 })

	// Every raw event is accounted for exactly once in the counts, and
	// the clean and dead-letter topics show where each went.
	st := r.app.Stats.Snapshot()
	consumed, dropped, dead := pipeline.Total(st.Consumed), pipeline.Total(st.Dropped), pipeline.Total(st.Dead)
	sources := map[string]bool{}
	for _, topic := range []string{s.perso, s.ana, s.adv} {
		for _, m := range itest.ReadAll(t, env.Kafka, topic) {
			src, _ := itest.Header(m, wire.HeaderSource)
			sources[src] = true
			if a, _ := itest.Header(m, wire.HeaderActions); len(a) > 2048 {
				t.Errorf("actions header of %d bytes", len(a))
			}
			for _, denied := range []string{"wrong-type"} {
				if bytes.Contains(m.Value, []byte(denied)) {
					t.Errorf("the subject with a wrong-typed record was written to %s", topic)
				}
			}
		}
	}
	dlq := itest.ReadAll(t, env.Kafka, s.dlq)
	for _, m := range dlq {
		tp, _ := itest.Header(m, wire.HeaderSourceTopic)
		pa, _ := itest.Header(m, wire.HeaderSourcePart)
		of, _ := itest.Header(m, wire.HeaderSourceOffset)
		src := tp + "/" + pa + "/" + of
		if sources[src] {
			t.Errorf("raw event %s was both written and dead-lettered", src)
		}
		sources[src] = true
	}
	if consumed != total || len(sources)+dropped != total || dead != len(dlq) {
		t.Fatalf("consumed %d of %d; %d written or dead-lettered + %d dropped; %d counted dead vs %d dead letters (%v)",
			consumed, total, len(sources), dropped, dead, len(dlq), st.Dead)
	}
	large := 0
	for _, m := range itest.ReadAll(t, env.Kafka, s.perso) {
		if len(m.Value) > 500<<10 {
			large++
		}
	}
	if large != 6 {
		t.Errorf("%d of the 6 large events were written to personalization", large)
	}
	if r.metric(t, "consentd_consent_invalid_records_total") < 1 {
		t.Error("the wrong-typed record was not counted")
	}

	// The oversized event's dead letter is truncated, with its size and hash.
	sum := sha256.Sum256([]byte(huge))
	found := false
	for _, m := range dlq {
		if string(m.Key) == "huge" {
			found = true
			if tr, _ := itest.Header(m, wire.HeaderDLQTruncated); tr != "true" {
				t.Errorf("the 2 MiB dead letter is not truncated")
			}
			if h, _ := itest.Header(m, wire.HeaderDLQSHA256); h != hex.EncodeToString(sum[:]) {
				t.Errorf("truncated dead letter hash %q", h)
			}
			if reason, _ := itest.Header(m, wire.HeaderDLQReason); reason != "too_large" {
				t.Errorf("oversized event dead-lettered as %q", reason)
			}
		}
	}
	if !found {
		t.Error("the oversized compressed event was not dead-lettered")
	}
	// No dead letter is a tombstone (kcat prints -1 as the size of a null).
	out, err := exec.Command("kcat", "-C", "-b", env.Kafka, "-t", s.dlq, "-e", "-q", "-f", "%k %S\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasSuffix(line, " -1") {
			t.Errorf("a dead letter is a tombstone: %q", line)
		}
	}
	for _, k := range []string{"empty", "null"} {
		if !strings.Contains(string(out), k+" 0\n") {
			t.Errorf("no empty dead letter for the %s raw value:\n%s", k, out)
		}
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":1`, i)
	}
	return b.String()
}

func produceOne(t *testing.T, w *kafka.Writer, m kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if err = w.WriteMessages(ctx, m); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("produce %s: %v", m.Key, err)
}
