// Package wire is consentd's message contract with the outside world: the
// header names it sets, how a clean message, a dead letter and a
// retraction tombstone are built, and the format of the source header.
// Every package that writes to Kafka builds its messages here, so the
// contract lives in one place.
//
// wire depends on kafka-go's message type only; it does no I/O.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header names on clean messages.
const (
	HeaderPolicyVersion  = "consentd-policy-version"  // policy version that decided
	HeaderConsentVersion = "consentd-consent-version" // record's _v, or "none"
	HeaderActions        = "consentd-actions"         // op:path,... or "none"
	HeaderOutput         = "consentd-output"          // output name
	HeaderSource         = "consentd-source"          // topic/partition/offset of the raw event
	HeaderPolicyDigest   = "consentd-policy-sha256"   // "sha256:" and the hex SHA-256 of the policy file that decided
)

// Header names on dead letters (besides HeaderPolicyVersion).
const (
	HeaderDLQReason    = "consentd-dlq-reason"
	HeaderDLQError     = "consentd-dlq-error"
	HeaderSourceTopic  = "consentd-source-topic"
	HeaderSourcePart   = "consentd-source-partition"
	HeaderSourceOffset = "consentd-source-offset"
)

// Header names on retractions (besides HeaderPolicyVersion and
// HeaderConsentVersion).
const (
	HeaderRetraction         = "consentd-retraction"          // RetractRevoked or RetractErased
	HeaderRetractionPurposes = "consentd-retraction-purposes" // comma-separated purposes withdrawn
)

// Retraction reasons.
const (
	RetractRevoked = "consent_revoked"
	RetractErased  = "erased"
)

// None is the consent-version and actions header value when there is none.
var None = []byte("none")

// AppendSource appends the source header value "topic/partition/offset".
func AppendSource(dst []byte, topic string, partition int, offset int64) []byte {
	dst = append(dst, topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, offset, 10)
}

// Source renders m's coordinates as a source header value.
func Source(m *kafka.Message) []byte {
	return AppendSource(make([]byte, 0, len(m.Topic)+24), m.Topic, m.Partition, m.Offset)
}

// ErrBadSource reports a source header that is not topic/partition/offset.
var ErrBadSource = errors.New("malformed source header")

// ParseSource parses a source header value. Topic names may not contain
// '/', so the last two fields are partition and offset.
func ParseSource(v string) (topic string, partition int, offset int64, err error) {
	j := strings.LastIndexByte(v, '/')
	if j <= 0 {
		return "", 0, 0, ErrBadSource
	}
	i := strings.LastIndexByte(v[:j], '/')
	if i <= 0 {
		return "", 0, 0, ErrBadSource
	}
	p, err1 := strconv.Atoi(v[i+1 : j])
	o, err2 := strconv.ParseInt(v[j+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, ErrBadSource
	}
	return v[:i], p, o, nil
}

// Clean is what a clean message says besides its value.
type Clean struct {
	Topic          string
	Key            []byte
	Value          []byte
	Time           time.Time
	PolicyVersion  []byte
	PolicyDigest   []byte // omitted when empty (a policy compiled without its file)
	ConsentVersion []byte // None when no record
	Actions        []byte // None when unchanged
	Output         []byte
	Source         []byte
}

// Message builds the clean Kafka message. The header values are shared,
// not copied: callers must not modify them afterwards.
func (c Clean) Message() kafka.Message { return c.AppendMessage(nil) }

// CleanHeaders is the most headers a clean message has (Clean.Message).
const CleanHeaders = 6

// AppendMessage is Message with the headers appended to hs (which the
// message keeps): callers building many messages hand out slices of one
// allocation.
func (c Clean) AppendMessage(hs []kafka.Header) kafka.Message {
	hs = append(hs,
		kafka.Header{Key: HeaderPolicyVersion, Value: c.PolicyVersion},
		kafka.Header{Key: HeaderConsentVersion, Value: c.ConsentVersion},
		kafka.Header{Key: HeaderActions, Value: c.Actions},
		kafka.Header{Key: HeaderOutput, Value: c.Output},
		kafka.Header{Key: HeaderSource, Value: c.Source},
	)
	if len(c.PolicyDigest) > 0 {
		hs = append(hs, kafka.Header{Key: HeaderPolicyDigest, Value: c.PolicyDigest})
	}
	return kafka.Message{Topic: c.Topic, Key: c.Key, Value: c.Value, Time: c.Time, Headers: hs}
}

// DeadLetter builds the dead letter of raw: its key and value unchanged,
// its time, and headers naming the reason, the error (which must never
// echo event values), the raw coordinates and the policy version.
//
// A dead letter is never a tombstone: kafka-go reads an empty value and a
// null one alike (as nil), and a null value on a compacted dead-letter
// topic would delete the earlier dead letters of its key, so both are
// written as an empty value.
func DeadLetter(topic string, raw *kafka.Message, reason, errText, policyVersion string) kafka.Message {
	value := raw.Value
	if value == nil {
		value = []byte{}
	}
	return kafka.Message{
		Topic: topic,
		Key:   raw.Key,
		Value: value,
		Time:  raw.Time,
		Headers: []kafka.Header{
			{Key: HeaderDLQReason, Value: []byte(reason)},
			{Key: HeaderDLQError, Value: []byte(errText)},
			{Key: HeaderSourceTopic, Value: []byte(raw.Topic)},
			{Key: HeaderSourcePart, Value: []byte(strconv.Itoa(raw.Partition))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(raw.Offset, 10))},
			{Key: HeaderPolicyVersion, Value: []byte(policyVersion)},
		},
	}
}

// Retraction builds a retraction: a tombstone (null value) keyed by the
// subject's pseudonymous key, telling consumers of topic to delete what
// they derived from that key.
func Retraction(topic string, key []byte, reason string, purposes []string, policyVersion string, consentVersion int64) kafka.Message {
	return kafka.Message{
		Topic: topic,
		Key:   key,
		Value: nil,
		Headers: []kafka.Header{
			{Key: HeaderRetraction, Value: []byte(reason)},
			{Key: HeaderRetractionPurposes, Value: []byte(strings.Join(purposes, ","))},
			{Key: HeaderPolicyVersion, Value: []byte(policyVersion)},
			{Key: HeaderConsentVersion, Value: []byte(strconv.FormatInt(consentVersion, 10))},
		},
	}
}

// Header returns the value of the first header called key, or nil.
func Header(m *kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// Headers of a truncated dead letter.
const (
	HeaderDLQTruncated    = "consentd-dlq-truncated"     // "true"
	HeaderDLQOriginalSize = "consentd-dlq-original-size" // bytes of the raw key plus value
	HeaderDLQSHA256       = "consentd-dlq-sha256"        // hex SHA-256 of the raw value
	HeaderDLQKeySHA256    = "consentd-dlq-key-sha256"    // hex SHA-256 of the raw key, when it was cut
)

// TruncatedKeepBytes is the most of a raw value a truncated dead letter
// keeps.
const TruncatedKeepBytes = 16 << 10

// Truncate returns dead letter dl cut down to fit a topic that accepts
// messages of limit bytes: the raw value is replaced by its first
// min(TruncatedKeepBytes, limit/4) bytes and a key longer than
// min(1 KiB, limit/8) by its first bytes, with headers giving the original
// size and the SHA-256 of what was cut, so that the raw event can still be
// found and verified from its coordinates. The other headers are kept.
func Truncate(dl kafka.Message, limit int) kafka.Message {
	keep, keepKey := min(TruncatedKeepBytes, limit/4), min(1024, limit/8)
	out := dl
	out.Headers = append([]kafka.Header(nil), dl.Headers...)
	sum := sha256.Sum256(dl.Value)
	out.Headers = append(out.Headers,
		kafka.Header{Key: HeaderDLQTruncated, Value: []byte("true")},
		kafka.Header{Key: HeaderDLQOriginalSize, Value: []byte(strconv.Itoa(len(dl.Key) + len(dl.Value)))},
		kafka.Header{Key: HeaderDLQSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
	if len(out.Value) > keep {
		out.Value = out.Value[:keep:keep]
	}
	if len(out.Key) > keepKey {
		ks := sha256.Sum256(dl.Key)
		out.Headers = append(out.Headers, kafka.Header{Key: HeaderDLQKeySHA256, Value: []byte(hex.EncodeToString(ks[:]))})
		out.Key = out.Key[:keepKey:keepKey]
	}
	// The error text may quote a broker's message; bound it too.
	for i := range out.Headers {
		if out.Headers[i].Key == HeaderDLQError && len(out.Headers[i].Value) > 1024 {
			out.Headers[i].Value = out.Headers[i].Value[:1024:1024]
		}
	}
	return out
}

// IsDeadLetter reports whether m was built by DeadLetter.
func IsDeadLetter(m *kafka.Message) bool { return Header(m, HeaderDLQReason) != nil }

// Size is the number of bytes m counts for against a producer's batch
// limit: kafka-go's own accounting of a message (key, value, headers and
// the record overhead), rounded up.
func Size(m *kafka.Message) int {
	n := 4 + 1 + 1 + 8 + 4 + len(m.Key) + 4 + len(m.Value) + 5
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}
