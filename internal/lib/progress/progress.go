// Package progress reports how far a long command has got: on a terminal
// a bar with the count, rate and time left (schollz/progressbar),
// elsewhere (a log file, a CI job, a pipe) a plain line every few seconds
// with the count, rate and time left, so that captured output stays
// readable. Every long command (migrate, export, audit) uses one Meter.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultEvery is how often a Meter that does not draw a bar prints a
// line.
const DefaultEvery = 5 * time.Second

// Meter counts done items of a run toward a total. A nil *Meter does
// nothing (a quiet command). Not safe for concurrent use.
type Meter struct {
	w     io.Writer
	desc  string // what the command is doing: "migrating"
	unit  string // what it counts: "keys"
	total int64  // <= 0: unknown
	done  int64
	bar   *progressbar.ProgressBar
	// every spaces the plain lines; now is the clock (tests set both).
	every       time.Duration
	now         func() time.Time
	start, last time.Time
}

// New returns a Meter writing to w, drawing a bar when w is a terminal.
// total <= 0 means unknown (no time left is estimated).
func New(w io.Writer, desc, unit string, total int64) *Meter {
	m := newMeter(w, desc, unit, total, time.Now, DefaultEvery)
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		m.bar = progressbar.NewOptions64(barTotal(total), progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	}
	return m
}

func newMeter(w io.Writer, desc, unit string, total int64, now func() time.Time, every time.Duration) *Meter {
	t := now()
	return &Meter{w: w, desc: desc, unit: unit, total: total, now: now, every: every, start: t, last: t}
}

func barTotal(total int64) int64 {
	if total <= 0 {
		return -1 // a spinner
	}
	return total
}

// SetTotal sets the total once it is known (or changes it).
func (m *Meter) SetTotal(total int64) {
	if m == nil {
		return
	}
	m.total = total
	if m.bar != nil {
		m.bar.ChangeMax64(barTotal(total))
	}
}

// Set records that done items are done.
func (m *Meter) Set(done int64) {
	if m == nil {
		return
	}
	m.done = done
	if m.bar != nil {
		_ = m.bar.Set64(done)
		return
	}
	if t := m.now(); t.Sub(m.last) >= m.every {
		m.last = t
		fmt.Fprintln(m.w, m.line(t))
	}
}

// Add records n more items done.
func (m *Meter) Add(n int64) {
	if m != nil {
		m.Set(m.done + n)
	}
}

// Finish ends the run: the bar is completed, or a last line says how many
// items took how long.
func (m *Meter) Finish() {
	if m == nil {
		return
	}
	if m.bar != nil {
		_ = m.bar.Finish()
		return
	}
	if m.done == 0 {
		return
	}
	el := m.now().Sub(m.start)
	fmt.Fprintf(m.w, "%s: %d %s in %s (%s)\n", m.desc, m.done, m.unit, el.Round(time.Millisecond), rate(m.done, el, m.unit))
}

// line is the plain progress line at t.
func (m *Meter) line(t time.Time) string {
	el := t.Sub(m.start)
	if m.total <= 0 {
		return fmt.Sprintf("%s: %d %s, %s", m.desc, m.done, m.unit, rate(m.done, el, m.unit))
	}
	s := fmt.Sprintf("%s: %d of %d %s (%d%%), %s", m.desc, m.done, m.total, m.unit, m.done*100/m.total, rate(m.done, el, m.unit))
	if m.done > 0 && m.done < m.total {
		left := time.Duration(float64(el) * float64(m.total-m.done) / float64(m.done))
		s += ", about " + left.Round(time.Second).String() + " left"
	}
	return s
}

func rate(n int64, el time.Duration, unit string) string {
	if el <= 0 {
		return "- " + unit + "/s"
	}
	return fmt.Sprintf("%.0f %s/s", float64(n)/el.Seconds(), unit)
}
