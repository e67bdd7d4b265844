package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
)

// testCA issues certificates for TestAdminTLS.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key (PEM) for a server on 127.0.0.1 or
// a client.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "consentd test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestAdminTLS: with admin.tls and a client CA, both listeners serve only
// TLS 1.2 or later, only to clients with a certificate from that CA.
func TestAdminTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t), newTestCA(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, sk := ca.issue(t, 2, true)
	cc, ck := ca.issue(t, 3, false)
	oc, ok := other.issue(t, 4, false)
	a, _, _ := adminApp(t, "api-token-0123456789abc")
	a.Config.Admin.Listen, a.Config.Admin.APIListen = "127.0.0.1:0", "127.0.0.1:0"
	a.Config.Admin.TLS = config.ServerTLS{CertFile: write("server.pem", sc), KeyFile: write("server.key", sk), ClientCAFile: write("ca.pem", ca.pem)}
	a.Config.Admin.ReadTimeout, a.Config.Admin.WriteTimeout, a.Config.Admin.IdleTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	if err := a.listen(); err != nil {
		t.Fatal(err)
	}
	a.serve()
	defer a.shutdownServers()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := func(certPEM, keyPEM []byte, maxVersion uint16) *http.Client {
		tc := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
		if certPEM != nil {
			c, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	get := func(c *http.Client, url string) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	for _, addr := range []string{a.AdminAddr(), a.APIAddr()} {
		if err := get(client(cc, ck, 0), "https://"+addr+"/healthz"); err != nil {
			t.Fatalf("%s with a client certificate: %v", addr, err)
		}
		if err := get(client(nil, nil, 0), "https://"+addr+"/healthz"); err == nil {
			t.Errorf("%s without a client certificate: served", addr)
		}
		if err := get(client(oc, ok, 0), "https://"+addr+"/healthz"); err == nil {
			t.Errorf("%s with a certificate of another CA: served", addr)
		}
		if err := get(client(cc, ck, tls.VersionTLS11), "https://"+addr+"/healthz"); err == nil {
			t.Errorf("%s over TLS 1.1: served", addr)
		}
		// Plain HTTP gets the TLS server's 400, never the handler.
		if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s over plain HTTP: served", addr)
			}
		}
	}
}
