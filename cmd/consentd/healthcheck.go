package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/consentd/consentd/config"
)

const healthcheckUsage = `consentd healthcheck [--config FILE] [--url URL] [--timeout 2s] [--cert FILE --key FILE]

Asks a running consentd's admin server whether it is ready (GET /readyz
at admin.listen of the config, or at --url) and exits 0 when it answers
200, 1 otherwise with a one-line reason: the container healthcheck of an
image with no shell or curl. A listener on every interface (0.0.0.0, [::])
is asked at 127.0.0.1 (a Linux listener on [::] takes IPv4 too, and a
container may have no IPv6 loopback). With admin.tls, the loopback's
certificate is not verified (the probe sends nothing secret). With
admin.tls.client_ca_file the probe must present a client certificate:
--cert/--key, or by default the admin server's own certificate, which
then needs the client-auth key usage and a chain to client_ca_file.
Every failure, a wrong flag included, exits 1 (Docker reserves 2).`

func cmdHealthcheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", healthcheckUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config `file` (admin.listen, admin.tls)")
	url := fs.String("url", "", "readiness `URL` to ask instead of the config's (http://127.0.0.1:9464/readyz)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	certFile := fs.String("cert", "", "client certificate `file` to present when admin.tls.client_ca_file is set (default: admin.tls.cert_file)")
	keyFile := fs.String("key", "", "the key `file` of --cert")
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("healthcheck: unexpected argument %q", pos[0])
	}
	var ue usageError
	if errors.As(err, &ue) {
		err = ue.error // exit 1, not 2
	}
	if err == nil && (*certFile == "") != (*keyFile == "") {
		err = errors.New("healthcheck: --cert and --key go together")
	}
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout}
	var mutual bool
	target := *url
	if target == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		if *certFile != "" {
			cfg.Admin.TLS.CertFile, cfg.Admin.TLS.KeyFile = *certFile, *keyFile
		}
		if target, client.Transport, err = readinessTarget(cfg.Admin); err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		mutual = cfg.Admin.TLS.Enabled() && cfg.Admin.TLS.ClientCAFile != ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: --url: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if mutual && *certFile == "" {
			return fmt.Errorf("healthcheck: %w (admin.tls.client_ca_file is set: the probe presented admin.tls.cert_file, which needs the client-auth key usage and a chain to client_ca_file; or pass a client certificate with --cert/--key)", err)
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	line = strings.TrimSpace(line)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", target, resp.Status, line)
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// readinessTarget is the readiness URL of the admin listener a, and the
// transport that reaches it.
func readinessTarget(a config.Admin) (string, http.RoundTripper, error) {
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return "", nil, fmt.Errorf("admin.listen %q: %w", a.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.TLS.Enabled() {
		scheme = "https"
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			tc.InsecureSkipVerify = true //nolint:gosec // the loopback: the probe sends nothing secret
		}
		if a.TLS.ClientCAFile != "" {
			cert, err := tls.LoadX509KeyPair(a.TLS.CertFile, a.TLS.KeyFile)
			if err != nil {
				return "", nil, fmt.Errorf("admin.tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", tr, nil
}
