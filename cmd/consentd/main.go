// Command consentd enforces user consent on behavioural event streams.
//
//	consentd run --config configs/consentd.yaml
//	consentd demo [--duration D] [--users N]
//	consentd policy check configs/policy.yaml [--keys FILE]
//	consentd policy test configs/policy.yaml --cases configs/policy-tests [--update]
//	consentd keygen [KEYID] [--out FILE]
//	consentd consent get|set|revoke|erase|export SUBJECT [--config FILE]
//	consentd consent link ANONYMOUS_ID USER_ID [--config FILE]
//	consentd redis migrate [--dry-run] [--config FILE]
//	consentd dlq replay [--reason R] [--to TOPIC] [--dry-run] [--config FILE]
//	consentd explain FILE|-|--from TOPIC/PARTITION/OFFSET [--consent JSON] [--json]
//	consentd audit [--topics T] [--since 24h] [--ids FILE] [--json]
//	consentd report representation [--from 24h] [--metrics URL] [--chart FILE] [--json]
//	consentd version
//
// Flags and wiring only: every command builds what it needs through the
// composition root (internal/app) and the packages it names.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/internal/demo"
	"github.com/consentd/consentd/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `consentd enforces user consent on behavioural event streams.

Usage:
  consentd run --config FILE        consume raw topics, enforce the policy, write clean topics
  consentd demo [--duration D]      run the real pipeline on an in-process Kafka and Redis
  consentd policy check FILE        validate a policy file and print a summary
  consentd policy test FILE --cases DIR [--update]
                                    decide golden cases with the policy; diff against their expectations
  consentd keygen [KEYID]           print a new pseudonymization key line
  consentd consent get|set|revoke|erase|export SUBJECT [--config FILE]
                                    data-subject requests on the consent store
  consentd consent link ANONYMOUS_ID USER_ID [--config FILE]
                                    record that an anonymous id was identified as a user
  consentd redis migrate [--dry-run] [--config FILE]
                                    move consent keys to the current key schema
  consentd dlq replay [--reason R] [--to TOPIC] [--dry-run] [--config FILE]
                                    re-inject dead letters into their raw topics
  consentd explain FILE|-|--from TOPIC/PARTITION/OFFSET [--consent JSON]
                                    explain what consentd does with one raw event
  consentd audit [--since 24h] [--ids FILE]
                                    check clean topics independently of the code that wrote them
  consentd topics create|check [--partitions N] [--dry-run]
                                    create or check every topic the config and policy name
  consentd shadow report [--since 1h]
                                    summarize the shadow policy's differences
  consentd report representation [--from 24h] [--metrics URL] [--chart FILE] [--json]
                                    how consent changes each output's mix of segments
  consentd version                  print the version

Run 'consentd COMMAND --help' for a command's flags.
`

func main() {
	app.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "keygen":
		err = cmdKeygen(args[1:], stdout, stderr)
	case "consent":
		err = cmdConsent(args[1:], stdout, stderr)
	case "redis":
		err = cmdRedis(args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(args[1:], stdout, stderr)
	case "explain":
		err = cmdExplain(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(args[1:], stdout, stderr)
	case "shadow":
		err = cmdShadow(args[1:], stdout, stderr)
	case "topics":
		err = cmdTopics(args[1:], stdout, stderr)
	case "report":
		err = cmdReport(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "consentd", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "consentd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "consentd:", err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "consentd:", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// loadConfigAndPolicy loads the config file at path and the policy it
// names, with its keys.
func loadConfigAndPolicy(path string) (*config.Config, *policy.Policy, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	pol, err := app.LoadPolicy(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, pol, nil
}

// parseSince reads a --since value: a duration back from now (24h) or an
// RFC 3339 time.
func parseSince(cmd, v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("%s: --since %q: want a duration (24h) or an RFC 3339 time", cmd, v)}
}

// parseArgs parses fs's flags wherever they stand among the positional
// arguments, and returns the positional ones in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for rest := args; ; {
		if err := parse(fs, rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

func newLogger(level string) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	log, err := zc.Build()
	return log, zc.Level, err
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlags("run", "consentd run --config FILE", stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("run: unexpected argument %q", fs.Arg(0))}
	}
	cfg, pol, err := loadConfigAndPolicy(*path)
	if err != nil {
		return err
	}
	log, level, err := newLogger(cfg.Log.Level)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	a, err := app.New(cfg, pol, log, app.WithLogLevel(level))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "consentd demo [--duration 4s] [--users 3000] [--shadow-policy FILE] [--chart FILE]", stderr)
	opts := demo.DefaultOptions()
	fs.DurationVar(&opts.Duration, "duration", opts.Duration, "how long to stream synthetic events")
	fs.IntVar(&opts.Users, "users", opts.Users, "synthetic users with seeded consent")
	fs.StringVar(&opts.ShadowPolicy, "shadow-policy", "", "a policy file to decide as a shadow beside the embedded one; the report sums its differences")
	fs.StringVar(&opts.Chart, "chart", "", "draw the representation report's chart into FILE (.svg, .png or .pdf)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return demo.Run(ctx, opts, stdout)
}

const policyUsage = `Usage:
  consentd policy check FILE [--keys KEYFILE]
  consentd policy test FILE --cases DIR [--update]`

func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "test" {
		return cmdPolicyTest(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(stdout, policyUsage)
			return nil
		}
		return usageError{errors.New(policyUsage)}
	}
	fs := newFlags("policy check", "consentd policy check FILE [--keys KEYFILE]", stderr)
	keysPath := fs.String("keys", "", "pseudonymization key file; when given, every key id the policy uses must be in it")
	// Accept the file before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		file, rest = rest[0], rest[1:]
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		return usageError{errors.New("policy check takes exactly one FILE")}
	}
	var keys *policy.Keyring
	if *keysPath != "" {
		if err := config.CheckSecretFile("--keys", *keysPath); err != nil {
			return err
		}
		data, err := os.ReadFile(*keysPath)
		if err != nil {
			return err
		}
		if keys, err = policy.ParseKeyring(*keysPath, data); err != nil {
			return err
		}
	}
	p, err := policy.Load(file, keys)
	if err != nil {
		return fmt.Errorf("policy is invalid:\n%w", err)
	}
	fmt.Fprint(stdout, p.Summary())
	fmt.Fprint(stdout, p.SignalSummary())
	if keys == nil {
		fmt.Fprintln(stdout, "key ids not checked against a key file (pass --keys FILE)")
	}
	fmt.Fprintf(stdout, "policy digest %s (header consentd-policy-sha256 on every clean message it decides)\n", p.Digest)
	fmt.Fprintln(stdout, "policy OK")
	return nil
}

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "consentd keygen [KEYID] [--out FILE [--append]]", stderr)
	out := fs.String("out", "", "write the key line to FILE (mode 0600) unless FILE exists; default: print it")
	appendTo := fs.Bool("append", false, "with --out: add the key to an existing FILE (a key rotation); FILE must not be readable by others and must not hold KEYID")
	id := "k1"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("keygen: unexpected argument %q", fs.Arg(0))}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	line := id + ":" + base64.StdEncoding.EncodeToString(secret)
	if _, err := policy.ParseKeyring("keygen", []byte(line)); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stdout, line)
		return nil
	}
	if *appendTo {
		return appendKey(*out, id, line, stdout)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		fmt.Fprintf(stdout, "%s exists; keeping its keys\n", *out)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote key %s to %s\n", id, *out)
	return nil
}

// appendKey adds a key line to an existing key file (a rotation), which
// must stay private and must not already hold the key id; the file with
// the line added must still parse.
func appendKey(path, id, line string, stdout io.Writer) error {
	if err := config.CheckSecretFile("--out", path); err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	keys, err := policy.ParseKeyring(path, old)
	if err != nil {
		return fmt.Errorf("keygen --append: %w", err)
	}
	if keys.Has(id) {
		return fmt.Errorf("keygen --append: %s already holds key %s", path, id)
	}
	sep := ""
	if len(old) > 0 && old[len(old)-1] != '\n' {
		sep = "\n"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprint(f, sep+line+"\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added key %s to %s\n", id, path)
	return nil
}
