package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/dsr"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
	"github.com/consentd/consentd/kafkaops"
	"github.com/consentd/consentd/policy"
)

const consentUsage = `Usage: consentd consent COMMAND SUBJECT [ARGS] [--config FILE]

Data-subject requests against the consent store:
  get SUBJECT                          print the subject's consent as JSON
  set SUBJECT PURPOSE=true|false ...   grant or deny purposes (others unchanged)
  revoke SUBJECT [PURPOSE ...]         deny the purposes (all when none given)
  link ANONYMOUS_ID USER_ID            record that the anonymous id was identified as the user
  erase SUBJECT                        delete everything stored for the subject and for the
                                       anonymous ids linked to it, after retracting them from
                                       every clean topic (under every live pseudonym key)
  export SUBJECT                       print everything stored about the subject as JSON,
                                       linked ids (both ways) and what is stored for them included

Every change gets a new version and is announced to every running consentd,
which drops the subject from its cache at once. A withdrawal or erasure
returns once no running consentd can write the subject again (the
revocation barrier) and its retractions are the subject's last records.
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
	case "link":
		if len(params) != 1 || params[0] == "" || params[0] == subject {
			return usageError{errors.New("consent link: give ANONYMOUS_ID and a different USER_ID")}
		}
	default:
		return usageError{fmt.Errorf("consent: unknown command %q (get, set, revoke, link, erase, export)", op)}
	}

	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	var pol *policy.Policy
	readOnly := op == "get" || op == "export" || op == "link" // links need no retractions
	if readOnly {
		pol, err = policy.Load(cfg.Policy, nil) // purposes only; no keys needed
	} else {
		pol, err = app.LoadPolicy(cfg) // retractions need the pseudonym key
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, err := app.NewRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := connect.PingRedis(ctx, rdb); err != nil {
		return fmt.Errorf("connecting to the consent store: %w", err)
	}
	var kw *kafka.Writer
	if !readOnly {
		// Changes write retractions: check the brokers accept us first.
		kc, err := connect.NewKafka(ctx, cfg.Kafka)
		if err != nil {
			return err
		}
		if err := kc.Check(ctx); err != nil {
			return fmt.Errorf("connecting to Kafka: %w", err)
		}
		kw = app.NewProducer(cfg, kc)
		defer kw.Close()
	}
	var producer kafkaops.Producer
	if kw != nil {
		producer = kw
	}
	d := app.NewDSR(cfg, pol, rdb, producer, nil)

	var out any
	switch op {
	case "get":
		out, err = d.Get(ctx, subject)
	case "export":
		out, err = d.Export(ctx, subject)
	case "set":
		var purposes map[string]bool
		if purposes, err = parseAssignments(params); err == nil {
			out, err = d.Patch(ctx, subject, purposes)
		}
	case "revoke":
		out, err = d.Revoke(ctx, subject, params)
	case "erase":
		out, err = d.Erase(ctx, subject)
	case "link":
		out, err = d.Link(ctx, subject, params[0])
	}
	var ue *dsr.UsageError
	if errors.As(err, &ue) {
		return usageError{fmt.Errorf("consent %s: %w", op, err)}
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// parseAssignments reads PURPOSE=true|false arguments.
func parseAssignments(params []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, kv := range params {
		p, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, &dsr.UsageError{Msg: fmt.Sprintf("%q: want PURPOSE=true|false", kv)}
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, &dsr.UsageError{Msg: fmt.Sprintf("%q: value must be true or false", kv)}
		}
		out[p] = b
	}
	return out, nil
}
