package policy

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// MinKeyBytes is the shortest pseudonymization secret accepted.
const MinKeyBytes = 32

// Keyring holds pseudonymization secrets by key id, and when keys were
// retired. It is safe for concurrent use.
type Keyring struct {
	keys map[string]*hmacPool
	// secrets holds each key's secret, for Derive.
	secrets map[string][]byte
	// retired holds when each retired key was retired.
	retired map[string]time.Time
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
	k := &Keyring{keys: make(map[string]*hmacPool, len(secrets)), secrets: make(map[string][]byte, len(secrets)), retired: map[string]time.Time{}}
	for id, secret := range secrets {
		if err := validKeyID(id); err != nil {
			return nil, err
		}
		if len(secret) < MinKeyBytes {
			return nil, fmt.Errorf("key %q: secret is %d bytes, need at least %d", id, len(secret), MinKeyBytes)
		}
		s := bytes.Clone(secret)
		k.secrets[id] = s
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

// ParseKeyring reads a key file: one "KEYID:BASE64SECRET" per line, or
// "KEYID:BASE64SECRET:retired=RFC3339" for a key that is no longer used to
// pseudonymize new records but whose pseudonyms may still be in the clean
// topics (see Live); blank lines and lines starting with # ignored.
// Secrets are standard or URL-safe base64 and decode to at least
// MinKeyBytes bytes. Errors never contain secret material.
func ParseKeyring(name string, data []byte) (*Keyring, error) {
	secrets := map[string][]byte{}
	retired := map[string]time.Time{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		id, rest, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEYID:BASE64SECRET[:retired=RFC3339]", name, line)
		}
		id = strings.TrimSpace(id)
		b64, attr, hasAttr := strings.Cut(rest, ":") // base64 has no ':'
		secret, err := decodeSecret(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: key %q: secret is not base64", name, line, id)
		}
		if _, dup := secrets[id]; dup {
			return nil, fmt.Errorf("%s:%d: key %q defined twice", name, line, id)
		}
		if hasAttr {
			v, ok := strings.CutPrefix(strings.TrimSpace(attr), "retired=")
			at, err := time.Parse(time.RFC3339, v)
			if !ok || err != nil {
				return nil, fmt.Errorf("%s:%d: key %q: want retired=RFC3339 after the secret (e.g. retired=2025-06-01T00:00:00Z)", name, line, id)
			}
			retired[id] = at
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
	k.retired = retired
	return k, nil
}

// deriveInfo prefixes the HKDF info of a derived keyring. Changing it
// changes every derived pseudonym.
const deriveInfo = "consentd pseudonym key v1 "

// Derive returns a keyring with the same key ids and retirement dates
// whose secrets are HKDF-SHA256 (RFC 5869, no salt) of this keyring's,
// with info deriveInfo+label, 32 bytes each. Pseudonyms under a derived
// keyring are unlinkable to those under another label without the
// original secrets; anyone holding them can derive every label's key.
func (k *Keyring) Derive(label string) (*Keyring, error) {
	secrets := make(map[string][]byte, len(k.secrets))
	for id, s := range k.secrets {
		d, err := hkdf.Key(sha256.New, s, nil, deriveInfo+label, sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("deriving key %q for %s: %w", id, label, err)
		}
		secrets[id] = d
	}
	d, err := NewKeyring(secrets)
	if err != nil {
		return nil, err
	}
	d.retired = maps.Clone(k.retired)
	return d, nil
}

// Retired reports whether key id is retired and since when.
func (k *Keyring) Retired(id string) (at time.Time, retired bool) {
	at, retired = k.retired[id]
	return at, retired
}

// Live returns current first, then every key retired less than retention
// before now (most recently retired first): the key ids whose pseudonyms
// may still be in clean topics that keep records for retention, and under
// which retractions must therefore go out.
func (k *Keyring) Live(current string, now time.Time, retention time.Duration) []string {
	out := []string{current}
	var old []string
	for id, at := range k.retired {
		if id != current && now.Sub(at) < retention {
			old = append(old, id)
		}
	}
	slices.SortFunc(old, func(a, b string) int {
		if c := k.retired[b].Compare(k.retired[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return append(out, old...)
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

// retiredKey is Retired on a keyring that may be nil.
func (k *Keyring) retiredKey(id string) (time.Time, bool) {
	if k == nil {
		return time.Time{}, false
	}
	return k.Retired(id)
}
