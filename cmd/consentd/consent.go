package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

const consentUsage = `Usage: consentd consent COMMAND SUBJECT [ARGS] [--config FILE]

Data-subject requests against the consent store:
  get SUBJECT                          print the subject's consent as JSON
  set SUBJECT PURPOSE=true|false ...   grant or deny purposes (others unchanged)
  revoke SUBJECT [PURPOSE ...]         deny the purposes (all when none given)
  erase SUBJECT                        delete the subject's consent record
  export SUBJECT                       print everything stored about the subject as JSON

Every change gets a new version and is announced to every running consentd,
which drops the subject from its cache at once.
--config defaults to configs/consentd.yaml.
`

// splitConfigFlag takes --config FILE (or --config=FILE) out of args.
func splitConfigFlag(args []string) (path string, rest []string, err error) {
	path = "configs/consentd.yaml"
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--config" || a == "-config":
			if i+1 >= len(args) {
				return "", nil, usageError{errors.New("--config needs a file")}
			}
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			path = a[strings.Index(a, "=")+1:]
		case a == "--help" || a == "-h":
			return "", nil, errHelp
		case strings.HasPrefix(a, "-"):
			return "", nil, usageError{fmt.Errorf("unknown flag %s", a)}
		default:
			rest = append(rest, a)
		}
	}
	return path, rest, nil
}

var errHelp = errors.New("help")

func cmdConsent(args []string, stdout, stderr io.Writer) error {
	path, rest, err := splitConfigFlag(args)
	if errors.Is(err, errHelp) || (err == nil && len(rest) == 0) {
		fmt.Fprint(stdout, consentUsage)
		if len(rest) == 0 && err == nil {
			return usageError{errors.New("consent: missing COMMAND and SUBJECT")}
		}
		return nil
	}
	if err != nil {
		return err
	}
	op := rest[0]
	if len(rest) < 2 || rest[1] == "" {
		return usageError{fmt.Errorf("consent %s: missing SUBJECT", op)}
	}
	subject, params := rest[1], rest[2:]
	switch op {
	case "get", "erase", "export":
		if len(params) > 0 {
			return usageError{fmt.Errorf("consent %s takes only SUBJECT", op)}
		}
	case "set":
		if len(params) == 0 {
			return usageError{errors.New("consent set: give at least one PURPOSE=true|false")}
		}
	case "revoke":
	default:
		return usageError{fmt.Errorf("consent: unknown command %q (get, set, revoke, erase, export)", op)}
	}

	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	var pol *policy.Policy
	if op == "get" || op == "export" {
		pol, err = policy.Load(cfg.Policy, nil) // purposes only; no keys needed
	} else {
		pol, err = app.LoadPolicy(cfg) // retractions need the pseudonym key
	}
	if err != nil {
		return err
	}
	rdb := app.NewRedis(cfg)
	defer rdb.Close()
	w := redisstore.NewWriter(rdb, cfg.Redis.KeyPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Changes that withdraw consent first retract what the clean topics
	// hold about the subject, then store the change.
	retract := func(purposes []string, erased bool) ([]string, error) {
		kw := app.NewWriter(cfg)
		defer kw.Close()
		reason := pipeline.RetractRevoked
		if erased {
			reason = pipeline.RetractErased
		}
		prev, err := redisstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Redis.Timeout, nil).Lookup(ctx, []string{subject})
		if err != nil {
			return nil, err
		}
		if !erased {
			next := map[string]bool{}
			for _, p := range pol.Purposes {
				next[p] = prev[subject].Allows(p)
			}
			for _, p := range purposes {
				next[p] = false
			}
			if purposes = consent.Withdrawn(prev[subject], next, pol.Purposes); len(purposes) == 0 {
				return nil, nil
			}
		}
		r := &pipeline.Retractor{Policy: pol, Writer: kw}
		return r.Retract(ctx, subject, purposes, reason, prev[subject].Version)
	}

	var out any
	switch op {
	case "get":
		st, err := w.Read(ctx, subject)
		if err != nil {
			return err
		}
		out = view(subject, st, pol.Purposes)
	case "export":
		st, err := w.Read(ctx, subject)
		if err != nil {
			return err
		}
		out = map[string]any{"subject": subject, "consent": view(subject, st, pol.Purposes), "stored": st}
	case "set", "revoke":
		purposes, err := parsePurposes(op, params, pol.Purposes)
		if err != nil {
			return err
		}
		var denied []string
		for p, g := range purposes {
			if !g {
				denied = append(denied, p)
			}
		}
		topics, err := retract(denied, false)
		if err != nil {
			return err
		}
		v, err := w.Patch(ctx, subject, purposes)
		if err != nil {
			return err
		}
		out = map[string]any{"subject": subject, "version": v, "changed": purposes, "retracted_from": nonNil(topics)}
	case "erase":
		topics, err := retract(pol.Purposes, true)
		if err != nil {
			return err
		}
		existed, err := w.Erase(ctx, subject)
		if err != nil {
			return err
		}
		out = map[string]any{"subject": subject, "erased": existed, "retracted_from": nonNil(topics)}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func parsePurposes(op string, params, known []string) (map[string]bool, error) {
	out := map[string]bool{}
	if op == "revoke" {
		if len(params) == 0 {
			params = known
		}
		for _, p := range params {
			if !slices.Contains(known, p) {
				return nil, usageError{fmt.Errorf("consent revoke: unknown purpose %q (policy purposes: %s)", p, strings.Join(known, ", "))}
			}
			out[p] = false
		}
		return out, nil
	}
	for _, kv := range params {
		p, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("consent set: %q: want PURPOSE=true|false", kv)}
		}
		if !slices.Contains(known, p) {
			return nil, usageError{fmt.Errorf("consent set: unknown purpose %q (policy purposes: %s)", p, strings.Join(known, ", "))}
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usageError{fmt.Errorf("consent set: %q: value must be true or false", kv)}
		}
		out[p] = b
	}
	return out, nil
}

type consentView struct {
	Subject   string          `json:"subject"`
	Found     bool            `json:"found"`
	Expired   bool            `json:"expired,omitempty"`
	Invalid   string          `json:"invalid,omitempty"`
	Version   int64           `json:"version,omitempty"`
	ExpiresAt string          `json:"expires_at,omitempty"`
	Purposes  map[string]bool `json:"purposes"`
}

// view decodes a stored record the way the pipeline does, for every
// policy purpose.
func view(subject string, st redisstore.Stored, purposes []string) consentView {
	now := time.Now()
	rec, err := redisstore.Decode(st.Fields, now)
	v := consentView{Subject: subject, Found: rec.Found, Version: rec.Version, Purposes: map[string]bool{}}
	if err != nil {
		v.Invalid = err.Error()
	}
	if e, ok := st.Fields[redisstore.ExpiresField]; ok {
		if ms, err := strconv.ParseInt(e, 10, 64); err == nil {
			v.ExpiresAt = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
			v.Expired = now.UnixMilli() >= ms
		}
	}
	for _, p := range purposes {
		v.Purposes[p] = rec.Allows(p)
	}
	return v
}
