// Package audit checks clean topics after the fact, independently of the
// code that wrote them (consentd audit): it reads the policy file itself,
// has detectors of its own for personal data, and shares no decision
// code with the pipeline, so that a bug there is not repeated here. It
// never reports a value it found, only where and what kind.
package audit

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Policy is what the auditor reads of a policy file: per output, what
// it may keep and how its fields must look.
type Policy struct {
	Version   string
	Digest    string // "sha256:" + hex of the file
	PerOutput bool
	Outputs   map[string]*Output // by topic
}

// Output is one output's rules.
type Output struct {
	Name     string
	Topic    string
	Require  []string          // purposes the output requires
	KeepOnly [][]string        // nil: no allow-list
	Pseudo   [][]string        // fields holding pseudonyms
	IPs      map[string][2]int // field -> IPv4, IPv6 prefix bits
	Geo      map[string]int    // field -> decimals
	Times    map[string]time.Duration
	// Unit is the coarsest truncate_time unit: the record time's.
	Unit time.Duration
}

type policyFile struct {
	Version          string `yaml:"version"`
	Pseudonymization struct {
		PerOutput bool `yaml:"per_output"`
	} `yaml:"pseudonymization"`
	Outputs []struct {
		Name       string   `yaml:"name"`
		Topic      string   `yaml:"topic"`
		Require    []string `yaml:"require"`
		Transforms []struct {
			KeepOnly     []string `yaml:"keep_only"`
			Pseudonymize *struct {
				Fields []string `yaml:"fields"`
			} `yaml:"pseudonymize"`
			TruncateIP *struct {
				Fields []string `yaml:"fields"`
				V4     *int     `yaml:"ipv4_bits"`
				V6     *int     `yaml:"ipv6_bits"`
			} `yaml:"truncate_ip"`
			RoundGeo *struct {
				Fields   []string `yaml:"fields"`
				Decimals *int     `yaml:"decimals"`
			} `yaml:"round_geo"`
			TruncateTime *struct {
				Fields []string `yaml:"fields"`
				To     string   `yaml:"to"`
			} `yaml:"truncate_time"`
		} `yaml:"transforms"`
	} `yaml:"outputs"`
}

// ReadPolicy reads the rules of the policy text data, whose digest is
// digest. It reads only what it checks; the pipeline validates the rest.
func ReadPolicy(data []byte, digest string) (*Policy, error) {
	var f policyFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	p := &Policy{Version: f.Version, Digest: digest, PerOutput: f.Pseudonymization.PerOutput, Outputs: map[string]*Output{}}
	split := func(ps []string) [][]string {
		var out [][]string
		for _, s := range ps {
			out = append(out, strings.Split(s, "."))
		}
		return out
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	for _, o := range f.Outputs {
		out := &Output{Name: o.Name, Topic: o.Topic, Require: o.Require, IPs: map[string][2]int{}, Geo: map[string]int{}, Times: map[string]time.Duration{}}
		for _, t := range o.Transforms {
			if t.KeepOnly != nil {
				out.KeepOnly = append(out.KeepOnly, split(t.KeepOnly)...)
			}
			if t.Pseudonymize != nil {
				out.Pseudo = append(out.Pseudo, split(t.Pseudonymize.Fields)...)
			}
			if ip := t.TruncateIP; ip != nil {
				fields, v4, v6 := ip.Fields, 24, 48
				if fields == nil {
					fields = []string{"context.ip"}
				}
				if ip.V4 != nil {
					v4 = *ip.V4
				}
				if ip.V6 != nil {
					v6 = *ip.V6
				}
				for _, f := range fields {
					out.IPs[f] = [2]int{v4, v6}
				}
			}
			if g := t.RoundGeo; g != nil {
				fields, d := g.Fields, 2
				if fields == nil {
					fields = []string{"context.location.latitude", "context.location.longitude"}
				}
				if g.Decimals != nil {
					d = *g.Decimals
				}
				for _, f := range fields {
					out.Geo[f] = d
				}
			}
			if tt := t.TruncateTime; tt != nil {
				fields := tt.Fields
				if fields == nil {
					fields = []string{"timestamp"}
				}
				u := units[tt.To]
				for _, f := range fields {
					out.Times[f] = u
				}
				out.Unit = max(out.Unit, u)
			}
		}
		p.Outputs[o.Topic] = out
	}
	return p, nil
}

// Finding is one violation found in a message: its kind and where
// (never the value).
type Finding struct {
	Kind string `json:"kind"`
	Path string `json:"path,omitempty"`
	Note string `json:"note,omitempty"`
}

// Kinds of findings.
const (
	KindNotAllowed       = "field_not_allowed"      // outside the output's keep_only
	KindNotPseudonymized = "not_pseudonymized"      // a pseudonymized field without a pseudonym of a known key
	KindHostBits         = "ip_host_bits"           // an IP with bits past the prefix kept
	KindUnrounded        = "coordinate_not_rounded" // more decimals than round_geo keeps
	KindUntruncated      = "time_not_truncated"     // a body time finer than truncate_time
	KindRecordTime       = "record_time_not_truncated"
	KindEmail            = "email"
	KindPhone            = "phone"
	KindCard             = "card"
	KindIP               = "ip_address"
	KindKnownID          = "known_subject_id"
	KindAfterRetraction  = "after_retraction"
	KindPolicy           = "unknown_policy"
	KindWithdrawn        = "consent_withdrawn_not_retracted" // the subject\'s current record denies the output\'s purposes and no retraction followed
	KindVersionAhead     = "consent_version_ahead"           // the message names a version newer than the store\'s
	KindUnreadable       = "unreadable_value"
)

// Checker checks clean messages of one policy.
type Checker struct {
	Policy *Policy
	// KeyIDs are the pseudonym key ids a pseudonym may carry (the key
	// file's, retired ones included).
	KeyIDs []string
	// IDs are raw subject ids that must appear nowhere (the auditor's
	// list).
	IDs []string
	// AcceptDigests are policy digests besides Policy.Digest that may
	// have decided records (earlier policies still on the topics).
	AcceptDigests []string
	// Subjects maps clean message keys to the auditor's subjects
	// (Subjects); with Records, their messages are checked against their
	// current consent records.
	Subjects map[string]string
	Records  RecordReader

	records map[string]Record // read so far
}

var (
	emailRe  = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)
	digitsRe = regexp.MustCompile(`\+?\d[\d \-().]{7,}\d`)
	ipv4Re   = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	ipv6Re   = regexp.MustCompile(`\b[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{0,4}){2,7}\b`)
	pseudoRe = regexp.MustCompile(`^([A-Za-z0-9_\-]+):[0-9a-f]{32}$`)
)

// Value checks a clean message's value and record time against the
// output's rules and for personal data.
func (c *Checker) Value(o *Output, value []byte, recordTime time.Time) []Finding {
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(value)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return []Finding{{Kind: KindUnreadable, Note: "not JSON"}}
	}
	var fs []Finding
	if o.Unit > 0 && !recordTime.IsZero() && !recordTime.Equal(recordTime.Truncate(o.Unit)) {
		fs = append(fs, Finding{Kind: KindRecordTime, Note: "finer than " + o.Unit.String()})
	}
	var walk func(path []string, v any, inArray bool)
	walk = func(path []string, v any, inArray bool) {
		p := strings.Join(path, ".")
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(append(path[:len(path):len(path)], k), c, inArray)
			}
			return
		case []any:
			for _, c := range x {
				walk(path, c, true)
			}
		}
		if !inArray && o.KeepOnly != nil && !allowed(o.KeepOnly, path) {
			fs = append(fs, Finding{Kind: KindNotAllowed, Path: p})
		}
		s, isString := v.(string)
		num, isNumber := v.(json.Number)
		if !inArray && matches(o.Pseudo, path) && v != nil {
			m := pseudoRe.FindStringSubmatch(s)
			if !isString || m == nil || !contains(c.KeyIDs, m[1]) {
				fs = append(fs, Finding{Kind: KindNotPseudonymized, Path: p})
			}
			return
		}
		if bits, ok := o.IPs[p]; ok && isString && s != "" {
			if a, err := netip.ParseAddr(s); err != nil || hostBits(a, bits) {
				fs = append(fs, Finding{Kind: KindHostBits, Path: p})
			}
			return
		}
		if d, ok := o.Geo[p]; ok && isNumber {
			if i := strings.IndexByte(num.String(), '.'); i >= 0 && len(num.String())-i-1 > d || strings.ContainsAny(num.String(), "eE") {
				fs = append(fs, Finding{Kind: KindUnrounded, Path: p})
			}
			return
		}
		if u, ok := o.Times[p]; ok && isString {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !t.Equal(t.Truncate(u)) {
				fs = append(fs, Finding{Kind: KindUntruncated, Path: p})
			}
			return
		}
		if isString {
			fs = append(fs, c.text(p, s)...)
		}
		if isNumber && luhnCard(num.String()) {
			fs = append(fs, Finding{Kind: KindCard, Path: p})
		}
	}
	walk(nil, doc, false)
	// Keys are text too: an e-mail address as a key is personal data.
	return fs
}

// text looks for personal data in the string s at path p.
func (c *Checker) text(p, s string) []Finding {
	var fs []Finding
	if emailRe.MatchString(s) {
		fs = append(fs, Finding{Kind: KindEmail, Path: p})
	}
	// IPv4 literals are found below, not read as phone numbers.
	for _, m := range digitsRe.FindAllString(ipv4Re.ReplaceAllString(s, " "), -1) {
		d := onlyDigits(m)
		switch {
		case len(d) >= 13 && len(d) <= 19 && luhn(d):
			fs = append(fs, Finding{Kind: KindCard, Path: p})
		case len(d) >= 9 && len(d) <= 15 && !looksLikeDate(m):
			fs = append(fs, Finding{Kind: KindPhone, Path: p})
		}
	}
	for _, m := range ipv4Re.FindAllString(s, -1) {
		if a, err := netip.ParseAddr(m); err == nil && a.Is4() {
			fs = append(fs, Finding{Kind: KindIP, Path: p})
			break
		}
	}
	for _, m := range ipv6Re.FindAllString(s, -1) {
		if a, err := netip.ParseAddr(m); err == nil && a.Is6() && strings.Count(m, ":") >= 2 {
			fs = append(fs, Finding{Kind: KindIP, Path: p})
			break
		}
	}
	low := strings.ToLower(s)
	for _, id := range c.IDs {
		if len(id) >= 4 && strings.Contains(low, strings.ToLower(id)) {
			fs = append(fs, Finding{Kind: KindKnownID, Path: p})
			break
		}
	}
	return fs
}

// allowed reports whether path lies on or below a keep_only path ("*"
// matches any key).
func allowed(keep [][]string, path []string) bool {
	for _, k := range keep {
		if len(path) >= len(k) && prefixMatch(k, path) {
			return true
		}
	}
	return false
}

func matches(ps [][]string, path []string) bool {
	for _, k := range ps {
		if len(path) == len(k) && prefixMatch(k, path) {
			return true
		}
	}
	return false
}

func prefixMatch(pattern, path []string) bool {
	for i, seg := range pattern {
		if seg != "*" && seg != path[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hostBits reports whether a has bits set past the prefix kept.
func hostBits(a netip.Addr, bits [2]int) bool {
	a = a.Unmap()
	n := bits[1]
	if a.Is4() {
		n = bits[0]
	}
	pfx, err := a.Prefix(n)
	return err != nil || pfx.Addr() != a
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// looksLikeDate: 2026-06-01, 2026-06-01 12:00 and the like are not phone
// numbers.
func looksLikeDate(s string) bool {
	return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`).MatchString(strings.TrimSpace(s))
}

func luhn(d string) bool {
	sum, alt := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if alt {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		alt = !alt
	}
	return sum%10 == 0
}

// luhnCard reports whether a JSON number is a Luhn-valid card number.
func luhnCard(n string) bool {
	i, ok := new(big.Int).SetString(n, 10)
	if !ok {
		return false
	}
	d := i.String()
	return len(d) >= 13 && len(d) <= 19 && luhn(d)
}
