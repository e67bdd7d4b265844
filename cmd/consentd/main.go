// Command consentd enforces user consent on behavioural event streams.
//
//	consentd run --config configs/consentd.yaml
//	consentd help
//
// The command tree is commands (one table: usage, help and the shell
// completion scripts come from it). Flags and wiring only: every command
// builds what it needs through the composition root (internal/app) and
// the packages it names.
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
	"github.com/consentd/consentd/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// commands is consentd's command tree.
func commands() *command {
	root := &command{name: "consentd", summary: "enforces user consent on behavioural event streams", sub: []*command{
		{name: "run", args: "--config FILE", summary: "consume raw topics, enforce the policy, write clean topics", run: cmdRun},
		demoCommand(),
		{name: "config", summary: "the configuration file", sub: []*command{
			{name: "check", args: "[--config FILE] [--json]", summary: "validate the config, its policy and key files without connecting", run: cmdConfigCheck},
		}},
		{name: "policy", summary: "policy files", sub: []*command{
			{name: "check", args: "FILE [--keys FILE] [--json]", summary: "validate a policy file and print a summary", run: cmdPolicyCheck},
			{name: "test", args: "FILE --cases DIR [--update] [--json]", summary: "decide golden cases with the policy; diff against their expectations", run: cmdPolicyTest},
		}},
		{name: "keygen", args: "[KEYID] [--out FILE]", summary: "print a new pseudonymization key line", run: cmdKeygen},
		{name: "consent", summary: "data-subject requests on the consent store", help: consentHelp, sub: consentCommands()},
		{name: "redis", summary: "the consent store", sub: []*command{
			{name: "migrate", args: "[--dry-run] [--json] [--config FILE]", summary: "move consent keys to the current key schema", run: cmdRedisMigrate},
		}},
		{name: "dlq", summary: "dead letters", sub: []*command{
			{name: "replay", args: "[--reason R] [--to TOPIC] [--dry-run] [--config FILE]", summary: "re-inject dead letters into their raw topics", run: cmdDLQReplay},
		}},
		{name: "explain", args: "FILE|-|--from TOPIC/PARTITION/OFFSET [--consent JSON] [--json]", summary: "explain what consentd does with one raw event", run: cmdExplain},
		{name: "audit", args: "[--since 24h] [--ids FILE] [--json]", summary: "check clean topics independently of the code that wrote them", run: cmdAudit},
		{name: "topics", summary: "the Kafka topics the config and policy name", help: topicsHelp, sub: []*command{
			{name: "create", args: "[--partitions N] [--alter] [--dry-run] [--json]", summary: "create the missing topics with the settings they must have", run: topicsCommand("create")},
			{name: "check", args: "[--json]", summary: "report missing topics and settings that differ", run: topicsCommand("check")},
		}},
		{name: "shadow", summary: "the shadow policy", sub: []*command{
			{name: "report", args: "[--since 1h] [--json]", summary: "summarize the shadow policy's differences", run: cmdShadowReport},
		}},
		{name: "report", summary: "reports on what consent filtering does", sub: []*command{
			{name: "representation", args: "[--from 24h] [--to T] [--metrics URL] [--chart FILE] [--json]", summary: "how consent changes each output's mix of segments", run: cmdReportRepresentation},
		}},
		{name: "healthcheck", args: "[--config FILE] [--url URL]", summary: "exit 0 when the admin server says ready (container healthchecks)", run: cmdHealthcheck},
		{name: "completion", summary: "shell completion scripts", help: completionHelp, sub: completionCommands()},
		{name: "version", args: "[--json]", summary: "print the version", run: cmdVersion},
	}}
	root.sub = append(root.sub, &command{name: "help", args: "[COMMAND...]", summary: "print a command's usage",
		run: func(args []string, stdout, stderr io.Writer) error {
			if wantsHelp(args) {
				fmt.Fprintln(stdout, "Usage: consentd help [COMMAND...]\n\nPrints the usage of consentd or of a command.")
				return nil
			}
			c, path, rest := root.find(args)
			if len(rest) > 0 {
				return usageError{fmt.Errorf("help: unknown command %q", strings.Join(append(path[1:], rest[0]), " "))}
			}
			if c.run == nil {
				c.printUsage(stdout, path)
				return nil
			}
			return c.run([]string{"--help"}, stdout, stdout)
		}})
	return root
}

func main() {
	app.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--version" {
		args = append([]string{"version"}, args[1:]...)
	}
	c, path, rest := commands().find(args)
	err := c.exec(path, rest, stdout, stderr)
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

func newLogger(level, timeFormat string) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	if timeFormat == "iso8601" {
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	log, err := zc.Build()
	return log, zc.Level, err
}

func cmdRun(args []string, _, stderr io.Writer) error {
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
	log, level, err := newLogger(cfg.Log.Level, cfg.Log.TimeFormat)
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
