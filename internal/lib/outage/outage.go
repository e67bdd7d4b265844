// Package outage reports the outages of a system consentd depends on
// (Redis, Kafka) as a few lines rather than one per failed attempt: every
// loop that talks to the system reports each failure and each success to
// the system's Tracker, which logs a warning when the first loop fails
// (what is down, the setting that names its address, what consentd does
// meanwhile), then one summary per interval while any loop still fails,
// then one info line when the last failing loop succeeds again. A loop
// run by several workers gives each a Member, so that one worker failing
// while the others succeed is one outage; a system that fails again soon
// after a recovery (flapping) is reported by the summaries, not by a
// fresh warning each time.
//
// Errors that a client library logs by itself (kafka-go's ErrorLogger)
// are Notes: counted in the summary during an outage, and otherwise
// logged at most once per interval per source.
//
// Owns: Tracker, Loop. Imports nothing of consentd.
package outage

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Config of a Tracker. The zero value is the production setting.
type Config struct {
	// Summary spaces the lines that say an outage goes on, and the lines
	// of one Note source while the system is up. Default: DefaultSummary.
	Summary time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// DefaultSummary is Config.Summary's default.
const DefaultSummary = time.Minute

// ApplyDefaults fills in the zero fields.
func (c *Config) ApplyDefaults() {
	if c.Summary <= 0 {
		c.Summary = DefaultSummary
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Tracker follows the outages of one system as its loops see them. It is
// safe for concurrent use.
//
// An outage that begins again within Summary of a recovery (the system
// flaps: up for a second, down again) logs no fresh warning: the new
// failures join the same episode, which the next summary reports with the
// number of outages it held, and whose recovery is logged only once a
// line said it went on. So a flapping system logs about two lines per
// Summary, not two per flap.
type Tracker struct {
	system, setting string
	log             *zap.Logger
	cfg             Config

	mu      sync.Mutex
	failing map[*Loop]struct{}
	since   time.Time             // of the current outage; zero: up
	lastUp  time.Time             // when the last outage ended
	episode *episode              // nil: none open
	notes   map[string]*noteState // while up: per source
}

// episode is one reported outage and the outages that quickly followed
// it: from its first failure to the recovery line that ends it.
type episode struct {
	began    time.Time
	lastLine time.Time // of the last line about the system
	attempts int       // failures and notes since began
	outages  int       // outages it held (1: no flapping)
	lastErr  string
	logged   bool // a warning about it was logged: its recovery is too
}

type noteState struct {
	last       time.Time
	suppressed int
}

// New returns a Tracker for system (as the logs name it: "Redis"), whose
// address is given by setting (a configuration key: "redis.addr"; empty
// when there is none), logging to log.
func New(system, setting string, log *zap.Logger, cfg Config) *Tracker {
	cfg.ApplyDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Tracker{system: system, setting: setting, log: log, cfg: cfg,
		failing: map[*Loop]struct{}{}, notes: map[string]*noteState{}}
}

// OrNew returns t, or when t is nil a new Tracker with the default
// Config: for components used without the application's wiring.
func OrNew(t *Tracker, system, setting string, log *zap.Logger) *Tracker {
	if t != nil {
		return t
	}
	return New(system, setting, log, Config{})
}

// Summary returns the interval between summaries (Config.Summary).
func (t *Tracker) Summary() time.Duration { return t.cfg.Summary }

// Down reports whether a loop currently fails, and since when.
func (t *Tracker) Down() (bool, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.since.IsZero(), t.since
}

// Loop is one loop's handle on its system's Tracker: name says which loop
// ("lease renewal", "fetch raw.events/3"), effect what consentd does while
// it fails ("holding events (fail closed)"). Neither may carry personal
// data. Safe for concurrent use.
//
// A loop run by several workers at once (one per partition) gives each
// worker a Member: the loop then fails while any member fails, so that
// one worker failing while the others succeed is one outage, not one per
// failure.
type Loop struct {
	t            *Tracker
	name, effect string
	parent       *Loop // of a Member
	failing      atomic.Bool
	members      atomic.Bool // Member was called
}

// Loop returns a new loop of t.
func (t *Tracker) Loop(name, effect string) *Loop {
	return &Loop{t: t, name: name, effect: effect}
}

// Member returns a handle of l for one of the workers that run it: its
// failures and successes are its own (another member's success does not
// end them), and the system is up again only when no member fails. Close
// a member when its worker ends: its failure is withdrawn without a
// recovery line. Closing l closes its members too.
func (l *Loop) Member() *Loop {
	l.members.Store(true)
	return &Loop{t: l.t, name: l.name, effect: l.effect, parent: l}
}

// Failed reports a failed attempt of l.
func (l *Loop) Failed(err error) {
	t := l.t
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	_, known := t.failing[l]
	t.failing[l] = struct{}{}
	l.failing.Store(true)
	if t.since.IsZero() {
		t.since = now
		e := t.episode // while up: an episode no line reported yet
		if !t.lastUp.IsZero() && now.Sub(t.lastUp) < t.cfg.Summary {
			// Down again soon after a recovery: the same episode, or a
			// new one that the next summary reports.
			if e == nil {
				e = &episode{began: now, lastLine: t.lastUp}
				t.episode = e
			}
			e.outages++
			e.attempts++
			e.lastErr = msg
			t.log.Debug(t.system+" unavailable again", zap.String("loop", l.name), zap.String("error", msg))
			t.summarizeLocked(now)
			return
		}
		t.episode = &episode{began: now, lastLine: now, attempts: 1, outages: 1, lastErr: msg, logged: true}
		fields := []zap.Field{zap.String("loop", l.name)}
		if e != nil {
			// Short outages since the last line that no line reported.
			fields = append(fields, zap.Int("unreported_outages", e.outages))
		}
		if l.effect != "" {
			fields = append(fields, zap.String("meanwhile", l.effect))
		}
		if t.setting != "" {
			fields = append(fields, zap.String("setting", t.setting))
		}
		t.log.Warn(t.system+" unavailable", append(fields, zap.String("error", msg))...)
		return
	}
	t.episode.attempts++
	t.episode.lastErr = msg
	if !known {
		t.log.Debug(t.system+" unavailable to one more loop", zap.String("loop", l.name), zap.String("error", msg))
	}
	t.summarizeLocked(now)
}

// OK reports a successful attempt of l. It is cheap while l is not
// failing, so that loops may call it after every success.
func (l *Loop) OK() {
	if !l.failing.Load() {
		return
	}
	l.t.leave(l, true)
}

// Close withdraws l and its members (its loop ended: a released
// partition, a stopped component). An outage that only they reported
// ends without a recovery line.
func (l *Loop) Close() {
	if !l.failing.Load() && !l.members.Load() {
		return
	}
	l.t.leave(l, false)
}

func (t *Tracker) leave(l *Loop, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	left := false
	for f := range t.failing {
		if f == l || !ok && f.parent == l {
			delete(t.failing, f)
			f.failing.Store(false)
			left = true
		}
	}
	if !left {
		return
	}
	if len(t.failing) > 0 || t.since.IsZero() {
		t.log.Debug(t.system+" available again to one loop", zap.String("loop", l.name))
		return
	}
	now := t.cfg.Now()
	t.since, t.lastUp = time.Time{}, now
	e := t.episode
	switch {
	case !ok:
		t.log.Debug(t.system+" outage no longer observed: its last failing loop ended", zap.String("loop", l.name))
		t.episode = nil
	case e.logged:
		fields := []zap.Field{zap.Duration("after", now.Sub(e.began).Round(time.Millisecond)), zap.Int("attempts", e.attempts), zap.String("loop", l.name)}
		if e.outages > 1 {
			fields = append(fields, zap.Int("outages", e.outages))
		}
		t.log.Info(t.system+" back", fields...)
		t.episode = nil
	default:
		// Back soon after an earlier recovery, and no line said it was
		// down: the episode stays open for the next summary.
		t.log.Debug(t.system+" available again", zap.String("loop", l.name))
	}
}

// Note reports an error that a client library logged by itself (source:
// "kafka reader"), with no success to pair it with. During an outage it
// is counted in the summary; otherwise each source logs a warning at most
// once per Summary, saying how many it left out since.
func (t *Tracker) Note(source, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	if !t.since.IsZero() {
		t.episode.attempts++
		t.episode.lastErr = source + ": " + detail
		t.log.Debug(source, zap.String("detail", detail))
		t.summarizeLocked(now)
		return
	}
	n := t.notes[source]
	if n != nil && now.Sub(n.last) < t.cfg.Summary {
		n.suppressed++
		t.log.Debug(source, zap.String("detail", detail))
		return
	}
	fields := []zap.Field{zap.String("detail", detail)}
	if n != nil && n.suppressed > 0 {
		fields = append(fields, zap.Int("left_out", n.suppressed), zap.Duration("left_out_in", t.cfg.Summary))
	}
	if n == nil {
		n = &noteState{}
		t.notes[source] = n
	}
	n.last, n.suppressed = now, 0
	t.log.Warn(source, fields...)
}

// summarizeLocked logs the episode's summary when Summary has passed
// since the last line.
func (t *Tracker) summarizeLocked(now time.Time) {
	e := t.episode
	if now.Sub(e.lastLine) < t.cfg.Summary {
		return
	}
	e.lastLine, e.logged = now, true
	loops := make([]string, 0, len(t.failing))
	for l := range t.failing {
		loops = append(loops, l.name)
	}
	slices.Sort(loops)
	loops = slices.Compact(loops)
	fields := []zap.Field{zap.Duration("for", now.Sub(e.began).Round(time.Second)),
		zap.Int("attempts", e.attempts), zap.Strings("loops", loops), zap.String("last_error", e.lastErr)}
	msg := t.system + " still unavailable"
	if e.outages > 1 {
		msg = t.system + " unavailable on and off"
		fields = append(fields, zap.Int("outages", e.outages))
	}
	t.log.Warn(msg, fields...)
}
