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

// slotOf returns the slot of doc's value at field f; admit allows a
// value not yet labelled to get a label (the event was written to an
// output that measures f). ids returns the event's identifier values.
func (t *segmentTable) slotOf(doc *event.Doc, f int, sc *scrub.Scanner, admit bool, ids func() [][]byte) int {
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
	if !admit || len(snap.names) >= t.slots() {
		return slotOther
	}
	label := policy.SegmentValue(doc, path, sc, ids())
	switch label {
	case policy.SegmentNone:
		return slotNone
	case policy.SegmentRedacted:
		return slotRedacted
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
	// admit: per field, whether the current event was written to an
	// output that measures it.
	admit []bool
	// ids holds the current event's identifier values once read.
	ids     [][]byte
	idsRead bool
}

func (t *segmentTable) tally() *segmentTally {
	if t == nil {
		return nil
	}
	return &segmentTally{t: t, sc: t.scanners.Get().(*scrub.Scanner), slot: make([]int, len(t.spec.Fields)), admit: make([]bool, len(t.spec.Fields))}
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
func (g *segmentTally) event(doc *event.Doc, d *policy.Decision) {
	if g.counts == nil {
		g.counts = make([]int32, len(d.Outputs)*len(g.t.spec.Fields)*g.t.slots()*2)
	}
	for f := range g.slot {
		g.slot[f] = -1
		g.admit[f] = false
	}
	g.idsRead = false
	for j := range d.Outputs {
		if d.Outputs[j].Write {
			for _, f := range g.t.spec.ByOutput[j] {
				g.admit[f] = true
			}
		}
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
				g.slot[f] = g.t.slotOf(doc, f, g.sc, g.admit[f], ids)
			}
			g.counts[g.index(j, f, g.slot[f], false)]++
			if od.Write {
				g.counts[g.index(j, f, g.slot[f], true)]++
			}
		}
	}
}

// addTo adds the batch's counts to acc and releases the tally.
func (g *segmentTally) addTo(acc *Accounting, outputs []*policy.Output) {
	defer g.t.scanners.Put(g.sc)
	if g.counts == nil {
		return
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
}
