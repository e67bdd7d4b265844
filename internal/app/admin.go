package app

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
)

// This file holds the two HTTP listeners: admin (probes, metrics, log
// level) and the consent API, each with the configured timeouts.

// Version is consentd's version, exported as consentd_build_info. The
// command sets it from the version stamped at build time.
var Version = "dev"

// listen binds the admin listener and, when the consent API is on, the
// API listener.
func (a *App) listen() error {
	cfg := a.Config.Admin
	tc, err := serverTLS(cfg.TLS)
	if err != nil {
		return err
	}
	ln, err := listenOn("admin.listen", cfg.Listen, tc)
	if err != nil {
		return err
	}
	a.ln = ln
	a.admin = a.newServer(a.AdminHandler())
	if len(a.Config.Admin.AllTokens()) == 0 {
		return nil
	}
	apiLn, err := listenOn("admin.api_listen", cfg.APIListen, tc)
	if err != nil {
		ln.Close()
		return err
	}
	a.apiLn = apiLn
	a.api = a.newServer(a.APIHandler())
	return nil
}

// listenOn binds addr, serving TLS with tc when it is not nil.
func listenOn(setting, addr string, tc *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// serverTLS builds the listeners' TLS configuration (nil when off): TLS
// 1.2 at least, and client certificates required and verified against
// client_ca_file when it is set.
func serverTLS(t config.ServerTLS) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("admin.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin.tls.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func (a *App) newServer(h http.Handler) *http.Server {
	cfg := a.Config.Admin
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(5*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          zap.NewStdLog(a.Log.Named("http")),
	}
}

// serve starts both servers in the background.
func (a *App) serve() {
	run := func(name string, s *http.Server, ln net.Listener) {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error(name+" server", zap.Error(err))
		}
	}
	go run("admin", a.admin, a.ln)
	if a.api != nil {
		go run("consent API", a.api, a.apiLn)
	}
}

// shutdownServers stops both servers, letting requests in flight finish
// for up to 2s.
func (a *App) shutdownServers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.admin.Shutdown(ctx)
	if a.api != nil {
		_ = a.api.Shutdown(ctx)
	}
}

// closeListeners releases the ports when Run fails before serving.
func (a *App) closeListeners() {
	a.ln.Close()
	if a.apiLn != nil {
		a.apiLn.Close()
	}
}

// authenticate returns the token r carries (Authorization: Bearer), if
// it is one of admin.token_file's. Every token is compared, in constant
// time. Without tokens configured nothing is authenticated.
func (a *App) authenticate(r *http.Request) (config.Token, bool) {
	got := []byte(r.Header.Get("Authorization"))
	var found config.Token
	ok := false
	for _, t := range a.Config.Admin.AllTokens() {
		if subtle.ConstantTimeCompare(got, []byte("Bearer "+string(t.Secret))) == 1 {
			found, ok = t, true
		}
	}
	return found, ok
}

// authorized reports whether r carries a token with scope.
func (a *App) authorized(r *http.Request, scope string) bool {
	t, ok := a.authenticate(r)
	return ok && t.Allows(scope)
}

// logLevelHandler serves the log level, zap's AtomicLevel handler:
//
//	GET /loglevel                      {"level":"info"}
//	PUT /loglevel  {"level":"debug"}   behind the bearer token
//
// Without WithLogLevel the level is fixed and /loglevel answers 404.
func (a *App) logLevelHandler(mux *http.ServeMux) {
	if a.level == nil {
		return
	}
	h := a.level
	mux.HandleFunc("/loglevel", func(w http.ResponseWriter, r *http.Request) {
		tok, known := a.authenticate(r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !(known && tok.Allows(config.ScopeAdmin)) {
			status := http.StatusUnauthorized
			if known {
				status = http.StatusForbidden // a valid token without the admin scope
			}
			writeJSON(w, status, map[string]string{"error": "changing the log level needs a token of admin.token_file with the admin scope"})
			a.Log.Info("audit", zap.String("method", r.Method), zap.String("route", "/loglevel"), zap.Int("status", status),
				zap.String("token", tok.Name), zap.String("remote", r.RemoteAddr))
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if r.Method != http.MethodGet {
			a.Log.Info("audit", zap.String("method", r.Method), zap.String("route", "/loglevel"), zap.Int("status", rec.status), zap.String("level", h.Level().String()),
				zap.String("token", tok.Name), zap.String("remote", r.RemoteAddr))
		}
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
