package policy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// ScrubSpec configures scrub: personal data found in what an output keeps.
type ScrubSpec struct {
	// Fields whose values, and the keys below them, are scrubbed: e-mail
	// addresses, phone numbers, card numbers, IP literals and the event's
	// own subject ids are replaced by [email], [phone], [card], [ip] and
	// [id]. Default: ["*"] (every field the output still has).
	Fields []string `yaml:"fields"`
	// URLs are fields holding URLs, paths or query strings, reduced to
	// scheme, host and the path segments no detector matches; the query
	// keeps only KeepParams and the fragment is dropped. They are scrubbed
	// before Fields. Default: context.page.{url,path,referrer,search} and
	// properties.{url,path,referrer,search}.
	URLs []string `yaml:"urls"`
	// KeepParams are the query parameters URLs keep; a trailing "*" makes
	// a prefix. Default: ["utm_*"].
	KeepParams []string `yaml:"keep_params"`
	// IDs are the fields holding the event's subject ids, whose values are
	// replaced wherever else they appear (whole words of two characters or
	// more; whole URL path segments of any length).
	// Default: [userId, anonymousId, previousId].
	IDs []string `yaml:"ids"`
	// Identifiers name the fields whose values are tracked through the
	// output (taint tracking): when the output removes or rewrites such a
	// field, its value is replaced wherever else the output still has it,
	// in the forms Fields are scanned in (see "Taint tracking" in the
	// README). An entry with a dot is a path ("context.device.id"); one
	// without is a key name matched at any depth, ignoring ASCII case,
	// "_" and "-" ("email" matches "Email", "e_mail"). Values of fields
	// the output's drop_fields, pseudonymize and truncate_ip name, and of
	// the policy's subjects, are tracked as well. Default:
	// DefaultIdentifiers.
	Identifiers []string `yaml:"identifiers"`
	// Hashes replaces every 32, 40 or 64 hex-digit word (an MD5, SHA-1 or
	// SHA-256: hashed e-mails are ad tech's match keys) by [hash]. Hashes
	// of the event's own e-mail addresses are found without it. Default:
	// false (order references and content hashes look the same).
	Hashes bool `yaml:"hashes"`
	// AtWords reads "(at)", "[at]", "{at}", "<at>" and the same forms of
	// "dot" inside e-mail addresses ("alice [at] example [dot] com").
	// Default: false.
	AtWords bool `yaml:"at_words"`
}

// DefaultIdentifiers are the identifier fields of Segment, RudderStack and
// Snowplow events (key names at any depth, and paths).
var DefaultIdentifiers = []string{
	// Segment and RudderStack
	"userId", "anonymousId", "previousId", "email", "emailAddress", "phone", "phoneNumber", "mobile",
	"advertisingId", "adId", "idfa", "idfv", "gaid", "androidId", "deviceId", "context.device.id",
	"context.device.token", "ip", "ipAddress", "request_ip", "userAgent", "sessionId", "externalId", "externalIds",
	// Snowplow
	"user_id", "domain_userid", "network_userid", "domain_sessionid", "user_ipaddress", "useragent",
	"user_fingerprint", "mkt_clickid", "refr_domain_userid", "apple_idfa", "apple_idfv", "android_idfa", "open_idfa",
	// click ids
	"gclid", "fbclid", "msclkid", "ttclid",
}

// MaxCandidates bounds the identifier values (repeats included) one event
// may hold for one output before they are told apart: an event with more
// is dead-lettered (too_many_identifiers) rather than searched.
const MaxCandidates = 16 * MaxNeedles

// MaxNeedles bounds the distinct identifiers one event may hold for one
// output: each is searched in every kept field, so an event with
// thousands would cost thousands of scans per field. An event with more is
// dead-lettered (too_many_identifiers) rather than passed on unchecked.
const MaxNeedles = 64

var (
	defaultScrubURLs = []string{"context.page.url", "context.page.path", "context.page.referrer", "context.page.search",
		"properties.url", "properties.path", "properties.referrer", "properties.search"}
	defaultScrubIDs = []string{"userId", "anonymousId", "previousId"}
)

type scrubT struct {
	fields fields
	urls   fields
	ids    []event.Path
	params []string
	// Taint sources: paths (the output's drop_fields, pseudonymize and
	// truncate_ip fields, the policy's subjects, identifier paths) and
	// normalized identifier key names.
	sources []event.Path
	names   map[string]bool
	// nameFirst marks the first bytes of normalized names, maxName their
	// longest length: most keys are ruled out without normalizing them.
	nameFirst [256]bool
	maxName   int
	hashes    bool
	atWords   bool
	// sig starts the signature of a scan (scrubMemo): every setting a
	// scan's result depends on besides the needles. namesKey names the
	// identifier names (taintMemo).
	sig      []byte
	namesKey string
}

func compileScrub(s *ScrubSpec) (*scrubT, error) {
	f, err := paths(s.Fields, "*")
	if err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	u, err := paths(s.URLs, defaultScrubURLs...)
	if err != nil {
		return nil, fmt.Errorf("scrub: urls: %w", err)
	}
	ids, err := paths(s.IDs, defaultScrubIDs...)
	if err != nil {
		return nil, fmt.Errorf("scrub: ids: %w", err)
	}
	for _, p := range ids {
		if p.HasWildcard() {
			return nil, fmt.Errorf("scrub: ids: %s: wildcards are not allowed", p)
		}
	}
	params := s.KeepParams
	if params == nil {
		params = []string{"utm_*"}
	}
	for _, p := range params {
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return nil, fmt.Errorf("scrub: keep_params: %q: want a name or a prefix ending in *", p)
		}
	}
	t := &scrubT{fields: newFields(f), urls: newFields(u), ids: ids, params: params, names: map[string]bool{}, hashes: s.Hashes, atWords: s.AtWords}
	idents := s.Identifiers
	if idents == nil {
		idents = DefaultIdentifiers
	}
	for _, id := range idents {
		if !strings.Contains(id, ".") {
			k := normKey(nil, []byte(id))
			if len(k) == 0 {
				return nil, fmt.Errorf("scrub: identifiers: %q: want a key name or a path", id)
			}
			t.names[string(k)] = true
			t.nameFirst[k[0]] = true
			t.maxName = max(t.maxName, len(k))
			continue
		}
		p, err := event.ParsePath(id)
		if err != nil {
			return nil, fmt.Errorf("scrub: identifiers: %w", err)
		}
		t.sources = append(t.sources, p)
	}
	names := slices.Sorted(maps.Keys(t.names))
	t.namesKey = strings.Join(names, "\x00")
	t.sig = fmt.Appendf(nil, "hashes=%t at=%t params=%q\x00", t.hashes, t.atWords, params)
	return t, nil
}

// track adds paths whose values the output removes or rewrites to the
// taint sources (Compile calls it with the output's other transforms and
// the policy's subjects).
func (t *scrubT) track(ps ...event.Path) {
	for _, p := range ps {
		if !slices.ContainsFunc(t.sources, func(q event.Path) bool { return slices.Equal(p, q) }) {
			t.sources = append(t.sources, p)
		}
	}
}

// normKey appends key lower-cased without "_", "-", "." and spaces: the
// form identifier names are compared in.
func normKey(dst, key []byte) []byte {
	for _, c := range key {
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c|0x20)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func (t *scrubT) String() string {
	return fmt.Sprintf("scrub: %s; urls %s keeping params %s", t.fields, t.urls, strings.Join(t.params, ", "))
}

func (t *scrubT) fieldPaths() []event.Path {
	return append(append(append([]event.Path(nil), t.fields.paths...), t.urls.paths...), t.ids...)
}

func (t *scrubT) keepParam(name string) bool {
	for _, p := range t.params {
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, pre) || name == p {
			return true
		}
	}
	return false
}

type scrubState struct {
	sc      scrub.Scanner
	ids     [][]byte
	idRefs  []event.Ref
	scratch []byte
	key     []byte
	// Taint candidates: values of identifier fields, and those the output
	// keeps as they were (not needles: the policy lets them through).
	cands, kept [][]byte
	nkey        []byte
	under       []bool // needles: identifier fields on the way, by depth
	// arena holds the needles derived from values ("+" forms).
	arena []byte
	// sig: the current scan's signature (scrubMemo.use).
	sig []byte
}

var scrubPool = sync.Pool{New: func() any { return new(scrubState) }}

func (t *scrubT) Apply(ed *event.Edit, x *run) error {
	st := scrubPool.Get().(*scrubState)
	defer scrubPool.Put(st)
	st.ids, st.idRefs = st.ids[:0], st.idRefs[:0]
	st.sc.Hashes, st.sc.AtWords = t.hashes, t.atWords
	if err := t.needles(ed, st, x.ev); err != nil {
		return err
	}
	for _, p := range t.ids {
		v, ok, err := ed.Original(p)
		if err != nil {
			return err
		}
		if ok && (v.Kind == event.String || v.Kind == event.Number) {
			// Usually already tracked (subjects are taint sources); kept
			// verbatim, it is searched all the same.
			if id := v.Text(); len(id) > 0 && !slices.ContainsFunc(st.ids, func(k []byte) bool { return bytes.Equal(k, id) }) {
				st.ids = append(st.ids, id)
			}
		}
		// The id fields themselves are the pseudonymize transform's business.
		if err := ed.Each(p, func(r event.Ref) error { st.idRefs = append(st.idRefs, r); return nil }); err != nil {
			return err
		}
	}
	// Scans depend on the settings and the needles only: outputs of this
	// event looking for the same ones, in whatever order they found them,
	// share their results.
	slices.SortFunc(st.ids, byLenThenBytes)
	st.sig = append(st.sig[:0], t.sig...)
	for _, id := range st.ids {
		st.sig = binary.AppendUvarint(st.sig, uint64(len(id)))
		st.sig = append(st.sig, id...)
	}
	memo := &x.ev.scrub
	memo.use(st.sig)
	ev := x.ev
	err := t.urls.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		if v.Kind != event.String {
			return nil
		}
		var res scrubResult
		e := memo.entry(r.Index())
		if original := !ed.Replaced(r); original && e.hasURL {
			res = e.url
		} else {
			st.sc.Found()
			out, n := st.sc.URL(st.scratch[:0], v.Text(), t.keepParam, st.ids)
			st.scratch = out
			if n > 0 {
				start := len(ev.arena)
				ev.arena = scrub.AppendQuoted(ev.arena, out)
				res = scrubResult{out: ev.since(start), n: n, kinds: st.sc.Found()}
			}
			if original {
				e.url, e.hasURL = res, true
			}
		}
		if res.n > 0 {
			ed.Replace(r, res.out)
			x.rec(Action{Op: "scrub", Path: path, Count: res.n, Kinds: res.kinds})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return t.fields.each(ed, func(r event.Ref, path string) error {
		total := 0
		var kinds scrub.Kinds
		ed.Rewrite(r, func(r event.Ref, key []byte, pos int) []byte {
			// Rewrite passes original keys only.
			e := memo.entry(r.Index())
			if !e.hasKey {
				st.sc.Found()
				out, n := st.sc.Text(st.key[:0], key, st.ids)
				st.key = out
				e.hasKey = true
				if n > 0 {
					out = fmt.Appendf(out, "#%d", pos)
					start := len(ev.arena)
					ev.arena = scrub.AppendQuoted(ev.arena, out)
					e.key = scrubResult{out: ev.since(start), n: n, kinds: st.sc.Found()}
				}
			}
			total += e.key.n
			kinds |= e.key.kinds
			return e.key.out
		}, func(r event.Ref, v event.Value) []byte {
			if v.Kind == event.Bool || v.Kind == event.Null || slices.Contains(st.idRefs, r) {
				return nil
			}
			// Rewrite passes original values only.
			e := memo.entry(r.Index())
			if !e.hasVal {
				st.sc.Found()
				out, n := st.sc.JSON(st.scratch[:0], v.Raw, st.ids)
				st.scratch = out
				e.hasVal = true
				if n > 0 {
					e.val = scrubResult{out: ev.keep(out), n: n, kinds: st.sc.Found()}
				}
			}
			total += e.val.n
			kinds |= e.val.kinds
			return e.val.out
		})
		if total > 0 {
			x.rec(Action{Op: "scrub", Path: path, Count: total, Kinds: kinds})
		}
		return nil
	})
}

// byLenThenBytes orders needles by length, then bytes: a canonical
// order, cheap to reach (needles mostly differ in length).
func byLenThenBytes(a, b []byte) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}

// occurrences records in memo the event's members named like an
// identifier or lying in one (their scalars, and arrays with all their
// scalars: e.g. RudderStack externalId: [{id, type}]), and arrays holding
// scalars under such a name (e.g. Snowplow contexts: [{data:
// {domain_userid}}]) with those scalars.
func (t *scrubT) occurrences(ed *event.Edit, st *scrubState, memo *taintMemo) {
	memo.names, memo.ready = t.namesKey, true
	memo.occs, memo.leaves = memo.occs[:0], memo.leaves[:0]
	named := func(k []byte) bool { return t.isName(k, st) }
	st.under = st.under[:0]
	ed.WalkOriginal(func(depth int, r event.Ref, key []byte, v event.Value, _ bool) {
		// st.under[d]: the last member seen at depth d (the parent of
		// the members that follow at d+1) is or lies in an identifier
		// field.
		in := depth > 0 && st.under[depth-1] || t.isName(key, st)
		st.under = append(st.under[:depth], in)
		switch v.Kind {
		case event.Object:
		case event.Array:
			from := len(memo.leaves)
			v.EachLeaf(func(keys [][]byte, l event.Value) {
				// More than MaxCandidates from one array refuse the event
				// wherever it is not kept, whatever the rest holds.
				if len(memo.leaves)-from <= MaxCandidates && (in || slices.ContainsFunc(keys, named)) {
					memo.leaves = append(memo.leaves, l)
				}
			})
			if len(memo.leaves) > from {
				memo.occs = append(memo.occs, occurrence{ref: r, v: v, array: true, from: from, to: len(memo.leaves)})
			}
		default:
			if in {
				memo.occs = append(memo.occs, occurrence{ref: r, v: v})
			}
		}
	})
}

// needles collects into st.ids the event's identifiers that this output
// removes or rewrites (taint tracking): the original values of the taint
// source paths and of members named like an identifier, at any depth,
// except values the output still has verbatim in such a field (the
// policy lets those through), with the hashes of e-mail addresses.
// isName reports whether key names an identifier field (scrub.identifiers
// without a dot), ignoring case and '_', '-', '.' and spaces.
func (t *scrubT) isName(key []byte, st *scrubState) bool {
	if len(t.names) == 0 {
		return false
	}
	k := 0
	for k < len(key) && (key[k] == '_' || key[k] == '-' || key[k] == '.' || key[k] == ' ') {
		k++
	}
	if k == len(key) || !t.nameFirst[key[k]|0x20] && !t.nameFirst[key[k]] || len(key) > 2*t.maxName {
		return false
	}
	st.nkey = normKey(st.nkey[:0], key)
	return t.names[string(st.nkey)]
}

func (t *scrubT) needles(ed *event.Edit, st *scrubState, ev *eventScratch) error {
	memo := &ev.taint
	st.cands, st.kept, st.arena = st.cands[:0], st.kept[:0], st.arena[:0]
	add := func(v event.Value, kept bool) {
		var b []byte
		switch v.Kind {
		case event.String:
			b = v.Text()
		case event.Number:
			b = v.Raw
		default:
			return
		}
		if len(bytes.TrimSpace(b)) < scrub.MinIDLen {
			return
		}
		switch {
		case kept:
			st.kept = append(st.kept, b)
		case len(st.cands) <= MaxCandidates: // one past it: refused below
			st.cands = append(st.cands, b)
		}
	}
	// Inside removed arrays and objects: every scalar of a removed source
	// field, of an identifier field and of any member below one, and in
	// arrays (which paths never enter) every scalar with an identifier
	// key on its way. What the output keeps inside an array or object is
	// scanned like any kept value, never exempted.
	for _, p := range t.sources {
		ed.EachOriginal(p, func(v event.Value, kept bool) {
			switch {
			case v.Kind != event.Array && v.Kind != event.Object:
				add(v, kept)
			case !kept:
				v.EachLeaf(func(_ [][]byte, l event.Value) { add(l, false) })
			}
		})
	}
	if len(t.names) > 0 {
		// Which members are named like identifiers depends on the event
		// only: found once per event, checked per output.
		if !memo.ready || memo.names != t.namesKey {
			t.occurrences(ed, st, memo)
		}
		for _, oc := range memo.occs {
			kept := ed.Kept(oc.ref)
			switch {
			case !oc.array:
				add(oc.v, kept)
			case !kept:
				for _, l := range memo.leaves[oc.from:oc.to] {
					add(l, false)
				}
			}
		}
	}
	if len(st.cands) > MaxCandidates {
		return &InputError{Reason: ReasonTooManyIdentifiers, Err: fmt.Errorf("scrub: more than %d identifier values", MaxCandidates)}
	}
	for _, c := range st.cands {
		same := func(k []byte) bool { return bytes.Equal(k, c) }
		if slices.ContainsFunc(st.kept, same) || slices.ContainsFunc(st.ids, same) {
			continue
		}
		if len(st.ids) >= MaxNeedles {
			return &InputError{Reason: ReasonTooManyIdentifiers, Err: fmt.Errorf("scrub: more than %d distinct identifiers", MaxNeedles)}
		}
		st.ids = append(st.ids, c)
		if bytes.IndexByte(c, ' ') >= 0 {
			// Form-encoded text writes spaces as "+" (percent-decoding
			// leaves "+" alone: it is a plus in URL paths).
			if cap(st.arena)-len(st.arena) < len(c) {
				st.arena = make([]byte, 0, max(1024, 2*len(c)))
			}
			start := len(st.arena)
			for _, b := range c {
				if b == ' ' {
					b = '+'
				}
				st.arena = append(st.arena, b)
			}
			st.ids = append(st.ids, st.arena[start:len(st.arena):len(st.arena)])
		}
		if d, ok := st.sc.Decoded(nil, c); ok {
			// Allocates only for a value with "%", "&" or non-ASCII.
			st.ids = append(st.ids, d)
		}
		st.ids = ev.appendHashes(st.ids, c)
	}
	return nil
}
