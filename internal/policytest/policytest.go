// Package policytest runs golden cases against a policy, the way a
// reviewer signs off a policy change (consentd policy test): each case is
// a raw event and a consent record, with the decision expected per
// output. Cases are decided by the pipeline's own processor
// (pipeline.Processor.Explain), so they test what run does.
package policytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/lib/yamlx"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
)

// Case is one golden case: a file of its own in the cases directory.
type Case struct {
	// Name says what the case checks.
	Name string `yaml:"name"`
	// Event is the raw event, as the producer writes it.
	Event string `yaml:"event"`
	// Consent is the subject's stored record; absent: no record.
	Consent *Consent `yaml:"consent,omitempty"`
	// RecordTime is the raw record's Kafka time (RFC 3339). Default:
	// DefaultRecordTime.
	RecordTime string `yaml:"record_time,omitempty"`
	// Expect is the decision expected; --update writes it.
	Expect Expect `yaml:"expect"`

	file string
}

// Consent is a stored consent record.
type Consent struct {
	Version  int64           `yaml:"version"`
	Purposes map[string]bool `yaml:"purposes"`
	// GrantedAt holds when purposes were granted (RFC 3339).
	GrantedAt map[string]string `yaml:"granted_at,omitempty"`
}

// Expect is a case's expected decision: a dead letter, or per output.
type Expect struct {
	DeadLetter string            `yaml:"dead_letter,omitempty"`
	Outputs    map[string]Output `yaml:"outputs,omitempty"`
}

// Output is one output's expected decision.
type Output struct {
	Written bool   `yaml:"written"`
	Reason  string `yaml:"reason,omitempty"`
	Actions string `yaml:"actions,omitempty"`
	Key     string `yaml:"key,omitempty"`
	Value   string `yaml:"value,omitempty"`
}

// DefaultRecordTime is the record time of a case without one.
const DefaultRecordTime = "2026-06-01T12:00:00Z"

// Keys returns the keyring cases are decided with: for every key id spec
// names, a secret derived from the id alone, so that expected pseudonyms
// are stable across machines and are never a production key's.
func Keys(spec *policy.Spec) (*policy.Keyring, error) {
	ids := []string{spec.PseudonymKey}
	for _, o := range spec.Outputs {
		for _, t := range o.Transforms {
			if t.Pseudonymize != nil && t.Pseudonymize.Key != "" {
				ids = append(ids, t.Pseudonymize.Key)
			}
		}
	}
	secrets := map[string][]byte{}
	for _, id := range ids {
		sum := sha256.Sum256([]byte("consentd policy test key " + id))
		secrets[id] = sum[:]
	}
	return policy.NewKeyring(secrets)
}

// Load reads every *.yaml case in dir, sorted by file name.
func Load(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no cases (*.yaml) in %s", dir)
	}
	sort.Strings(files)
	var cases []Case
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var c Case
		if err := yamlx.Decode(f, data, &c); err != nil {
			return nil, err
		}
		if c.Event == "" {
			return nil, fmt.Errorf("%s: no event", f)
		}
		c.file = f
		cases = append(cases, c)
	}
	return cases, nil
}

// Result is what one case did.
type Result struct {
	Case *Case
	Got  Expect
	// Diffs say how Got differs from the case's Expect (none: it passed).
	Diffs []string
}

// Run decides every case with pol and compares each with what it
// expects.
func Run(ctx context.Context, pol *policy.Policy, cases []Case) ([]Result, error) {
	var out []Result
	for i := range cases {
		c := &cases[i]
		got, err := decide(ctx, pol, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.file, err)
		}
		out = append(out, Result{Case: c, Got: got, Diffs: diff(c.Expect, got)})
	}
	return out, nil
}

// fixedStore answers every subject with one record.
type fixedStore struct{ rec consent.Record }

func (s fixedStore) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	out := make(map[string]consent.Record, len(subjects))
	for _, sub := range subjects {
		out[sub] = s.rec
	}
	return out, nil
}

func decide(ctx context.Context, pol *policy.Policy, c *Case) (Expect, error) {
	rec := consent.Record{}
	if c.Consent != nil {
		rec = consent.Record{Found: true, Version: c.Consent.Version, Granted: map[string]bool{}}
		for p, ok := range c.Consent.Purposes {
			if ok {
				rec.Granted[p] = true
			}
		}
		for p, at := range c.Consent.GrantedAt {
			t, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				return Expect{}, fmt.Errorf("consent.granted_at.%s: %w", p, err)
			}
			if rec.GrantedAt == nil {
				rec.GrantedAt = map[string]int64{}
			}
			rec.GrantedAt[p] = t.UnixMilli()
		}
	}
	rt := c.RecordTime
	if rt == "" {
		rt = DefaultRecordTime
	}
	at, err := time.Parse(time.RFC3339Nano, rt)
	if err != nil {
		return Expect{}, fmt.Errorf("record_time: %w", err)
	}
	p, err := pipeline.NewProcessor(pipeline.ProcessorConfig{Policy: pol, Store: fixedStore{rec}, DeadLetterTopic: "dead-letters"})
	if err != nil {
		return Expect{}, err
	}
	ex, err := p.Explain(ctx, kafka.Message{Topic: "raw", Value: []byte(strings.TrimRight(c.Event, "\n")), Time: at})
	if err != nil {
		return Expect{}, err
	}
	var got Expect
	if ex.Dead != nil {
		got.DeadLetter = ex.Dead.Reason
		return got, nil
	}
	got.Outputs = map[string]Output{}
	k := 0
	for _, o := range pol.Outputs {
		eo := Output{Reason: policy.ReasonNoSubject}
		if ex.Decision != nil {
			od := ex.Decision.Outputs[slices.Index(pol.Outputs, o)]
			eo = Output{Written: od.Write, Reason: od.Reason}
			if od.Write {
				m := ex.Out[k]
				k++
				eo.Actions, eo.Key, eo.Value = od.ActionsHeader(), string(m.Key), string(m.Value)
			}
		}
		got.Outputs[o.Name] = eo
	}
	return got, nil
}

// diff lists how got differs from want, by output and field; values are
// compared as JSON, path by path.
func diff(want, got Expect) []string {
	var d []string
	if want.DeadLetter != got.DeadLetter {
		d = append(d, fmt.Sprintf("dead letter: want %q, got %q", want.DeadLetter, got.DeadLetter))
	}
	names := map[string]bool{}
	for n := range want.Outputs {
		names[n] = true
	}
	for n := range got.Outputs {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		w, wok := want.Outputs[n]
		g, gok := got.Outputs[n]
		switch {
		case !wok:
			d = append(d, fmt.Sprintf("output %s: not expected, got %s", n, describe(g)))
			continue
		case !gok:
			d = append(d, fmt.Sprintf("output %s: expected %s, the policy has no such output", n, describe(w)))
			continue
		}
		if w.Written != g.Written || w.Reason != g.Reason {
			d = append(d, fmt.Sprintf("output %s: want %s, got %s", n, describe(w), describe(g)))
			continue
		}
		if w.Actions != g.Actions {
			d = append(d, fmt.Sprintf("output %s: actions\n    want %s\n    got  %s", n, w.Actions, g.Actions))
		}
		if w.Key != g.Key {
			d = append(d, fmt.Sprintf("output %s: key want %s, got %s", n, w.Key, g.Key))
		}
		if w.Value != g.Value {
			d = append(d, valueDiff(n, w.Value, g.Value)...)
		}
	}
	return d
}

func describe(o Output) string {
	if o.Written {
		return "written"
	}
	return "skipped (" + o.Reason + ")"
}

// valueDiff says which paths of two JSON documents differ.
func valueDiff(output, want, got string) []string {
	var d []string
	ok := policy.EachValueDiff([]byte(want), []byte(got), func(kind, path string, was, is any) {
		switch kind {
		case policy.DiffFieldAdded:
			d = append(d, fmt.Sprintf("output %s: value: %s added: %s", output, path, compact(is)))
		case policy.DiffFieldRemoved:
			d = append(d, fmt.Sprintf("output %s: value: %s removed (was %s)", output, path, compact(was)))
		default:
			d = append(d, fmt.Sprintf("output %s: value: %s want %s, got %s", output, path, compact(was), compact(is)))
		}
	})
	switch {
	case !ok:
		return []string{fmt.Sprintf("output %s: value\n    want %s\n    got  %s", output, want, got)}
	case len(d) == 0: // the same document, written differently
		return []string{fmt.Sprintf("output %s: value bytes\n    want %s\n    got  %s", output, want, got)}
	}
	return d
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Update rewrites the expectation of every case whose result differs
// from it with what was got, in its file. It returns the files written.
func Update(results []Result) ([]string, error) {
	var written []string
	for _, r := range results {
		if len(r.Diffs) == 0 {
			continue
		}
		c := *r.Case
		c.Expect = r.Got
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&c); err != nil {
			return written, err
		}
		if err := os.WriteFile(c.file, buf.Bytes(), 0o644); err != nil {
			return written, err
		}
		written = append(written, c.file)
	}
	return written, nil
}
