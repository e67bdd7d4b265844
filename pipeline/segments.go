package pipeline

import (
	"sync"
	"sync/atomic"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/scrub"
)

// Segment stages, as Accounting.Segments counts them.
const (
	// StageRaw: events decided for an output (with a subject, valid, and
	// matching its filter), written or not.
	StageRaw = "raw"
	// StageClean: those of them written to it.
	StageClean = "clean"
)

// SegmentCount labels one count of the representation measurement: the
// events of one output at one stage whose segment field held one value.
type SegmentCount struct {
	Output, Field, Value, Stage string
}

// Fixed value slots of every segment field; admitted values follow.
const (
	slotOther = iota
	slotNone
	slotRedacted
	firstValueSlot
)

// segmentTable maps the values of every segment field to slots, shared
// by the partition workers of one process: the first Top values of a
// field that a written event carries (and that are found non-personal)
// get a slot of their own; later ones, and values no written event has
// carried yet, count as policy.SegmentOther. A label is thus always a
// value some clean topic already holds: the metric never shows a value
// only a subject without consent sent. Lookups read an immutable
// snapshot; admissions copy it under a lock (at most Top per field).
type segmentTable struct {
	pol    *policy.Policy
	spec   *policy.Segments
	fields []segmentValues
	// scanners for SegmentValue's check of values not yet admitted.
	scanners sync.Pool
}

type segmentValues struct {
	mu   sync.Mutex
	snap atomic.Pointer[segmentSnap]
}

type segmentSnap struct {
	slot  map[string]int
	names []string // by slot
}

func newSegmentTable(pol *policy.Policy) *segmentTable {
	s := pol.Segments
	if s == nil {
		return nil
	}
	t := &segmentTable{pol: pol, spec: s, fields: make([]segmentValues, len(s.Fields))}
	for i := range t.fields {
		t.fields[i].snap.Store(&segmentSnap{slot: map[string]int{}, names: []string{policy.SegmentOther, policy.SegmentNone, policy.SegmentRedacted}})
	}
	t.scanners.New = func() any { return &scrub.Scanner{} }
	return t
}

// slots is the number of value slots per field.
func (t *segmentTable) slots() int { return firstValueSlot + t.spec.Top }

// slotOf returns the slot of doc's value at field f. clean, nil when
// no output that measures f wrote the event, returns the text the
// first such output wrote at the field (found false when it wrote
// none there): a value not yet labelled gets a label only when it is
// safe and that output wrote it unchanged, so that the label is a
// value the clean topic holds (the output's own scrub, with its
// identifiers and options, had the last word). ids returns the event's
// identifier values.
func (t *segmentTable) slotOf(doc *event.Doc, f int, sc *scrub.Scanner, clean func(f int) (text []byte, found bool), ids func() [][]byte) int {
	fv := &t.fields[f]
	path := t.spec.Fields[f].Path
	v, found, _ := doc.Get(path)
	if !found || v.Kind == event.Null {
		return slotNone
	}
	// An admitted value was checked when admitted: a string, number or
	// boolean found in the table needs no scan.
	if v.Kind == event.String || v.Kind == event.Number || v.Kind == event.Bool {
		text := v.Raw
		if v.Kind == event.String {
			text = v.Text()
		}
		if s, ok := fv.snap.Load().slot[string(text)]; ok {
			return s
		}
	}
	snap := fv.snap.Load()
	if clean == nil || len(snap.names) >= t.slots() {
		return slotOther
	}
	label := policy.SegmentValue(doc, path, sc, ids())
	switch label {
	case policy.SegmentNone:
		return slotNone
	case policy.SegmentRedacted:
		return slotRedacted
	}
	if text, found := clean(f); !found || string(text) != label {
		return slotRedacted // the output rewrote it: personal data
	}
	fv.mu.Lock()
	defer fv.mu.Unlock()
	snap = fv.snap.Load()
	if s, ok := snap.slot[label]; ok {
		return s
	}
	if len(snap.names) >= t.slots() {
		return slotOther
	}
	next := &segmentSnap{slot: make(map[string]int, len(snap.slot)+1), names: append(snap.names[:len(snap.names):len(snap.names)], label)}
	for k, v := range snap.slot {
		next.slot[k] = v
	}
	s := len(snap.names)
	next.slot[label] = s
	fv.snap.Store(next)
	return s
}

// name returns the value of slot s of field f.
func (t *segmentTable) name(f, s int) string { return t.fields[f].snap.Load().names[s] }

// segmentTally counts one batch: per output, field, slot and stage.
type segmentTally struct {
	t      *segmentTable
	sc     *scrub.Scanner
	counts []int32
	// slot caches the current event's slot per field (-1: not looked up).
	slot []int
	// writer: per field, the first output that measures it and wrote the
	// current event (-1: none); cleanDoc is that output's value, parsed
	// (cleanOf: which output, -1: none yet).
	writer   []int
	cleanDoc event.Doc
	cleanOf  int
	// rec holds every event's slot per field, for refused writes.
	rec *segmentRecord
	// ids holds the current event's identifier values once read.
	ids     [][]byte
	idsRead bool
}

func (t *segmentTable) tally(events int) *segmentTally {
	if t == nil {
		return nil
	}
	nf := len(t.spec.Fields)
	rec := &segmentRecord{t: t, fields: nf, slots: make([]int16, events*nf)}
	for i := range rec.slots {
		rec.slots[i] = -1
	}
	return &segmentTally{t: t, sc: t.scanners.Get().(*scrub.Scanner), slot: make([]int, nf), writer: make([]int, nf), rec: rec}
}

// segmentRecord is a batch's segment slots per event and field (-1:
// not counted).
type segmentRecord struct {
	t      *segmentTable
	fields int
	slots  []int16
}

// unwrite takes a clean write of event origin to output out, which the
// broker refused, back out of acc's clean segment counts.
func (r *segmentRecord) unwrite(acc *Accounting, out string, origin int) {
	if r == nil || origin < 0 || (origin+1)*r.fields > len(r.slots) {
		return
	}
	for j, o := range r.t.pol.Outputs {
		if o.Name != out {
			continue
		}
		for _, f := range r.t.spec.ByOutput[j] {
			s := r.slots[origin*r.fields+f]
			if s < 0 {
				continue
			}
			k := SegmentCount{out, r.t.spec.Fields[f].Name, r.t.name(f, int(s)), StageClean}
			if acc.Segments[k] > 0 {
				acc.Segments[k]--
			}
			if acc.Segments[k] == 0 {
				delete(acc.Segments, k)
			}
		}
	}
}

func (g *segmentTally) index(out, f, slot int, clean bool) int {
	i := ((out*len(g.t.spec.Fields)+f)*g.t.slots() + slot) * 2
	if clean {
		i++
	}
	return i
}

// event counts one decided event: for every output it was decided for
// (written, or skipped while its filter selects it), its value of
// each of the output's segment fields, at stage raw, and at stage clean
// when written.
func (g *segmentTally) event(i int, doc *event.Doc, d *policy.Decision) {
	if g.counts == nil {
		g.counts = make([]int32, len(d.Outputs)*len(g.t.spec.Fields)*g.t.slots()*2)
	}
	for f := range g.slot {
		g.slot[f] = -1
		g.writer[f] = -1
	}
	g.idsRead = false
	g.cleanOf = -1
	written := false
	for j := range d.Outputs {
		if d.Outputs[j].Write {
			for _, f := range g.t.spec.ByOutput[j] {
				if g.writer[f] < 0 {
					g.writer[f] = j
					written = true
				}
			}
		}
	}
	clean := func(f int) ([]byte, bool) {
		j := g.writer[f]
		if g.cleanOf != j {
			if g.cleanDoc.Parse(d.Outputs[j].Value) != nil {
				return nil, false
			}
			g.cleanOf = j
		}
		v, found, _ := g.cleanDoc.Get(g.t.spec.Fields[f].Path)
		if !found {
			return nil, false
		}
		if v.Kind == event.String {
			return v.Text(), true
		}
		return v.Raw, true
	}
	ids := func() [][]byte {
		if !g.idsRead {
			g.ids, g.idsRead = g.t.pol.EventIdentifiers(doc, g.ids[:0]), true
		}
		return g.ids
	}
	typ, name := policy.TypeAndName(doc)
	for j := range d.Outputs {
		od := &d.Outputs[j]
		if !od.Write && !od.Output.Selects(typ, name) {
			continue
		}
		for _, f := range g.t.spec.ByOutput[j] {
			if g.slot[f] < 0 {
				check := clean
				if !written || g.writer[f] < 0 {
					check = nil
				}
				g.slot[f] = g.t.slotOf(doc, f, g.sc, check, ids)
				if i*len(g.slot)+f < len(g.rec.slots) {
					g.rec.slots[i*len(g.slot)+f] = int16(g.slot[f])
				}
			}
			g.counts[g.index(j, f, g.slot[f], false)]++
			if od.Write {
				g.counts[g.index(j, f, g.slot[f], true)]++
			}
		}
	}
}

// addTo adds the batch's counts to acc, releases the tally and returns
// the batch's record of slots (for refused writes).
func (g *segmentTally) addTo(acc *Accounting, outputs []*policy.Output) *segmentRecord {
	defer g.t.scanners.Put(g.sc)
	if g.counts == nil {
		return nil
	}
	if acc.Segments == nil {
		acc.Segments = map[SegmentCount]int{}
	}
	for j, o := range outputs {
		for _, f := range g.t.spec.ByOutput[j] {
			for s := 0; s < g.t.slots(); s++ {
				for stage, name := range [2]string{StageRaw, StageClean} {
					if n := g.counts[g.index(j, f, s, stage == 1)]; n > 0 {
						acc.Segments[SegmentCount{o.Name, g.t.spec.Fields[f].Name, g.t.name(f, s), name}] += int(n)
					}
				}
			}
		}
	}
	return g.rec
}
