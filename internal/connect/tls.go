// Package connect turns the connection settings of config into clients:
// kafka-go Dialers (readers and consumer groups) and Transports (writers
// and admin clients) with TLS and SASL, and a go-redis UniversalClient for
// a single node, a Sentinel set-up or a Cluster, with TLS and an ACL user.
// Secrets travel only inside the clients; nothing here prints them.
//
// Must not import the engine or the consent packages: it builds
// connections, it does not use them.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/consentd/consentd/config"
)

// TLSConfig returns the client TLS configuration t describes, or nil when
// TLS is off. key names the settings in errors (kafka.tls, redis.tls).
// Without a CA file the system's roots are trusted; certificates are always
// verified (there is no switch to skip it).
func TLSConfig(key string, t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", key, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, fmt.Errorf("%s: set both cert_file and key_file, or neither", key)
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: client certificate %s and key %s: %w", key, t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// explainTLS says in words what a certificate verification error means for
// the settings under key; other errors come back unchanged.
func explainTLS(key, peer string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%s: the TLS certificate of %s is not signed by a trusted authority (%s.ca_file, or the system's roots when unset): %w", key, peer, key, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%s: the TLS certificate of %s is not valid for the name dialled (%s.server_name): %w", key, peer, key, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: the TLS certificate of %s is invalid: %w", key, peer, err)
	case errors.As(err, &verify):
		return fmt.Errorf("%s: the TLS certificate of %s failed verification: %w", key, peer, err)
	case errors.As(err, &header):
		return fmt.Errorf("%s: %s did not answer TLS (a plaintext port?): %w", key, peer, err)
	}
	return err
}
