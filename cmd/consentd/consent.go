package main

import (
	"context"
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
	"github.com/consentd/consentd/internal/lib/progress"
	"github.com/consentd/consentd/policy"
)

// consentHelp is the consent group's description.
const consentHelp = `Data-subject requests against the consent store. Every change gets a new
version and is announced to every running consentd, which drops the
subject from its cache at once. A withdrawal or erasure returns once no
running consentd can write the subject again (the revocation barrier) and
its retractions are the subject's last records. Each prints its result
as JSON on stdout and an audit line on stderr.`

// consentCommands are the data-subject requests, one leaf each.
func consentCommands() []*command {
	ops := []struct{ op, args, summary string }{
		{"get", "SUBJECT", "print the subject's consent as JSON"},
		{"set", "SUBJECT PURPOSE=true|false ...", "grant or deny purposes (others unchanged)"},
		{"revoke", "SUBJECT [PURPOSE ...]", "deny the purposes (all when none given)"},
		{"link", "ANONYMOUS_ID USER_ID", "record that an anonymous id was identified as a user"},
		{"erase", "SUBJECT", "delete everything stored for the subject and its linked ids, retracting them first"},
		{"export", "SUBJECT", "print everything stored about the subject and its linked ids as JSON"},
	}
	var out []*command
	for _, o := range ops {
		synopsis := "consentd consent " + o.op + " " + o.args + " [--config FILE]\n\n" + strings.ToUpper(o.summary[:1]) + o.summary[1:] + "."
		out = append(out, &command{name: o.op, args: o.args, summary: o.summary, run: func(args []string, stdout, stderr io.Writer) error {
			return cmdConsent(o.op, synopsis, args, stdout, stderr)
		}})
	}
	return out
}

func cmdConsent(op, synopsis string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("consent "+op, synopsis, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config `file`")
	fs.Bool("json", true, "print the result as JSON (always: accepted for scripts that pass it to every command)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	req, err := parseConsentRequest(append([]string{op}, pos...))
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
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
	out, err := req.do(ctx, d, stderr)
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
	return printJSON(stdout, out)
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

// exportProgressFrom is the number of linked ids from which an export
// shows its progress.
const exportProgressFrom = 1000

// readOnly: reads and links write no retractions, so they need neither
// Kafka nor the pseudonym key.
func (r consentRequest) readOnly() bool { return r.op == "get" || r.op == "export" || r.op == "link" }

// do runs the request; an export of many linked ids shows its progress on
// stderr.
func (r consentRequest) do(ctx context.Context, d *dsr.DSR, stderr io.Writer) (any, error) {
	switch r.op {
	case "get":
		return d.Get(ctx, r.subject)
	case "export":
		var meter *progress.Meter
		defer func() { meter.Finish() }()
		return d.ExportProgress(ctx, r.subject, func(done, total int) {
			if meter == nil && total >= exportProgressFrom {
				meter = progress.New(stderr, "exporting", "linked ids", int64(total))
			}
			meter.Set(int64(done))
		})
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
