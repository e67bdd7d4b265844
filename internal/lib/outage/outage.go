// Package outage reports the outages of a system consentd depends on
// (Redis, Kafka) as a few lines rather than one per failed attempt: every
// loop that talks to the system reports each failure and each success to
// the system's Tracker, which logs a warning when the first loop fails
// (what is down, the setting that names its address, what consentd does
// meanwhile), then one summary per interval while any loop still fails,
// then one info line when the last failing loop succeeds again.
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
type Tracker struct {
	system, setting string
	log             *zap.Logger
	cfg             Config

	mu       sync.Mutex
	failing  map[*Loop]struct{}
	since    time.Time // zero: up
	lastLine time.Time // of the outage's last warning
	attempts int       // failures and notes since the outage began
	lastErr  string
	notes    map[string]*noteState // while up: per source
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
type Loop struct {
	t            *Tracker
	name, effect string
	failing      atomic.Bool
}

// Loop returns a new loop of t.
func (t *Tracker) Loop(name, effect string) *Loop {
	return &Loop{t: t, name: name, effect: effect}
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
	t.lastErr = msg
	_, known := t.failing[l]
	t.failing[l] = struct{}{}
	l.failing.Store(true)
	if t.since.IsZero() {
		t.since, t.lastLine, t.attempts = now, now, 1
		fields := []zap.Field{zap.String("loop", l.name)}
		if l.effect != "" {
			fields = append(fields, zap.String("meanwhile", l.effect))
		}
		if t.setting != "" {
			fields = append(fields, zap.String("setting", t.setting))
		}
		t.log.Warn(t.system+" unavailable", append(fields, zap.String("error", msg))...)
		return
	}
	t.attempts++
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

// Close withdraws l (its loop ended: a released partition, a stopped
// component). An outage that only l reported ends without a recovery line.
func (l *Loop) Close() {
	if !l.failing.Load() {
		return
	}
	l.t.leave(l, false)
}

func (t *Tracker) leave(l *Loop, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, known := t.failing[l]; !known {
		return
	}
	delete(t.failing, l)
	l.failing.Store(false)
	if len(t.failing) > 0 || t.since.IsZero() {
		t.log.Debug(t.system+" available again to one loop", zap.String("loop", l.name))
		return
	}
	now := t.cfg.Now()
	if ok {
		t.log.Info(t.system+" back", zap.Duration("after", now.Sub(t.since).Round(time.Millisecond)), zap.Int("attempts", t.attempts), zap.String("loop", l.name))
	} else {
		t.log.Debug(t.system+" outage no longer observed: its last failing loop ended", zap.String("loop", l.name))
	}
	t.since, t.attempts, t.lastErr = time.Time{}, 0, ""
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
		t.attempts++
		t.lastErr = source + ": " + detail
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

// summarizeLocked logs the outage's summary when Summary has passed since
// its last line.
func (t *Tracker) summarizeLocked(now time.Time) {
	if now.Sub(t.lastLine) < t.cfg.Summary {
		return
	}
	t.lastLine = now
	loops := make([]string, 0, len(t.failing))
	for l := range t.failing {
		loops = append(loops, l.name)
	}
	slices.Sort(loops)
	loops = slices.Compact(loops)
	t.log.Warn(t.system+" still unavailable", zap.Duration("for", now.Sub(t.since).Round(time.Second)),
		zap.Int("attempts", t.attempts), zap.Strings("loops", loops), zap.String("last_error", t.lastErr))
}
