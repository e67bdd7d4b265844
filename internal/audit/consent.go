package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Subjects maps the clean message keys of the auditor's subjects to the
// subjects: for every key of the key file, the pseudonym the README
// documents ("KEYID:" and the hex of the first 128 bits of HMAC-SHA256 of
// the subject), per output under the output's HKDF-derived secret when
// the policy pseudonymizes per output. Computed here, from the published
// recipe, not by consentd's code.
func Subjects(keyFile []byte, ids []string, p *Policy) (map[string]string, error) {
	keys, err := readKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		secret, err := decode(k.secret)
		if err != nil {
			return nil, fmt.Errorf("key file: key %q: %w", k.id, err)
		}
		secrets := [][]byte{secret}
		if p.PerOutput {
			secrets = nil
			for _, o := range p.Outputs {
				d, err := hkdf.Key(sha256.New, secret, nil, "consentd pseudonym key v1 output "+o.Name, sha256.Size)
				if err != nil {
					return nil, err
				}
				secrets = append(secrets, d)
			}
		}
		for _, s := range secrets {
			for _, subject := range ids {
				m := hmac.New(sha256.New, s)
				m.Write([]byte(subject))
				out[k.id+":"+hex.EncodeToString(m.Sum(nil)[:16])] = subject
			}
		}
	}
	return out, nil
}

// KeyIDs returns the key ids of a key file (retired keys included): the
// ids a pseudonym may carry.
func KeyIDs(keyFile []byte) ([]string, error) {
	keys, err := readKeyFile(keyFile)
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.id)
	}
	return ids, err
}

type keyLine struct{ id, secret string }

// readKeyFile reads the KEYID:SECRET[:attributes] lines of a key file,
// skipping blank lines and comments.
func readKeyFile(data []byte) ([]keyLine, error) {
	var out []keyLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		id, rest, ok := strings.Cut(t, ":")
		if !ok {
			return nil, errors.New("key file: a line is not KEYID:SECRET")
		}
		secret, _, _ := strings.Cut(rest, ":")
		out = append(out, keyLine{strings.TrimSpace(id), strings.TrimSpace(secret)})
	}
	return out, sc.Err()
}

func decode(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("the secret is not base64")
}

// Record is a subject's current consent record as the store holds it.
type Record struct {
	Found   bool
	Version int64
	Granted map[string]bool
}

// RecordReader reads subjects' current records.
type RecordReader interface {
	Record(ctx context.Context, subject string) (Record, error)
}

// RedisRecords reads records from the Redis consent schema the README
// documents: a hash <prefix>r:{<subject>} with _v and a field per purpose
// ("1": granted).
type RedisRecords struct {
	Client redis.UniversalClient
	Prefix string
}

// Record implements RecordReader.
func (r RedisRecords) Record(ctx context.Context, subject string) (Record, error) {
	h, err := r.Client.HGetAll(ctx, r.Prefix+"r:{"+subject+"}").Result()
	if err != nil {
		return Record{}, fmt.Errorf("reading the consent of a subject: %w", err)
	}
	v, err := strconv.ParseInt(h["_v"], 10, 64)
	if len(h) == 0 || err != nil {
		return Record{}, nil // no record (or no valid version): nothing granted
	}
	rec := Record{Found: true, Version: v, Granted: map[string]bool{}}
	for k, val := range h {
		if !strings.HasPrefix(k, "_") && val == "1" {
			rec.Granted[k] = true
		}
	}
	return rec, nil
}
