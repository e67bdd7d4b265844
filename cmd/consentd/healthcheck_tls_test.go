package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthcheckWithClientCA: an admin server that requires client
// certificates from its client CA, with a server-auth-only certificate
// (the usual kind). The probe presenting that certificate is refused, and
// says why and what to do; with --cert/--key of a client certificate it
// passes.
func TestHealthcheckWithClientCA(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	}
	serverCert, serverKey := issue("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := issue("probe", 3, x509.ExtKeyUsageClientAuth)
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ready\n")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	cfg, _ := checkConfig(t, dir, "[::]:"+port, "k1")
	b, _ := os.ReadFile(cfg)
	b = append(b, []byte("  tls:\n    cert_file: "+serverCert+"\n    key_file: "+serverKey+"\n    client_ca_file: "+caFile+"\n")...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	probe := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"healthcheck", "--config", cfg}, args...), &out, &errs)
		return code, out.String() + errs.String()
	}
	if code, out := probe(); code != 1 || !strings.Contains(out, "client-auth key usage") || !strings.Contains(out, "--cert/--key") {
		t.Errorf("the server certificate as client certificate: exit %d, %q; want 1 saying what to do", code, out)
	}
	if code, out := probe("--cert", clientCert, "--key", clientKey); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("--cert/--key of a client certificate ([::] asked at 127.0.0.1): exit %d, %q; want 0", code, out)
	}
	if code, out := probe("--cert", clientCert); code != 1 || !strings.Contains(out, "--cert and --key go together") {
		t.Errorf("--cert alone: exit %d, %q", code, out)
	}
}
