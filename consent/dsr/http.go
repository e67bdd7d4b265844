package dsr

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/retry"
)

// Handler returns the consent API over d, behind authorize (a bearer
// token check; a request it refuses gets 401). Every call is logged as
// one audit line on log:
//
//	GET    /v1/consent/{subject}          consent per purpose
//	GET    /v1/consent/{subject}/export   everything stored
//	PUT    /v1/consent/{subject}          body {"purpose": true|false, ...}
//	POST   /v1/consent/{subject}/revoke   body {"purposes": [...]} (optional: all)
//	DELETE /v1/consent/{subject}          erase
//	PUT    /v1/identity/{subject}         body {"userId": "..."}: link an anonymous id
//
// Reads need the read scope, changes the write scope: a caller without it
// gets 403, one without a valid token 401.
func Handler(d *DSR, authenticate func(*http.Request) (Caller, bool), log *zap.Logger) http.Handler {
	a := &api{dsr: d, authenticate: authenticate, log: log}
	mux := http.NewServeMux()
	a.routes(mux)
	return mux
}

// Caller is who made an API call: the name of its bearer token (logged in
// the audit line) and the scopes it holds.
type Caller struct {
	Name   string
	Allows func(scope string) bool
}

// The scopes API routes need.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

type api struct {
	dsr          *DSR
	authenticate func(*http.Request) (Caller, bool)
	log          *zap.Logger
}

// RequestTimeout bounds one API request.
const RequestTimeout = 30 * time.Second

func (a *api) routes(mux *http.ServeMux) {
	dsr := a.dsr
	handle := func(pattern string, fn func(ctx context.Context, r *http.Request, subject string) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			caller, ok := a.authenticate(r)
			status := a.serve(w, r, caller, ok, pattern, fn)
			a.audit(r, caller.Name, pattern, status)
		})
	}
	handle("GET /v1/consent/{subject}", func(ctx context.Context, _ *http.Request, s string) (any, error) { return dsr.Get(ctx, s) })
	handle("GET /v1/consent/{subject}/export", func(ctx context.Context, _ *http.Request, s string) (any, error) { return dsr.Export(ctx, s) })
	handle("DELETE /v1/consent/{subject}", func(ctx context.Context, _ *http.Request, s string) (any, error) { return dsr.Erase(ctx, s) })
	handle("PUT /v1/consent/{subject}", func(ctx context.Context, r *http.Request, s string) (any, error) {
		var body map[string]bool
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
		return dsr.Patch(ctx, s, body)
	})
	handle("PUT /v1/identity/{subject}", func(ctx context.Context, r *http.Request, s string) (any, error) {
		var body struct {
			UserID string `json:"userId"`
		}
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
		return dsr.Link(ctx, s, body.UserID)
	})
	handle("POST /v1/consent/{subject}/revoke", func(ctx context.Context, r *http.Request, s string) (any, error) {
		var body struct {
			Purposes []string `json:"purposes"`
		}
		if r.ContentLength != 0 {
			if err := decodeBody(r, &body); err != nil {
				return nil, err
			}
		}
		return dsr.Revoke(ctx, s, body.Purposes)
	})
}

// usageClass sorts a request's errors: the requester's mistakes are
// refused, anything else (the store, Kafka) transient.
func usageClass(err error) retry.Class {
	var ue *UsageError
	if errors.As(err, &ue) {
		return retry.Refused
	}
	return retry.Transient
}

// serve answers one consent API request and returns its status code. A
// read is tried twice on a transient store error; a change once (it may
// have been partly applied: the caller retries it whole).
func (a *api) serve(w http.ResponseWriter, r *http.Request, caller Caller, authenticated bool, pattern string, fn func(ctx context.Context, r *http.Request, subject string) (any, error)) int {
	if !authenticated {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
		return http.StatusUnauthorized
	}
	scope := ScopeWrite
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		scope = ScopeRead
	}
	if !caller.Allows(scope) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "token " + caller.Name + " lacks the " + scope + " scope"})
		return http.StatusForbidden
	}
	subject := r.PathValue("subject")
	if subject == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "empty subject"})
		return http.StatusBadRequest
	}
	ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
	defer cancel()
	attempts := 1
	if r.Method == http.MethodGet {
		attempts = 2
	}
	var out any
	again := retry.Backoff{Min: time.Millisecond, Max: time.Millisecond} // a second read at once
	err := retry.Do(ctx, retry.Policy{Backoff: again, Classify: usageClass, MaxAttempts: attempts}, func() (err error) {
		out, err = fn(ctx, r, subject)
		return err
	})
	switch {
	case err != nil && usageClass(err) == retry.Refused:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return http.StatusBadRequest
	case err != nil:
		a.log.Warn("consent API request failed", zap.String("route", pattern), zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "consent store or Kafka unavailable; nothing was changed or the change is incomplete, retry"})
		return http.StatusServiceUnavailable
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

// audit logs one line per consent API call: method, route (the pattern,
// never the path, which holds the subject id), status and result, the
// caller's token name ("" when unauthenticated) and remote address, and
// the subject's pseudonym under the policy's pseudonym key, so that calls
// about one subject can be correlated without the log holding the id.
func (a *api) audit(r *http.Request, token, route string, status int) {
	result := "ok"
	switch {
	case status == http.StatusUnauthorized:
		result = "unauthorized"
	case status == http.StatusForbidden:
		result = "forbidden"
	case status >= 500:
		result = "failed"
	case status >= 400:
		result = "refused"
	}
	pseudonym := "none"
	if s := r.PathValue("subject"); s != "" {
		if p, err := a.dsr.Policy.PseudonymousKey(s); err == nil {
			pseudonym = string(p)
		} else {
			pseudonym = "unavailable"
		}
	}
	a.log.Info("audit",
		zap.String("method", r.Method),
		zap.String("route", route),
		zap.Int("status", status),
		zap.String("result", result),
		zap.String("token", token),
		zap.String("remote", r.RemoteAddr),
		zap.String("subject_pseudonym", pseudonym))
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &UsageError{Msg: "invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
