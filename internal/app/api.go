package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// consentAPI serves data-subject requests over HTTP, behind a bearer token:
//
//	GET    /v1/consent/{subject}          consent per purpose
//	GET    /v1/consent/{subject}/export   everything stored
//	PUT    /v1/consent/{subject}          body {"purpose": true|false, ...}
//	POST   /v1/consent/{subject}/revoke   body {"purposes": [...]} (optional: all)
//	DELETE /v1/consent/{subject}          erase
//	PUT    /v1/identity/{subject}         body {"userId": "..."}: link an anonymous id
func (a *App) consentAPI(mux *http.ServeMux) {
	dsr := NewDSR(a.Config, a.Policy, a.Redis, a.Producer)
	handle := func(pattern string, fn func(ctx context.Context, r *http.Request, subject string) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status := a.serveAPI(w, r, pattern, fn)
			a.audit(r, pattern, status)
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
		return dsr.Set(ctx, s, body)
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

// serveAPI answers one consent API request and returns its status code.
func (a *App) serveAPI(w http.ResponseWriter, r *http.Request, pattern string, fn func(ctx context.Context, r *http.Request, subject string) (any, error)) int {
	if !a.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
		return http.StatusUnauthorized
	}
	subject := r.PathValue("subject")
	if subject == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "empty subject"})
		return http.StatusBadRequest
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := fn(ctx, r, subject)
	var ue *UsageError
	if err != nil && !errors.As(err, &ue) && r.Method == http.MethodGet {
		// A read may be retried once on a transient store error.
		out, err = fn(ctx, r, subject)
	}
	switch {
	case errors.As(err, &ue):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return http.StatusBadRequest
	case err != nil:
		a.Log.Warn("consent API request failed", zap.String("route", pattern), zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "consent store or Kafka unavailable; nothing was changed or the change is incomplete, retry"})
		return http.StatusServiceUnavailable
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

// audit logs one line per consent API call: method, route (the pattern,
// never the path, which holds the subject id), status and result, and the
// subject's pseudonym under the policy's pseudonym key, so that calls
// about one subject can be correlated without the log holding the id.
func (a *App) audit(r *http.Request, route string, status int) {
	result := "ok"
	switch {
	case status == http.StatusUnauthorized:
		result = "unauthorized"
	case status >= 500:
		result = "failed"
	case status >= 400:
		result = "refused"
	}
	pseudonym := "none"
	if s := r.PathValue("subject"); s != "" {
		if p, err := a.Policy.PseudonymousKey(s); err == nil {
			pseudonym = string(p)
		} else {
			pseudonym = "unavailable"
		}
	}
	a.Log.Info("audit",
		zap.String("method", r.Method),
		zap.String("route", route),
		zap.Int("status", status),
		zap.String("result", result),
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
