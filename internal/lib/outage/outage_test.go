package outage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// step is one report at a point of a fake clock: loop "a" or "b" failed,
// succeeded or closed, or a note from source "lib".
type step struct {
	at   time.Duration
	loop string // "a", "b", shared loop "p" or its members "p1", "p2", or "" for a note
	op   string // "fail", "ok", "close", "note"
}

func run(t *testing.T, steps []step) []observer.LoggedEntry {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	tr := New("Redis", "redis.addr", zap.New(core), Config{Now: func() time.Time { return now }})
	shared := tr.Loop("produce", "held")
	loops := map[string]*Loop{"a": tr.Loop("a", "holding events"), "b": tr.Loop("b", ""),
		"p": shared, "p1": shared.Member(), "p2": shared.Member()}
	for _, s := range steps {
		now = start.Add(s.at)
		switch s.op {
		case "fail":
			loops[s.loop].Failed(errors.New("dial tcp: connection refused"))
		case "ok":
			loops[s.loop].OK()
		case "close":
			loops[s.loop].Close()
		case "note":
			tr.Note("lib", "broken pipe")
		default:
			t.Fatalf("bad op %q", s.op)
		}
	}
	return logs.AllUntimed()
}

// every returns the steps of loop failing every d from from to to.
func every(loop string, d, from, to time.Duration) []step {
	var out []step
	for at := from; at < to; at += d {
		out = append(out, step{at, loop, "fail"})
	}
	return out
}

func lines(entries []observer.LoggedEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Level.String() + " " + e.Message
	}
	return out
}

// same fails t unless got are the lines want.
func same(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTracker(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "healthy loop logs nothing",
			steps: []step{{0, "a", "ok"}, {time.Second, "a", "ok"}},
			want:  []string{},
		},
		{
			name:  "a short outage: one warning, one recovery",
			steps: append(every("a", 100*time.Millisecond, 0, 10*time.Second), step{10 * time.Second, "a", "ok"}),
			want:  []string{"warn Redis unavailable", "info Redis back"},
		},
		{
			name: "five minutes at 10 attempts a second: a summary a minute",
			steps: append(every("a", 100*time.Millisecond, 0, 5*time.Minute+time.Second),
				step{5*time.Minute + time.Second, "a", "ok"}),
			want: []string{"warn Redis unavailable",
				"warn Redis still unavailable", "warn Redis still unavailable", "warn Redis still unavailable",
				"warn Redis still unavailable", "warn Redis still unavailable", "info Redis back"},
		},
		{
			name: "two loops: one outage, back when both are",
			steps: append(append(every("a", time.Second, 0, 30*time.Second), every("b", time.Second, 5*time.Second, 30*time.Second)...),
				step{31 * time.Second, "a", "ok"}, step{32 * time.Second, "b", "ok"}),
			want: []string{"warn Redis unavailable", "info Redis back"},
		},
		{
			name:  "a closed loop ends the outage without a recovery line",
			steps: []step{{0, "a", "fail"}, {time.Second, "a", "close"}, {2 * time.Second, "a", "ok"}},
			want:  []string{"warn Redis unavailable"},
		},
		{
			name:  "a second outage is reported again",
			steps: []step{{0, "a", "fail"}, {time.Second, "a", "ok"}, {2 * time.Hour, "b", "fail"}, {2*time.Hour + time.Second, "b", "ok"}},
			want:  []string{"warn Redis unavailable", "info Redis back", "warn Redis unavailable", "info Redis back"},
		},
		{
			name: "notes while up: one a minute per source",
			steps: []step{{0, "", "note"}, {time.Second, "", "note"}, {2 * time.Second, "", "note"},
				{61 * time.Second, "", "note"}, {62 * time.Second, "", "note"}},
			want: []string{"warn lib", "warn lib"},
		},
		{
			name: "notes during an outage are folded into its summary",
			steps: append([]step{{0, "a", "fail"}, {time.Second, "", "note"}, {30 * time.Second, "", "note"}, {61 * time.Second, "", "note"}},
				step{62 * time.Second, "a", "ok"}),
			want: []string{"warn Redis unavailable", "warn Redis still unavailable", "info Redis back"},
		},
		{
			name: "one member fails every second while another succeeds: one outage",
			steps: append(alternate("p1", "p2", 5*time.Minute+time.Second),
				step{5*time.Minute + time.Second, "p1", "ok"}),
			want: []string{"warn Redis unavailable",
				"warn Redis still unavailable", "warn Redis still unavailable", "warn Redis still unavailable",
				"warn Redis still unavailable", "warn Redis still unavailable", "info Redis back"},
		},
		{
			name:  "a closed member withdraws its failure quietly",
			steps: []step{{0, "p1", "fail"}, {time.Second, "p2", "fail"}, {2 * time.Second, "p1", "close"}, {3 * time.Second, "p2", "ok"}},
			want:  []string{"warn Redis unavailable", "info Redis back"},
		},
		{
			name:  "closing the loop closes its members",
			steps: []step{{0, "p1", "fail"}, {time.Second, "p2", "fail"}, {2 * time.Second, "p", "close"}, {3 * time.Second, "p1", "ok"}, {4 * time.Second, "p2", "ok"}},
			want:  []string{"warn Redis unavailable"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lines(run(t, tc.steps))
			same(t, got, tc.want)
		})
	}
}

// TestTrackerFields: the lines say what is down, which setting names it,
// how long and how many attempts, and the last error.
func TestTrackerFields(t *testing.T) {
	steps := append(every("a", 100*time.Millisecond, 0, 3*time.Minute+time.Second), step{4*time.Minute + 12*time.Second, "a", "ok"})
	entries := run(t, steps)
	first, last := entries[0].ContextMap(), entries[len(entries)-1].ContextMap()
	if first["setting"] != "redis.addr" || first["loop"] != "a" || first["meanwhile"] != "holding events" || !strings.Contains(fmt.Sprint(first["error"]), "connection refused") {
		t.Errorf("first line: %v", first)
	}
	summary := entries[len(entries)-2].ContextMap()
	if summary["for"] != 3*time.Minute || summary["attempts"] != int64(1801) || summary["last_error"] != "dial tcp: connection refused" {
		t.Errorf("summary: %v", summary)
	}
	if last["after"] != 4*time.Minute+12*time.Second || last["attempts"] != int64(1810) {
		t.Errorf("recovery: %v", last)
	}
}

// TestNoteLeftOut: a note after a quiet interval says how many were left
// out.
func TestNoteLeftOut(t *testing.T) {
	entries := run(t, []step{{0, "", "note"}, {time.Second, "", "note"}, {2 * time.Second, "", "note"}, {time.Minute, "", "note"}})
	if len(entries) != 2 || entries[1].ContextMap()["left_out"] != int64(2) {
		t.Fatalf("%v", entries)
	}
}

// TestOKWithoutFailure: OK and Close of a loop that never failed change
// nothing; a failure makes the system down.
func TestOKWithoutFailure(t *testing.T) {
	tr := New("Kafka", "", nil, Config{})
	l := tr.Loop("x", "")
	l.OK()
	l.Close()
	if down, _ := tr.Down(); down {
		t.Fatal("down without a failure")
	}
	l.Failed(nil)
	if down, _ := tr.Down(); !down {
		t.Fatal("not down after a failure")
	}
}

// alternate returns, once a second from 0 to to, a failure of loop fail
// followed by a success of loop ok.
func alternate(fail, ok string, to time.Duration) []step {
	var out []step
	for at := time.Duration(0); at < to; at += time.Second {
		out = append(out, step{at, fail, "fail"}, step{at, ok, "ok"})
	}
	return out
}

// TestFlapping: a loop that fails and succeeds again once a second for
// five minutes logs a warning, then about two lines a minute saying it
// comes and goes, and ends with a recovery line.
func TestFlapping(t *testing.T) {
	entries := run(t, alternate("a", "a", 5*time.Minute))
	got := lines(entries)
	if len(got) >= 50 {
		t.Fatalf("%d lines in five minutes of flapping", len(got))
	}
	want := []string{"warn Redis unavailable", "info Redis back"}
	for range 4 {
		want = append(want, "warn Redis unavailable on and off", "info Redis back")
	}
	same(t, got, want)
	summary, back := entries[2].ContextMap(), entries[3].ContextMap()
	if summary["outages"] != int64(60) || summary["attempts"] != int64(60) || summary["for"] != 59*time.Second {
		t.Errorf("summary: %v", summary)
	}
	if back["outages"] != int64(60) || back["after"] != 59*time.Second {
		t.Errorf("recovery: %v", back)
	}
}

// TestFlapThenQuiet: short outages that no line reported are counted in
// the warning of the next outage that comes after a quiet interval.
func TestFlapThenQuiet(t *testing.T) {
	entries := run(t, []step{{0, "a", "fail"}, {time.Second, "a", "ok"}, {2 * time.Second, "a", "fail"}, {3 * time.Second, "a", "ok"},
		{time.Hour, "a", "fail"}, {time.Hour + time.Second, "a", "ok"}})
	got := lines(entries)
	want := []string{"warn Redis unavailable", "info Redis back", "warn Redis unavailable", "info Redis back"}
	same(t, got, want)
	if n := entries[2].ContextMap()["unreported_outages"]; n != int64(1) {
		t.Errorf("unreported_outages: %v", n)
	}
}
