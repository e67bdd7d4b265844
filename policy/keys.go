package policy

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// MinKeyBytes is the shortest pseudonymization secret accepted.
const MinKeyBytes = 32

// Keyring holds pseudonymization secrets by key id. It is safe for
// concurrent use.
type Keyring struct {
	keys map[string]*hmacPool
}

type hmacState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

type hmacPool struct {
	id   string
	pool sync.Pool
}

// NewKeyring builds a keyring from key id to secret.
func NewKeyring(secrets map[string][]byte) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]*hmacPool, len(secrets))}
	for id, secret := range secrets {
		if err := validKeyID(id); err != nil {
			return nil, err
		}
		if len(secret) < MinKeyBytes {
			return nil, fmt.Errorf("key %q: secret is %d bytes, need at least %d", id, len(secret), MinKeyBytes)
		}
		s := bytes.Clone(secret)
		k.keys[id] = &hmacPool{id: id, pool: sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, s)} }}}
	}
	return k, nil
}

func validKeyID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// ParseKeyring reads a key file: one "KEYID:BASE64SECRET" per line, blank
// lines and lines starting with # ignored. Secrets are standard or URL-safe
// base64 and decode to at least MinKeyBytes bytes. Errors never contain
// secret material.
func ParseKeyring(name string, data []byte) (*Keyring, error) {
	secrets := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		id, b64, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEYID:BASE64SECRET", name, line)
		}
		id = strings.TrimSpace(id)
		secret, err := decodeSecret(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: key %q: secret is not base64", name, line, id)
		}
		if _, dup := secrets[id]; dup {
			return nil, fmt.Errorf("%s:%d: key %q defined twice", name, line, id)
		}
		secrets[id] = secret
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s: no keys", name)
	}
	k, err := NewKeyring(secrets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Has reports whether the keyring holds key id.
func (k *Keyring) Has(id string) bool {
	_, ok := k.keys[id]
	return ok
}

// PseudonymLen is the length of a pseudonym's hex digest.
const PseudonymLen = 32

// AppendPseudonym appends "KEYID:HEX" to dst, where HEX is the first 128
// bits of HMAC-SHA256(secret, value), hex-encoded. It is deterministic for
// one key and unlinkable across keys.
func (k *Keyring) AppendPseudonym(dst []byte, id string, value []byte) ([]byte, error) {
	p, ok := k.keys[id]
	if !ok {
		return dst, fmt.Errorf("unknown pseudonymization key %q", id)
	}
	st := p.pool.Get().(*hmacState)
	st.h.Reset()
	st.h.Write(value)
	out := st.h.Sum(st.sum[:0])
	dst = append(dst, id...)
	dst = append(dst, ':')
	dst = hex.AppendEncode(dst, out[:PseudonymLen/2])
	p.pool.Put(st)
	return dst, nil
}
