package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/app"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

const explainUsage = `consentd explain [FILE|-] [--from TOPIC/PARTITION/OFFSET | --clean TOPIC/PARTITION/OFFSET] [--consent JSON] [--output NAME] [--show-values] [--json] [--config FILE]

Explains what consentd does with one raw event, with the code 'run' runs:
per output, written or skipped and why, the consent record and the event's
own consent signals, every transform with the policy path it touched, and
the clean key, headers and value exactly as they would be written. The
event is read from FILE, from stdin ("-"), or from Kafka (--from). Consent
comes from the store, or from --consent given inline (offline), in the
form 'consentd consent get' prints: {"found":true,"version":3,
"purposes":{"analytics":true}}, or "none". Nothing is written anywhere:
an identify or alias event is explained with the identity links already
stored, without the one it would add. Values are masked unless
--show-values is given.

--clean explains a clean message: its raw event is read back through its
consentd-source header and decided again, and explain says whether the
key and value it would write now are the clean message's, and if not,
which of its headers (policy, consent version) differs.`

func cmdExplain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", explainUsage, stderr)
	path := fs.String("config", "configs/consentd.yaml", "consentd config file")
	from := fs.String("from", "", "read the raw event from Kafka: TOPIC/PARTITION/OFFSET")
	clean := fs.String("clean", "", "explain the clean message at TOPIC/PARTITION/OFFSET: decide its raw event again and compare")
	inline := fs.String("consent", "", `consent record to decide with, offline: {"found":true,"version":N,"purposes":{...}} or "none" (default: the consent store)`)
	only := fs.String("output", "", "explain this output only")
	show := fs.Bool("show-values", false, "print event values and the subject id unmasked")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	sources := len(files)
	for _, f := range []string{*from, *clean} {
		if f != "" {
			sources++
		}
	}
	if sources != 1 {
		return usageError{errors.New("explain: give one event: a FILE, - for stdin, --from TOPIC/PARTITION/OFFSET or --clean TOPIC/PARTITION/OFFSET")}
	}
	var rec *consent.Record
	if *inline != "" {
		r, err := parseInlineConsent(*inline)
		if err != nil {
			return usageError{fmt.Errorf("explain: --consent: %w", err)}
		}
		rec = &r
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var cleanMsg *kafka.Message
	if *clean != "" {
		m, err := readAt(ctx, cfg, *clean)
		if err != nil {
			return err
		}
		src := string(wire.Header(&m, wire.HeaderSource))
		if _, _, _, err := wire.ParseSource(src); err != nil {
			return fmt.Errorf("explain: %s is not a clean message consentd can trace back: its %s header is %q (pseudonymized per output, or not written by consentd)", *clean, wire.HeaderSource, src)
		}
		cleanMsg, *from = &m, src
	}
	msg, source, err := readEvent(ctx, cfg, files, *from)
	if err != nil {
		return err
	}
	p, closeStore, err := app.NewExplainer(cfg, rec, "")
	if err != nil {
		return err
	}
	defer closeStore()
	pol, err := app.LoadPolicy(cfg)
	if err != nil {
		return err
	}
	if *only != "" && !slices.ContainsFunc(pol.Outputs, func(o *policy.Output) bool { return o.Name == *only }) {
		var names []string
		for _, o := range pol.Outputs {
			names = append(names, o.Name)
		}
		return usageError{fmt.Errorf("explain: --output %s: the policy has no such output (it has %s)", *only, strings.Join(names, ", "))}
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ex, err := p.Explain(lctx, msg)
	if err != nil {
		return fmt.Errorf("explain: the consent store did not answer: %w", err)
	}
	view := explainView(pol, ex, source, rec != nil, *only, *show)
	if cleanMsg != nil {
		view.Clean = compareClean(pol, ex, *clean, cleanMsg)
		if *only == "" {
			view.Outputs = slices.DeleteFunc(view.Outputs, func(o explainedOutput) bool { return o.Name != view.Clean.Output })
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(view)
	}
	printExplanation(stdout, view)
	return nil
}

// parseInlineConsent reads --consent.
func parseInlineConsent(s string) (consent.Record, error) {
	if strings.TrimSpace(s) == "none" {
		return consent.Record{}, nil
	}
	var v struct {
		Found     *bool           `json:"found"`
		Version   int64           `json:"version"`
		Purposes  map[string]bool `json:"purposes"`
		ExpiresAt string          `json:"expires_at"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return consent.Record{}, fmt.Errorf(`want {"found":true,"version":N,"purposes":{"PURPOSE":true}} or "none": %w`, err)
	}
	r := consent.Record{Found: v.Found == nil || *v.Found, Version: v.Version, Granted: map[string]bool{}}
	for p, ok := range v.Purposes {
		if ok {
			r.Granted[p] = true
		}
	}
	if v.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, v.ExpiresAt)
		if err != nil {
			return consent.Record{}, fmt.Errorf("expires_at: %w", err)
		}
		r.Expires = t
	}
	if !r.Found {
		r = consent.Record{}
	}
	return r, nil
}

// readEvent reads the raw event from a file, stdin or Kafka, and says
// where it came from.
func readEvent(ctx context.Context, cfg *config.Config, args []string, from string) (kafka.Message, string, error) {
	if from != "" {
		m, err := readAt(ctx, cfg, from)
		return m, from, err
	}
	var b []byte
	var err error
	if args[0] == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, int64(cfg.Kafka.MaxMessageBytes)+1))
	} else {
		b, err = os.ReadFile(args[0])
	}
	if err != nil {
		return kafka.Message{}, "", fmt.Errorf("explain: reading the event: %w", err)
	}
	topic := "explain"
	if len(cfg.Kafka.RawTopics) > 0 {
		topic = cfg.Kafka.RawTopics[0]
	}
	return kafka.Message{Topic: topic, Value: bytes.TrimRight(b, "\r\n"), Time: time.Now()}, args[0], nil
}

// readAt reads the message at TOPIC/PARTITION/OFFSET.
func readAt(ctx context.Context, cfg *config.Config, at string) (kafka.Message, error) {
	topic, part, off, err := wire.ParseSource(at)
	if err != nil || topic == "" {
		return kafka.Message{}, usageError{fmt.Errorf("explain: %q: want TOPIC/PARTITION/OFFSET", at)}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := app.ReadRaw(rctx, cfg, topic, part, off)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("explain: %w", err)
	}
	return m, nil
}

// explanation is what explain prints (JSON, or as text).
type explanation struct {
	Source        string              `json:"source"`
	PolicyVersion string              `json:"policy_version"`
	Subject       string              `json:"subject,omitempty"`
	SubjectKey    string              `json:"subject_pseudonym,omitempty"`
	Consent       explainedConsent    `json:"consent"`
	Signals       []string            `json:"event_signals,omitempty"`
	Denied        []string            `json:"event_denies,omitempty"`
	CoarseGeo     bool                `json:"tcf_coarse_geo,omitempty"`
	Outcome       string              `json:"outcome"` // written, dropped, dead_lettered
	Dropped       string              `json:"dropped_reason,omitempty"`
	DeadLetter    *explainedDead      `json:"dead_letter,omitempty"`
	Outputs       []explainedOutput   `json:"outputs,omitempty"`
	Accounting    pipeline.Accounting `json:"-"`
	Clean         *cleanCheck         `json:"clean,omitempty"`
}

// cleanCheck compares a clean message with what deciding its raw event
// again writes.
type cleanCheck struct {
	Message string   `json:"message"` // TOPIC/PARTITION/OFFSET
	Output  string   `json:"output"`
	Same    bool     `json:"same"` // the key and value would be written again as they are
	Differs []string `json:"differs,omitempty"`
}

// compareClean compares the clean message m (read at where) with the
// message ex renders for the same output.
func compareClean(pol *policy.Policy, ex *pipeline.Explanation, where string, m *kafka.Message) *cleanCheck {
	c := &cleanCheck{Message: where, Output: string(wire.Header(m, wire.HeaderOutput))}
	var now *kafka.Message
	for i := range ex.Out {
		if string(wire.Header(&ex.Out[i], wire.HeaderOutput)) == c.Output {
			now = &ex.Out[i]
		}
	}
	if now == nil {
		c.Differs = append(c.Differs, "the raw event would not be written to output "+c.Output+" now")
	} else {
		if !bytes.Equal(now.Key, m.Key) {
			c.Differs = append(c.Differs, "key")
		}
		if !bytes.Equal(now.Value, m.Value) {
			c.Differs = append(c.Differs, "value")
		}
	}
	for _, h := range []string{wire.HeaderPolicyDigest, wire.HeaderPolicyVersion, wire.HeaderConsentVersion, wire.HeaderActions} {
		was := string(wire.Header(m, h))
		is := ""
		if now != nil {
			is = string(wire.Header(now, h))
		} else if h == wire.HeaderPolicyVersion {
			is = pol.Version
		}
		if was != is && (now != nil || h == wire.HeaderPolicyVersion) {
			c.Differs = append(c.Differs, fmt.Sprintf("%s was %q, is %q", h, was, is))
		}
	}
	c.Same = now != nil && bytes.Equal(now.Key, m.Key) && bytes.Equal(now.Value, m.Value)
	return c
}

type explainedConsent struct {
	From    string            `json:"from"` // store or inline
	Found   bool              `json:"found"`
	Version int64             `json:"version,omitempty"`
	Granted []string          `json:"granted"`
	At      map[string]string `json:"granted_at,omitempty"`
	Linked  string            `json:"linked_to,omitempty"`
}

type explainedDead struct {
	Reason  string            `json:"reason"`
	Error   string            `json:"error"`
	Topic   string            `json:"topic"`
	Headers map[string]string `json:"headers"`
}

type explainedOutput struct {
	Name    string          `json:"name"`
	Topic   string          `json:"topic"`
	Written bool            `json:"written"`
	Reason  string          `json:"reason,omitempty"`
	Actions []string        `json:"actions,omitempty"`
	Key     string          `json:"key,omitempty"`
	Time    string          `json:"record_time,omitempty"`
	Headers [][2]string     `json:"headers,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"`
}

// explainView builds the explanation of ex. Personal values (the subject
// id, event values, copied raw headers, dead-letter bodies) are masked
// unless show.
func explainView(pol *policy.Policy, ex *pipeline.Explanation, source string, inline bool, only string, show bool) explanation {
	v := explanation{Source: source, PolicyVersion: pol.Version, Accounting: ex.Accounting}
	v.Consent.From = "store"
	if inline {
		v.Consent.From = "inline"
	}
	if ex.Subject != "" {
		v.Subject = mask(ex.Subject, show)
		if k, err := pol.PseudonymousKey(ex.Subject); err == nil {
			v.SubjectKey = string(k)
		}
	}
	r := ex.Record
	v.Consent.Found, v.Consent.Version, v.Consent.Linked = r.Found, r.Version, mask(r.LinkedTo, show)
	for _, p := range pol.Purposes {
		if r.Allows(p) {
			v.Consent.Granted = append(v.Consent.Granted, p)
			if t, ok := r.GrantedAt[p]; ok {
				if v.Consent.At == nil {
					v.Consent.At = map[string]string{}
				}
				v.Consent.At[p] = time.UnixMilli(t).UTC().Format(time.RFC3339Nano)
			}
		}
	}
	switch {
	case ex.Dead != nil:
		v.Outcome = "dead_lettered"
		v.DeadLetter = &explainedDead{Reason: ex.Dead.Reason, Error: ex.Dead.Error(), Headers: map[string]string{}}
		if len(ex.Out) == 1 {
			v.DeadLetter.Topic = ex.Out[0].Topic
			for _, h := range ex.Out[0].Headers {
				v.DeadLetter.Headers[h.Key] = string(h.Value)
			}
		}
		return v
	case ex.Decision == nil:
		v.Outcome, v.Dropped = "dropped", policy.ReasonNoSubject
		return v
	}
	d := ex.Decision
	v.Signals, v.Denied, v.CoarseGeo = d.EventSignals, d.EventDenied, d.CoarseGeo()
	v.Outcome = "written"
	if reason := d.DropReason(); reason != "" {
		v.Outcome, v.Dropped = "dropped", reason
	}
	k := 0
	for _, od := range d.Outputs {
		eo := explainedOutput{Name: od.Output.Name, Topic: od.Output.Topic, Written: od.Write, Reason: od.Reason}
		if od.Write {
			m := ex.Out[k]
			k++
			for _, a := range od.Actions {
				eo.Actions = append(eo.Actions, a.String())
			}
			eo.Key = string(m.Key)
			eo.Time = m.Time.UTC().Format(time.RFC3339Nano)
			for _, h := range m.Headers {
				val := string(h.Value)
				if !strings.HasPrefix(h.Key, "consentd-") {
					val = mask(val, show) // a raw header copied (pipeline.copy_headers)
				}
				eo.Headers = append(eo.Headers, [2]string{h.Key, val})
			}
			eo.Value = maskJSON(m.Value, show)
		}
		if only == "" || only == od.Output.Name {
			v.Outputs = append(v.Outputs, eo)
		}
	}
	return v
}

// mask hides s unless show, keeping its length.
func mask(s string, show bool) string {
	if show || s == "" {
		return s
	}
	return fmt.Sprintf("(%d bytes hidden)", len(s))
}

// maskJSON returns the JSON document raw with every string and number
// value replaced by "•" (keys, structure, booleans and nulls kept), unless
// show. A document it cannot read is hidden whole.
func maskJSON(raw []byte, show bool) json.RawMessage {
	if show {
		if json.Valid(raw) {
			return raw
		}
		b, _ := json.Marshal(string(raw))
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	type frame struct{ object, key bool }
	var stack []frame
	first := true
	sep := func() {
		if n := len(stack); n > 0 && !first {
			if stack[n-1].object && !stack[n-1].key {
				out.WriteByte(':')
			} else {
				out.WriteByte(',')
			}
		}
		first = false
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return json.RawMessage(`"(unreadable: hidden)"`)
		}
		n := len(stack)
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				sep()
				out.WriteByte(byte(t))
				stack = append(stack, frame{object: t == '{', key: true})
				first = true
				continue
			default:
				out.WriteByte(byte(t))
				stack = stack[:n-1]
				first = false
			}
		case string:
			if n > 0 && stack[n-1].object && stack[n-1].key {
				sep()
				b, _ := json.Marshal(t)
				out.Write(b)
				stack[n-1].key = false
				continue
			}
			sep()
			out.WriteString(`"•"`)
		case json.Number:
			sep()
			out.WriteString(`"•"`)
		default:
			sep()
			b, _ := json.Marshal(t)
			out.Write(b)
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].key = true
		}
	}
	return out.Bytes()
}

// printExplanation prints v for people.
func printExplanation(w io.Writer, v explanation) {
	fmt.Fprintf(w, "event %s, policy %s\n", v.Source, v.PolicyVersion)
	if v.Subject != "" {
		fmt.Fprintf(w, "subject %s (pseudonym %s)\n", v.Subject, v.SubjectKey)
	}
	c := v.Consent
	switch {
	case !c.Found:
		fmt.Fprintf(w, "consent (%s): no record: nothing granted\n", c.From)
	default:
		fmt.Fprintf(w, "consent (%s): version %d, granted [%s]", c.From, c.Version, strings.Join(c.Granted, ", "))
		for _, p := range c.Granted {
			if t, ok := c.At[p]; ok {
				fmt.Fprintf(w, ", %s since %s", p, t)
			}
		}
		if c.Linked != "" {
			fmt.Fprintf(w, ", linked to user %s (strictest of both)", c.Linked)
		}
		fmt.Fprintln(w)
	}
	if len(v.Signals) > 0 {
		fmt.Fprintf(w, "event consent signals: %s; they deny [%s]\n", strings.Join(v.Signals, ", "), strings.Join(v.Denied, ", "))
	}
	if v.CoarseGeo {
		fmt.Fprintln(w, "TC string withholds precise geolocation: coordinates rounded in every output")
	}
	if c := v.Clean; c != nil {
		switch {
		case c.Same && len(c.Differs) == 0:
			fmt.Fprintf(w, "clean message %s (output %s): decided again, the same key and value would be written\n", c.Message, c.Output)
		case c.Same:
			fmt.Fprintf(w, "clean message %s (output %s): decided again, the same key and value would be written; %s\n", c.Message, c.Output, strings.Join(c.Differs, "; "))
		default:
			fmt.Fprintf(w, "clean message %s (output %s): decided again, it would differ: %s\n", c.Message, c.Output, strings.Join(c.Differs, "; "))
		}
	}
	if d := v.DeadLetter; d != nil {
		fmt.Fprintf(w, "DEAD-LETTERED to %s: %s\n  %s\n", d.Topic, d.Reason, d.Error)
		return
	}
	if v.Outcome == "dropped" {
		fmt.Fprintf(w, "written to no output (%s)\n", v.Dropped)
	}
	for _, o := range v.Outputs {
		if !o.Written {
			fmt.Fprintf(w, "\n%s → %s: skipped: %s\n", o.Name, o.Topic, o.Reason)
			continue
		}
		fmt.Fprintf(w, "\n%s → %s: written\n", o.Name, o.Topic)
		if len(o.Actions) == 0 {
			fmt.Fprintln(w, "  transforms: none changed the event")
		}
		for _, a := range o.Actions {
			fmt.Fprintf(w, "  %s\n", a)
		}
		fmt.Fprintf(w, "  key: %s\n  record time: %s\n", o.Key, o.Time)
		for _, h := range o.Headers {
			fmt.Fprintf(w, "  header %s: %s\n", h[0], h[1])
		}
		fmt.Fprintf(w, "  value: %s\n", o.Value)
	}
}
