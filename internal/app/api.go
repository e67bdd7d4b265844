package app

import (
	"context"
	"crypto/subtle"
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
	token := []byte("Bearer " + string(a.Config.Admin.Token))
	handle := func(pattern string, fn func(ctx context.Context, r *http.Request, subject string) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), token) != 1 {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
				return
			}
			subject := r.PathValue("subject")
			if subject == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "empty subject"})
				return
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
			case err != nil:
				a.Log.Warn("consent API request failed", zap.String("route", pattern), zap.Error(err))
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "consent store or Kafka unavailable; nothing was changed or the change is incomplete, retry"})
			default:
				writeJSON(w, http.StatusOK, out)
			}
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
