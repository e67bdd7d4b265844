package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestSourceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		topic string
		part  int
		off   int64
	}{{"raw.events", 0, 0}, {"a", 17, 1 << 40}, {"x_y-z.1", 3, 9}} {
		m := kafka.Message{Topic: tc.topic, Partition: tc.part, Offset: tc.off}
		topic, p, o, err := ParseSource(string(Source(&m)))
		if err != nil || topic != tc.topic || p != tc.part || o != tc.off {
			t.Fatalf("%+v: got %q %d %d %v", tc, topic, p, o, err)
		}
	}
	for _, bad := range []string{"", "a", "a/1", "/1/2", "a/x/2", "a/1/-2", "a/-1/2", "a//2"} {
		if _, _, _, err := ParseSource(bad); !errors.Is(err, ErrBadSource) {
			t.Errorf("ParseSource(%q) = %v, want ErrBadSource", bad, err)
		}
	}
}

// The raw bytes are kept, and a dead letter is never a tombstone.
func TestDeadLetterKeepsRawBytes(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte(`{"a":1}`)} {
		raw := kafka.Message{Topic: "raw", Partition: 2, Offset: 7, Key: []byte("k"), Value: v}
		dl := DeadLetter("dlq", &raw, "invalid_json", "invalid_json: bad", "v1")
		if !bytes.Equal(dl.Value, v) || dl.Value == nil || string(dl.Key) != "k" || dl.Topic != "dlq" {
			t.Fatalf("dead letter of %q: %+v", v, dl)
		}
		if string(Header(&dl, HeaderSourcePart)) != "2" || string(Header(&dl, HeaderSourceOffset)) != "7" || !IsDeadLetter(&dl) {
			t.Fatalf("headers %v", dl.Headers)
		}
	}
}

func TestTruncate(t *testing.T) {
	raw := kafka.Message{Topic: "raw", Key: bytes.Repeat([]byte("k"), 5000), Value: bytes.Repeat([]byte("v"), 3<<20)}
	dl := DeadLetter("dlq", &raw, "too_large", "too big", "v1")
	tr := Truncate(dl, 1<<20)
	if Size(&tr) > 1<<20 || len(tr.Value) != TruncatedKeepBytes || len(tr.Key) != 1024 {
		t.Fatalf("truncated to %d bytes (value %d, key %d)", Size(&tr), len(tr.Value), len(tr.Key))
	}
	sum := sha256.Sum256(raw.Value)
	if string(Header(&tr, HeaderDLQSHA256)) != hex.EncodeToString(sum[:]) || string(Header(&tr, HeaderDLQOriginalSize)) != "3150728" ||
		string(Header(&tr, HeaderDLQTruncated)) != "true" || Header(&tr, HeaderDLQKeySHA256) == nil || string(Header(&tr, HeaderDLQReason)) != "too_large" {
		t.Fatalf("headers %s", tr.Headers)
	}
	small := Truncate(dl, 8192)
	if Size(&small) > 8192 {
		t.Fatalf("a truncated dead letter of %d bytes does not fit 8192", Size(&small))
	}
	if len(dl.Headers) != 6 {
		t.Fatal("Truncate changed the original's headers")
	}
}
