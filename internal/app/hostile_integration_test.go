package app

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/segmentio/kafka-go"
	"golang.org/x/text/unicode/norm"

	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/internal/testing/itest"
	"github.com/consentd/consentd/wire"
)

// TestIntegrationHostile produces the hostile corpus to a real Kafka, with
// full consent in a real Redis for every subject, runs consentd with the
// shipped policy, waits until every event is accounted for (written,
// dropped or dead-lettered) and searches every clean message's key,
// value, headers and record time for every piece of personal data of the
// whole corpus, with a checker that shares no code with scrub.
func TestIntegrationHostile(t *testing.T) {
	env := itest.Require(t)
	es := loadHostileCorpus(t)
	s := newStack(t, env, 2)

	rdb := itest.Redis(t, env.Redis)
	all := map[string]bool{"personalization": true, "analytics": true, "advertising": true}
	ctx := context.Background()
	for _, e := range es {
		for _, subj := range e.Subjects {
			if err := redisstore.Put(ctx, rdb, s.prefix, subj, 1, all); err != nil {
				t.Fatal(err)
			}
		}
	}
	msgs := make([]kafka.Message, len(es))
	byValue := map[string]int{}
	for i := range es {
		msgs[i] = es[i].message()
		if j, dup := byValue[string(msgs[i].Key)+"\x00"+string(msgs[i].Value)]; dup {
			t.Fatalf("entries %s and %s are the same message", es[j].Name, es[i].Name)
		}
		byValue[string(msgs[i].Key)+"\x00"+string(msgs[i].Value)] = i
	}
	itest.Produce(t, env.Kafka, s.raw, msgs...)

	r := s.start(t, nil)
	itest.Eventually(t, 120*time.Second, "every hostile event accounted for", func() bool {
		return r.app.Stats.Snapshot().Consumed[s.raw] >= len(es)
	})
	snap := r.app.Stats.Snapshot()
	if got := snap.Consumed[s.raw]; got != len(es) {
		t.Fatalf("consumed %d events, produced %d", got, len(es))
	}

	// Raw coordinates -> entry.
	entryAt := map[string]int{}
	for _, m := range itest.ReadAll(t, env.Kafka, s.raw) {
		i, ok := byValue[string(m.Key)+"\x00"+string(m.Value)]
		if !ok {
			t.Fatalf("raw topic holds a message the corpus does not: %q", m.Value)
		}
		entryAt[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = i
	}
	if len(entryAt) != len(es) {
		t.Fatalf("raw topic holds %d messages, produced %d", len(entryAt), len(es))
	}

	outcomes := make([][]string, len(es))
	dead := map[string]int{}
	for _, m := range itest.ReadAll(t, env.Kafka, s.dlq) {
		reason, _ := itest.Header(m, wire.HeaderDLQReason)
		p, _ := itest.Header(m, wire.HeaderSourcePart)
		o, _ := itest.Header(m, wire.HeaderSourceOffset)
		i, ok := entryAt[p+"/"+o]
		if !ok {
			t.Errorf("dead letter for unknown raw %s/%s", p, o)
			continue
		}
		outcomes[i] = append(outcomes[i], "dead:"+reason)
		dead[reason]++
	}

	var ck leakChecker
	ck.init(es)
	clean, findings := 0, 0
	for _, topic := range []string{s.perso, s.ana, s.adv} {
		for _, m := range itest.ReadAll(t, env.Kafka, topic) {
			clean++
			src, _ := itest.Header(m, wire.HeaderSource)
			_, part, off, err := wire.ParseSource(src)
			i, ok := entryAt[fmt.Sprintf("%d/%d", part, off)]
			if err != nil || !ok {
				t.Errorf("%s: clean message from unknown source %q", topic, src)
			}
			if ok && !containsStr(outcomes[i], "written") {
				outcomes[i] = append(outcomes[i], "written")
			}
			for _, f := range ck.check(&m, []time.Time{hostileRawTime}) {
				findings++
				name := "?"
				if ok {
					name = es[i].Name
				}
				t.Errorf("LEAK %s (from %s): %s", topic, name, f)
			}
		}
	}

	// Every event is in exactly one accounted state, and the one expected.
	droppedWant := map[string]int{}
	writtenEvents := 0
	for i, e := range es {
		got := outcomes[i]
		switch {
		case len(got) == 0:
			reason := strings.TrimPrefix(e.Expect[strings.Index(e.Expect+"dropped:", "dropped:"):], "dropped:")
			if !strings.Contains(e.Expect, "dropped:") {
				t.Errorf("%s: neither written nor dead-lettered, want %s", e.Name, e.Expect)
				continue
			}
			droppedWant[strings.SplitN(reason, "|", 2)[0]]++
		case len(got) > 1:
			t.Errorf("%s: several outcomes %v", e.Name, got)
		case !e.allows(got[0]):
			t.Errorf("%s: %s, want %s", e.Name, got[0], e.Expect)
		case got[0] == "written":
			writtenEvents++
		}
	}
	for reason, n := range dead {
		if snap.Dead[reason] != n {
			t.Errorf("Stats: %d dead-lettered as %s, the topic holds %d", snap.Dead[reason], reason, n)
		}
	}
	for reason, n := range droppedWant {
		if snap.Dropped[reason] != n {
			t.Errorf("Stats: %d dropped as %s, want %d", snap.Dropped[reason], reason, n)
		}
	}
	deadTotal, droppedTotal := 0, 0
	for _, n := range snap.Dead {
		deadTotal += n
	}
	for _, n := range snap.Dropped {
		droppedTotal += n
	}
	if writtenEvents+deadTotal+droppedTotal != len(es) {
		t.Errorf("accounting: %d written + %d dead + %d dropped != %d produced", writtenEvents, deadTotal, droppedTotal, len(es))
	}
	if clean < 300 || writtenEvents < len(es)/2 {
		t.Errorf("only %d clean messages from %d events: too few to test scrubbing", clean, writtenEvents)
	}
	s.assertNoPersonalData(t, ck.pii...)
	rep := s.audit(t, ck.pii...)
	t.Logf("audit: %d clean messages, %d retractions, no findings", rep.Messages, rep.Retractions)
	t.Logf("%d hostile events: %d written (%d clean messages), %d dead-lettered %v, %d dropped; %d findings", len(es), writtenEvents, clean, deadTotal, snap.Dead, droppedTotal, findings)
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// leakChecker searches Kafka messages for personal data. It is written
// independently of package scrub: it decodes what a reader could decode
// (JSON escapes, percent-encoding once or twice, HTML entities, Unicode
// compatibility forms and invisible characters) and compares digits of
// phone and card numbers and the bytes of IP addresses.
type leakChecker struct {
	pii   []string
	forms map[string][]string // pii -> lowercased encodings
	b64   map[string][]string // pii -> case-sensitive encodings
	ips   map[string]netip.Addr
	nums  map[string]string // pii -> its digits, for phone and card numbers
}

func (c *leakChecker) init(es []hostileEntry) {
	c.forms, c.b64, c.ips, c.nums = map[string][]string{}, map[string][]string{}, map[string]netip.Addr{}, map[string]string{}
	seen := map[string]bool{}
	for _, e := range es {
		for _, p := range e.PII {
			if !seen[p] {
				seen[p] = true
				c.pii = append(c.pii, p)
				c.prepare(p)
			}
		}
	}
}

func (c *leakChecker) prepare(p string) {
	if _, ok := c.forms[p]; ok {
		return
	}
	forms := []string{
		p,
		url.QueryEscape(p),
		url.PathEscape(p),
		url.QueryEscape(url.QueryEscape(p)),
		strings.ReplaceAll(p, "@", "%40"),
		strings.ReplaceAll(p, "@", "%2540"),
		strings.ReplaceAll(p, "@", `\u0040`),
		escapeEvery(p),
		hex.EncodeToString([]byte(p)),
		html.EscapeString(p),
		strings.ReplaceAll(p, " ", "+"),
	}
	if strings.Contains(p, "@") {
		// Hashed e-mails: ad tech's match keys.
		lp := strings.ToLower(strings.TrimSpace(p))
		m, s1, s2 := md5.Sum([]byte(lp)), sha1.Sum([]byte(lp)), sha256.Sum256([]byte(lp))
		forms = append(forms, hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:]))
	}
	if b, err := json.Marshal(p); err == nil {
		forms = append(forms, strings.Trim(string(b), `"`))
	}
	for i := range forms {
		forms[i] = strings.ToLower(forms[i])
	}
	c.forms[p] = dedupe(forms)
	b64 := []string{base64.StdEncoding.EncodeToString([]byte(p)), base64.RawURLEncoding.EncodeToString([]byte(p)), base64.RawStdEncoding.EncodeToString([]byte(p))}
	// Behind one or two other bytes, base64 of p shifts: the characters
	// that depend on p alone (after the first two or three, before the
	// last two) are its trace whatever stands around it.
	for k := 1; k <= 2; k++ {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			full := enc.EncodeToString(append(make([]byte, k), p...))
			if core := full[k*4/3+1 : len(full)-2]; len(core) >= 8 {
				b64 = append(b64, core)
			}
		}
	}
	c.b64[p] = dedupe(b64)
	if a, err := netip.ParseAddr(p); err == nil {
		c.ips[p] = a
		if a.Is4() {
			// The forms a browser reads as this address in a URL host.
			b := a.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			c.forms[p] = append(c.forms[p], "//"+strconv.FormatUint(uint64(v), 10), fmt.Sprintf("//0x%x", v),
				fmt.Sprintf("//0%o.0%o.0%o.0%o", b[0], b[1], b[2], b[3]))
		}
		return
	}
	d := digitsOf(p)
	if len(d) >= 9 && len(d)*10 >= len(p)*6 {
		c.nums[p] = d
	}
}

func escapeEvery(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 0xffff {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// check searches m for every piece of personal data of the corpus, and
// fails a record time equal to one of the raw record times.
func (c *leakChecker) check(m *kafka.Message, rawTimes []time.Time) []string {
	return c.scan(m, c.pii, rawTimes)
}

func (c *leakChecker) scan(m *kafka.Message, pii []string, rawTimes []time.Time) []string {
	for _, p := range pii {
		c.prepare(p)
	}
	var out []string
	found := func(where, p, how string) {
		out = append(out, fmt.Sprintf("%q (%s) in %s", p, how, where))
	}
	// Raw bytes, every encoding.
	type hay struct{ where, text string }
	hays := []hay{{"key", string(m.Key)}, {"value", string(m.Value)}}
	for _, h := range m.Headers {
		hays = append(hays, hay{"header name", h.Key}, hay{"header " + h.Key, string(h.Value)})
	}
	if !m.Time.IsZero() {
		hays = append(hays, hay{"record time", m.Time.UTC().Format(time.RFC3339Nano) + " " + strconv.FormatInt(m.Time.UnixMilli(), 10)})
		for _, rt := range rawTimes {
			if m.Time.Equal(rt) {
				out = append(out, "the raw record time "+rt.Format(time.RFC3339Nano)+" in the record time")
			}
		}
	}
	for _, h := range hays {
		low := strings.ToLower(h.text)
		for _, p := range pii {
			for _, f := range c.forms[p] {
				if strings.Contains(low, f) {
					found(h.where, p, "as "+f)
					break
				}
			}
			for _, f := range c.b64[p] {
				if strings.Contains(h.text, f) {
					found(h.where, p, "base64")
				}
			}
		}
	}
	// Decoded text: every key and string of the JSON value, the key and
	// the header values.
	texts := jsonTexts(m.Value)
	texts = append(texts, string(m.Key))
	for _, h := range m.Headers {
		texts = append(texts, h.Key, string(h.Value))
	}
	for _, t := range texts {
		if n, ok := integerText(t); ok {
			for _, p := range pii {
				if n == p {
					found("text "+strconv.Quote(t), p, "the same integer")
				}
			}
		}
		variants := decodings(t)
		for _, p := range pii {
			lp := strings.ToLower(p)
			for _, v := range variants {
				if strings.Contains(strings.ToLower(v), lp) {
					found("text "+strconv.Quote(t), p, "decoded")
					break
				}
			}
			if d, ok := c.nums[p]; ok {
				for _, v := range variants {
					if strings.Contains(digitsOf(v), d) {
						found("text "+strconv.Quote(t), p, "same digits")
						break
					}
				}
			}
		}
		for _, a := range addrsIn(variants) {
			for _, p := range pii {
				pa, ok := c.ips[p]
				if !ok {
					continue
				}
				if leaksIP(a, pa) {
					found("text "+strconv.Quote(t), p, "address "+a.String())
				}
			}
		}
	}
	sort.Strings(out)
	return dedupe(out)
}

// jsonTexts returns every key and string of raw (decoded) and the text of
// every number; raw itself when it is not JSON.
func jsonTexts(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			return append(out, string(raw))
		}
		switch v := tok.(type) {
		case string:
			out = append(out, v)
		case json.Number:
			out = append(out, v.String())
		}
	}
}

// integerText returns the integer a number text such as 7.008984883e9
// denotes, in plain decimal, when it denotes one (small exponents only).
func integerText(t string) (string, bool) {
	if len(t) == 0 || len(t) > 64 || strings.ContainsAny(t, " _") {
		return "", false
	}
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		if exp, err := strconv.Atoi(strings.TrimPrefix(t[i+1:], "+")); err != nil || exp > 40 || exp < -40 {
			return "", false
		}
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok || !r.IsInt() || strings.ContainsAny(t, "/") {
		return "", false
	}
	return r.Num().String(), true
}

// decodings returns t as a reader could decode it.
func decodings(t string) []string {
	out := []string{t}
	add := func(s string) {
		if !containsStr(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range append([]string(nil), out...) {
		d := s
		for range 3 {
			if u, err := url.PathUnescape(d); err == nil {
				d = u
				add(d)
			} else {
				d = lenientUnescape(d)
				add(d)
			}
		}
	}
	for _, s := range append([]string(nil), out...) {
		add(html.UnescapeString(s))
		add(unescapeJSONText(s))
		add(visible(norm.NFKC.String(s)))
	}
	return out
}

// lenientUnescape decodes valid %XX sequences and leaves the rest.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapeJSONText decodes JSON escapes written as text (a JSON document
// stored in a string).
func unescapeJSONText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var v string
	if err := json.Unmarshal([]byte(`"`+strings.ReplaceAll(s, `"`, `\"`)+`"`), &v); err == nil {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+5 < len(s) && s[i+1] == 'u' {
			if r, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
				b.WriteRune(rune(r))
				i += 5
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// visible drops invisible characters (format characters such as U+200B).
func visible(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) {
			return -1
		}
		return r
	}, s)
}

// addrsIn returns the IP addresses written in the texts.
func addrsIn(texts []string) []netip.Addr {
	var out []netip.Addr
	for _, t := range texts {
		for _, tok := range strings.FieldsFunc(t, func(r rune) bool {
			return !(r < 0x80 && (r == ':' || r == '.' || r == '%' || r == '[' || r == ']' || unicode.IsDigit(r) || unicode.IsLetter(r)))
		}) {
			tok = strings.Trim(tok, "[].")
			for _, cand := range []string{tok, strings.SplitN(tok, "%", 2)[0], strings.TrimSuffix(tok, ":"+lastPart(tok))} {
				if a, err := netip.ParseAddr(cand); err == nil {
					out = append(out, a.WithZone(""))
					break
				}
				if ap, err := netip.ParseAddrPort(cand); err == nil {
					out = append(out, ap.Addr())
					break
				}
			}
		}
	}
	return out
}

func lastPart(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// leaksIP reports whether clean address a gives away personal address p:
// an IPv4 p whose four bytes (or their complement, as Teredo stores them)
// are all in a, in a row or around an RFC 6052 "u" octet; an IPv6 p whose interface id is a's.
func leaksIP(a, p netip.Addr) bool {
	b := a.As16()
	if p.Is4() || p.Is4In6() {
		v4 := p.Unmap().As4()
		inv := [4]byte{^v4[0], ^v4[1], ^v4[2], ^v4[3]}
		if bytes.Contains(b[:], v4[:]) || bytes.Contains(b[:], inv[:]) {
			return true
		}
		// RFC 6052 prefixes of 40, 48 and 56 bits skip the "u" octet (bits 64-71).
		for _, at := range [][4]int{{5, 6, 7, 9}, {6, 7, 9, 10}, {7, 9, 10, 11}} {
			if b[at[0]] == v4[0] && b[at[1]] == v4[1] && b[at[2]] == v4[2] && b[at[3]] == v4[3] {
				return true
			}
		}
		return false
	}
	pb := p.As16()
	return a == p || !bytes.Equal(pb[8:], make([]byte, 8)) && bytes.Equal(b[8:], pb[8:])
}
