package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent/dsr"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/connect"
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
	req, err := parseConsentRequest(rest)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, closeAll, err := openDSR(ctx, cfg, req.readOnly())
	if err != nil {
		auditCLI(cfg, stderr, req, "failed")
		return err
	}
	defer closeAll()
	out, err := req.do(ctx, d)
	result := "ok"
	var ue *dsr.UsageError
	switch {
	case errors.As(err, &ue):
		result = "refused"
	case err != nil:
		result = "failed"
	}
	auditCLI(cfg, stderr, req, result)
	if errors.As(err, &ue) {
		return usageError{fmt.Errorf("consent %s: %w", req.op, err)}
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// consentRequest is one parsed consent command.
type consentRequest struct {
	op, subject string
	params      []string
}

// parseConsentRequest checks COMMAND SUBJECT [ARGS] before anything is
// connected.
func parseConsentRequest(rest []string) (consentRequest, error) {
	op := rest[0]
	if len(rest) < 2 || rest[1] == "" {
		return consentRequest{}, usageError{fmt.Errorf("consent %s: missing SUBJECT", op)}
	}
	r := consentRequest{op: op, subject: rest[1], params: rest[2:]}
	switch op {
	case "get", "erase", "export":
		if len(r.params) > 0 {
			return r, usageError{fmt.Errorf("consent %s takes only SUBJECT", op)}
		}
	case "set":
		if len(r.params) == 0 {
			return r, usageError{errors.New("consent set: give at least one PURPOSE=true|false")}
		}
	case "revoke":
	case "link":
		if len(r.params) != 1 || r.params[0] == "" || r.params[0] == r.subject {
			return r, usageError{errors.New("consent link: give ANONYMOUS_ID and a different USER_ID")}
		}
	default:
		return r, usageError{fmt.Errorf("consent: unknown command %q (get, set, revoke, link, erase, export)", op)}
	}
	return r, nil
}

// readOnly: reads and links write no retractions, so they need neither
// Kafka nor the pseudonym key.
func (r consentRequest) readOnly() bool { return r.op == "get" || r.op == "export" || r.op == "link" }

func (r consentRequest) do(ctx context.Context, d *dsr.DSR) (any, error) {
	switch r.op {
	case "get":
		return d.Get(ctx, r.subject)
	case "export":
		return d.Export(ctx, r.subject)
	case "set":
		purposes, err := parseAssignments(r.params)
		if err != nil {
			return nil, err
		}
		return d.Patch(ctx, r.subject, purposes)
	case "revoke":
		return d.Revoke(ctx, r.subject, r.params)
	case "erase":
		return d.Erase(ctx, r.subject)
	default: // link
		return d.Link(ctx, r.subject, r.params[0])
	}
}

// openDSR connects to the consent store and, for changes, to Kafka (for
// retractions), and returns the data-subject request service and what
// closes the connections.
func openDSR(ctx context.Context, cfg *config.Config, readOnly bool) (*dsr.DSR, func(), error) {
	var pol *policy.Policy
	var err error
	if readOnly {
		pol, err = policy.Load(cfg.Policy, nil) // purposes only; no keys needed
	} else {
		pol, err = app.LoadPolicy(cfg) // retractions need the pseudonym key
	}
	if err != nil {
		return nil, nil, err
	}
	rdb, err := app.NewRedis(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := connect.PingRedis(ctx, rdb); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("connecting to the consent store: %w", err)
	}
	if readOnly {
		return app.NewDSR(cfg, pol, rdb, nil, nil), func() { rdb.Close() }, nil
	}
	// Changes write retractions: check the brokers accept us first.
	kc, err := connect.NewKafka(ctx, cfg.Kafka)
	if err == nil {
		err = kc.Check(ctx)
		if err != nil {
			err = fmt.Errorf("connecting to Kafka: %w", err)
		}
	}
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	kw := app.NewProducer(cfg, kc)
	return app.NewDSR(cfg, pol, rdb, kw, nil), func() { kw.Close(); rdb.Close() }, nil
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

// auditCLI writes the audit line of a data-subject command to stderr, as
// the consent API logs its calls: the command, the result, who ran it (the
// operating-system user) and the subject's pseudonym under the policy's
// key (never the id; "unavailable" without the key file).
func auditCLI(cfg *config.Config, w io.Writer, req consentRequest, result string) {
	pseudonym := "unavailable"
	if pol, err := app.LoadPolicy(cfg); err == nil {
		if p, err := pol.PseudonymousKey(req.subject); err == nil {
			pseudonym = string(p)
		}
	}
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), zap.InfoLevel))
	log.Info("audit",
		zap.String("command", "consent "+req.op),
		zap.String("result", result),
		zap.String("os_user", who),
		zap.String("subject_pseudonym", pseudonym))
	_ = log.Sync()
}
