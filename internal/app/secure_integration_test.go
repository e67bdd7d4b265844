package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/testing/itest"
)

// TestIntegrationRefusedConnections starts consentd against the SASL_SSL
// listener with a wrong password, then trusting another CA, then against
// Redis's TLS port trusting another CA: each start fails at once with an
// error that names the setting to fix, and not one event reaches a clean
// topic or gets its offset committed.
func TestIntegrationRefusedConnections(t *testing.T) {
	itest.Variants(t, []string{itest.Secure}, func(t *testing.T, env itest.Env) {
		redisTLS := os.Getenv("CONSENTD_TEST_REDIS_TLS")
		if redisTLS == "" {
			t.Fatal("CONSENTD_TEST_REDIS_TLS is not set (scripts/services.sh writes it)")
		}
		s := newStack(t, env, 1)
		seedFull(t, env.Redis, s.prefix, "x")
		itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("x", 0, 20)...)
		otherCA := writeSelfSignedCA(t)

		for _, tc := range []struct {
			name   string
			mutate func(c *config.Config)
			want   []string
		}{
			{"wrong Kafka password", func(c *config.Config) { c.Kafka.SASL.Password = "not-the-password" },
				[]string{"kafka.sasl", "SCRAM-SHA-512", "wrong username or password"}},
			{"Kafka certificate not trusted", func(c *config.Config) { c.Kafka.TLS.CAFile = otherCA },
				[]string{"kafka.tls", "not signed by a trusted authority"}},
			{"Redis certificate not trusted", func(c *config.Config) {
				c.Redis = config.Redis{Mode: config.RedisSingle, Addr: redisTLS, KeyPrefix: s.prefix, Timeout: time.Second,
					TLS: config.TLS{Enabled: true, CAFile: otherCA}}
			}, []string{"redis.tls", "not signed by a trusted authority"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := *s.cfg
				tc.mutate(&cfg)
				pol, err := LoadPolicy(&cfg)
				if err != nil {
					t.Fatal(err)
				}
				a, err := New(&cfg, pol, zaptest.NewLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				start := time.Now()
				err = a.Run(ctx)
				if err == nil {
					t.Fatal("Run started")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), string(env.KafkaSASL.Password)) {
					t.Errorf("the error shows a password: %v", err)
				}
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("failing took %s", d)
				}
				t.Logf("refused in %s: %v", time.Since(start).Round(time.Millisecond), err)
			})
		}
		for _, topic := range []string{s.perso, s.ana, s.adv, s.dlq} {
			if n := itest.Count(t, env.Kafka, topic); n != 0 {
				t.Errorf("%s holds %d messages after refused starts", topic, n)
			}
		}
		if c := itest.Committed(t, env.Kafka, s.group, s.raw, 1); c[0] > 0 {
			t.Errorf("offset %d committed after refused starts", c[0])
		}
	})
}

// writeSelfSignedCA writes a CA certificate that signed nothing the
// services use, and returns its path.
func writeSelfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the services' CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
