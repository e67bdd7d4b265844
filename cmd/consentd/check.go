package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/policy"
)

// policySummary is what policy check and config check print with --json.
type policySummary struct {
	File                string          `json:"file"`
	Version             string          `json:"version"`
	Digest              string          `json:"digest"`
	Purposes            []string        `json:"purposes"`
	PseudonymKey        string          `json:"pseudonym_key"`
	PerOutputPseudonyms bool            `json:"per_output_pseudonyms"`
	Outputs             []outputSummary `json:"outputs"`
	Warnings            []string        `json:"warnings"`
	// KeysChecked says whether the policy's key ids were checked against
	// a key file (KeyFile, "$VAR" for pseudonymization.key_env).
	KeysChecked bool   `json:"keys_checked"`
	KeyFile     string `json:"key_file,omitempty"`
}

type outputSummary struct {
	Name       string   `json:"name"`
	Topic      string   `json:"topic"`
	Require    []string `json:"require"`
	Types      []string `json:"types,omitempty"`
	Events     []string `json:"events,omitempty"`
	Transforms []string `json:"transforms"`
}

func summarizePolicy(file string, p *policy.Policy, keyFile string) policySummary {
	s := policySummary{File: file, Version: p.Version, Digest: p.Digest, Purposes: p.Purposes, PseudonymKey: p.PseudonymKey,
		PerOutputPseudonyms: p.PerOutputPseudonyms, Outputs: []outputSummary{}, Warnings: append([]string{}, p.Warnings...),
		KeysChecked: keyFile != "", KeyFile: keyFile}
	for _, o := range p.Outputs {
		os := outputSummary{Name: o.Name, Topic: o.Topic, Require: o.Require, Types: o.Types, Events: o.Events, Transforms: []string{}}
		for _, t := range o.Transforms {
			os.Transforms = append(os.Transforms, fmt.Sprint(t))
		}
		s.Outputs = append(s.Outputs, os)
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const policyCheckUsage = `consentd policy check FILE [--keys KEYFILE] [--json]

Validates a policy file, reporting every problem, and prints a summary:
purposes, outputs and their transforms, the consent signals that can
withhold each purpose, and the policy's digest. With --keys, every key id
the policy uses must be in the key file (which must not be readable by
others). Exits 1 when the policy is invalid.`

func cmdPolicyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy check", policyCheckUsage, stderr)
	keysPath := fs.String("keys", "", "pseudonymization key `file`; when given, every key id the policy uses must be in it")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageError{fmt.Errorf("policy check takes exactly one FILE, got %d", len(files))}
	}
	file := files[0]
	var keys *policy.Keyring
	if *keysPath != "" {
		if err := config.CheckSecretFile("--keys", *keysPath); err != nil {
			return err
		}
		data, err := os.ReadFile(*keysPath)
		if err != nil {
			return fmt.Errorf("--keys: %w", err)
		}
		if keys, err = policy.ParseKeyring(*keysPath, data); err != nil {
			return fmt.Errorf("--keys: %w", err)
		}
	}
	p, err := policy.Load(file, keys)
	if err != nil {
		return fmt.Errorf("policy is invalid:\n%w", err)
	}
	if *asJSON {
		return printJSON(stdout, summarizePolicy(file, p, *keysPath))
	}
	printPolicy(stdout, p, keys != nil)
	fmt.Fprintln(stdout, "policy OK")
	return nil
}

func printPolicy(w io.Writer, p *policy.Policy, keysChecked bool) {
	fmt.Fprint(w, p.Summary())
	fmt.Fprint(w, p.SignalSummary())
	if !keysChecked {
		fmt.Fprintln(w, "key ids not checked against a key file (pass --keys FILE)")
	}
	fmt.Fprintf(w, "policy digest %s (header consentd-policy-sha256 on every clean message it decides)\n", p.Digest)
}

const configCheckUsage = `consentd config check [--config FILE] [--json]

Validates a configuration file without connecting to anything: its
settings (and the CONSENTD_* environment variables over them), the secret
files it names (readable, not readable by others), the policy and the
shadow policy it names, compiled with the pseudonymization key file, so
that every key id they use exists. Prints a short summary; exits 1 with
the first problem otherwise.`

// configSummary is what config check prints with --json.
type configSummary struct {
	Config       string         `json:"config"`
	Brokers      []string       `json:"kafka_brokers"`
	RawTopics    []string       `json:"kafka_raw_topics"`
	DeadLetter   string         `json:"kafka_dead_letter_topic"`
	ConsentTopic string         `json:"consent_topic,omitempty"`
	Redis        string         `json:"redis_mode"`
	RedisAddrs   []string       `json:"redis_addrs"`
	AdminListen  string         `json:"admin_listen"`
	API          string         `json:"api_listen,omitempty"`
	Policy       policySummary  `json:"policy"`
	Shadow       *policySummary `json:"shadow_policy,omitempty"`
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config check", configCheckUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config `file`")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("config check: unexpected argument %q (the file goes after --config)", pos[0])}
	}
	cfg, pol, err := loadConfigAndPolicy(*path)
	if err != nil {
		return err
	}
	shadow, err := app.LoadShadowPolicy(cfg)
	if err != nil {
		return err
	}
	keyFile, _, err := cfg.KeyMaterial()
	if err != nil {
		return err
	}
	sum := configSummary{Config: *path, Brokers: cfg.Kafka.Brokers, RawTopics: cfg.Kafka.RawTopics, DeadLetter: cfg.Kafka.DeadLetterTopic,
		ConsentTopic: cfg.Consent.Topic, Redis: cfg.Redis.Mode, RedisAddrs: cfg.Redis.Addrs, AdminListen: cfg.Admin.Listen,
		Policy: summarizePolicy(cfg.Policy, pol, keyFile)}
	if len(sum.RedisAddrs) == 0 {
		sum.RedisAddrs = []string{cfg.Redis.Addr}
	}
	if len(cfg.Admin.AllTokens()) > 0 {
		sum.API = cfg.Admin.APIListen
	}
	if shadow != nil {
		s := summarizePolicy(cfg.ShadowPolicy, shadow, keyFile)
		sum.Shadow = &s
	}
	if *asJSON {
		return printJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "config %s: Kafka %v, raw topics %v, dead letters to %s\n", *path, sum.Brokers, sum.RawTopics, sum.DeadLetter)
	if sum.ConsentTopic != "" {
		fmt.Fprintf(stdout, "consent topic %s\n", sum.ConsentTopic)
	}
	fmt.Fprintf(stdout, "Redis (%s) %v\n", sum.Redis, sum.RedisAddrs)
	fmt.Fprintf(stdout, "admin %s", sum.AdminListen)
	if sum.API != "" {
		fmt.Fprintf(stdout, ", consent API %s", sum.API)
	} else {
		fmt.Fprint(stdout, ", consent API off (no admin.token_file)")
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "policy %s: version %q, %d outputs, key ids checked against %s, digest %s\n", cfg.Policy, pol.Version, len(pol.Outputs), keyFile, pol.Digest)
	if shadow != nil {
		fmt.Fprintf(stdout, "shadow policy %s: version %q, digest %s\n", cfg.ShadowPolicy, shadow.Version, shadow.Digest)
	}
	for _, w := range pol.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintln(stdout, "config OK (nothing was connected to)")
	return nil
}

const versionUsage = `consentd version [--json]

Prints the version consentd was built as (-ldflags "-X main.version=...").`

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", versionUsage, stderr)
	asJSON := fs.Bool("json", false, "print the version as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("version: unexpected argument %q", pos[0])}
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"version": version, "demo": demoIncluded})
	}
	fmt.Fprintln(stdout, "consentd", version)
	return nil
}
