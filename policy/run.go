package policy

import (
	"bytes"
	"time"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// run is one output's evaluation of one event, as transforms see it: the
// keys the output pseudonymizes with, where its actions are recorded, and
// the event's scratch, shared by all of the event's outputs.
type run struct {
	keys *Keyring
	acts *[]Action
	// op, when set, replaces the Op of every action recorded (actions a
	// consent signal requires rather than the output).
	op string
	ev *eventScratch
}

// rec records an action of the output.
func (x *run) rec(a Action) {
	if x.op != "" {
		a.Op = x.op
	}
	*x.acts = append(*x.acts, a)
}

// eventScratch holds what the outputs of one event share while a Decider
// decides it: an arena for replacement values and results computed once
// per event rather than once per output (pseudonyms, parsed timestamps,
// scrub results, identifier candidates). Everything in it is valid until
// the Decider's next event; nothing in it reaches a Decision (values are
// copied out by Edit.AppendTo).
type eventScratch struct {
	arena  []byte
	pseudo []pseudoMemo
	times  []timeMemo
	hashes []hashMemo
	forms  [][]byte // the hashes' forms (hashMemo.forms are slices of it)
	scrub  scrubMemo
	taint  taintMemo
}

// maxArena is the arena capacity kept between events: one huge event
// must not pin its buffer for the Decider's lifetime.
const maxArena = 1 << 20

// minArena is the arena capacity an event starts with: enough for the
// replacement values of a typical event's outputs.
const minArena = 8 << 10

// maxMemo bounds the pseudonyms and timestamps remembered per event; past
// it they are computed again (an event with thousands of pseudonymized
// fields costs what it cost before, not a quadratic search).
const maxMemo = 32

func (s *eventScratch) reset(members int) {
	if cap(s.arena) > maxArena || cap(s.arena) < minArena {
		s.arena = make([]byte, 0, minArena)
	}
	s.arena = s.arena[:0]
	s.forms = s.forms[:0]
	s.pseudo = s.pseudo[:0]
	s.times = s.times[:0]
	s.hashes = s.hashes[:0]
	s.scrub.reset(members)
	s.taint.reset()
}

// keep copies b into the arena and returns the copy, capped so that an
// append to it cannot touch the arena.
func (s *eventScratch) keep(b []byte) []byte {
	start := len(s.arena)
	s.arena = append(s.arena, b...)
	return s.arena[start:len(s.arena):len(s.arena)]
}

// keepString copies s into the arena.
func (s *eventScratch) keepString(str string) []byte {
	start := len(s.arena)
	s.arena = append(s.arena, str...)
	return s.since(start)
}

// since returns the arena bytes appended since start, capped.
func (s *eventScratch) since(start int) []byte {
	return s.arena[start:len(s.arena):len(s.arena)]
}

type pseudoMemo struct {
	keys   *Keyring
	id     string
	in     []byte
	quoted []byte
}

// pseudonym returns the pseudonym of in under keys' key id as a quoted
// JSON string ("KEYID:HEX" with its quotes), in the arena, computed once
// per event for each keyring, key and value.
func (s *eventScratch) pseudonym(keys *Keyring, id string, in []byte) ([]byte, error) {
	for i := range s.pseudo {
		m := &s.pseudo[i]
		if m.keys == keys && m.id == id && bytes.Equal(m.in, in) {
			return m.quoted, nil
		}
	}
	start := len(s.arena)
	s.arena = append(s.arena, '"')
	var err error
	if s.arena, err = keys.AppendPseudonym(s.arena, id, in); err != nil {
		s.arena = s.arena[:start]
		return nil, err
	}
	s.arena = append(s.arena, '"')
	quoted := s.since(start)
	if len(s.pseudo) < maxMemo {
		s.pseudo = append(s.pseudo, pseudoMemo{keys: keys, id: id, in: s.keep(in), quoted: quoted})
	}
	return quoted, nil
}

type timeMemo struct {
	raw []byte
	t   time.Time
	ok  bool
}

// timestamp parses the RFC 3339 string v once per event for each value:
// every output truncating a timestamp reads the same one.
func (s *eventScratch) timestamp(v event.Value) (time.Time, bool) {
	for i := range s.times {
		if bytes.Equal(s.times[i].raw, v.Raw) {
			return s.times[i].t, s.times[i].ok
		}
	}
	t, ok := parseTime(v.Text())
	if len(s.times) < maxMemo {
		s.times = append(s.times, timeMemo{raw: v.Raw, t: t, ok: ok})
	}
	return t, ok
}

// scrubMemo remembers, per member of the event, what scrub made of its
// value, key and (for URL fields) URL, for one configuration and set of
// needles: outputs whose scrub looks for the same identifiers with the
// same detectors reuse each other's results for the values they keep
// alike. Scrub results are a function of the bytes scanned, the needles
// and the configuration only, so a hit returns exactly what a scan would.
type scrubMemo struct {
	// gen numbers the (event, configuration and needles) the entries
	// with that generation were made for; sig is the current one's
	// configuration and needles.
	gen     uint64
	sig     []byte
	entries []scrubEntry
}

type scrubEntry struct {
	gen            uint64
	val, key, url  scrubResult
	hasVal, hasKey bool
	hasURL         bool
}

// scrubResult is one scan's outcome: out is nil when nothing changed.
type scrubResult struct {
	out   []byte
	n     int
	kinds scrub.Kinds
}

func (m *scrubMemo) reset(members int) {
	m.gen++
	m.sig = m.sig[:0]
	if cap(m.entries) < members {
		m.entries = make([]scrubEntry, members)
	}
	m.entries = m.entries[:members]
}

// use makes sig (configuration and needles) the current one: entries made
// for another are forgotten.
func (m *scrubMemo) use(sig []byte) {
	if !bytes.Equal(sig, m.sig) {
		m.gen++
		m.sig = append(m.sig[:0], sig...)
	}
}

// entry returns member i's entry, emptied if made for another generation.
func (m *scrubMemo) entry(i int) *scrubEntry {
	e := &m.entries[i]
	if e.gen != m.gen {
		*e = scrubEntry{gen: m.gen}
	}
	return e
}

// taintMemo holds an event's identifier occurrences found by name (see
// scrubT.occurrences), for outputs whose scrub names the same
// identifiers: which members they are does not depend on the output,
// whether each is kept does.
type taintMemo struct {
	names  string // scrubT.namesKey the occurrences were found for
	ready  bool
	occs   []occurrence
	leaves []event.Value
}

// occurrence is a member named like an identifier or lying in one
// (scalar, or array taken whole), or an array holding scalars under such
// a name: leaves[from:to] are the scalars taken when it is not kept.
type occurrence struct {
	ref      event.Ref
	v        event.Value
	array    bool
	from, to int
}

func (m *taintMemo) reset() { m.ready = false }

type hashMemo struct {
	of    []byte
	forms [][]byte
}

// appendHashes appends to dst the hashed forms of v (scrub.AppendHashes),
// computed once per event for each value: every output tracking an
// e-mail address looks for the same hashes.
func (s *eventScratch) appendHashes(dst [][]byte, v []byte) [][]byte {
	if bytes.IndexByte(v, '@') < 0 {
		return dst
	}
	for i := range s.hashes {
		if bytes.Equal(s.hashes[i].of, v) {
			return append(dst, s.hashes[i].forms...)
		}
	}
	start := len(s.forms)
	s.forms, s.arena = scrub.AppendHashes(s.forms, s.arena, v)
	forms := s.forms[start:len(s.forms):len(s.forms)]
	if len(s.hashes) < maxMemo {
		s.hashes = append(s.hashes, hashMemo{of: v, forms: forms})
	}
	return append(dst, forms...)
}
