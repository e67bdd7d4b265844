package revocation

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KcatBarrierFormat is the kcat -f format Exact reads: topic, partition,
// broker append time (ms), value size (-1 for a tombstone) and key.
const KcatBarrierFormat = "%t %p %T %S %k\n"

// Exactness is what clean topics show about changes that must hold from
// the instant their call returned.
type Exactness struct {
	// After counts, per changed key, clean records appended after the call
	// returned (tombstones not counted).
	After map[string]int
	// Lateness is, per changed key, its last clean record's append time
	// minus the return of its call: negative when the last record came
	// before the return (the normal case).
	Lateness map[string]time.Duration
	// NotLast lists "topic/partition key" where a changed key has clean
	// records but its last record is not a tombstone (retraction).
	NotLast []string
	// NoRecords lists changed keys with no clean record at all (the check
	// says nothing about them).
	NoRecords []string
}

// Worst returns the largest lateness (the latest record of any changed key
// relative to its call's return).
func (e Exactness) Worst() time.Duration {
	first, worst := true, time.Duration(0)
	for _, d := range e.Lateness {
		if first || d > worst {
			worst, first = d, false
		}
	}
	return worst
}

// Exact reads kcat output in KcatBarrierFormat (several topics may be
// concatenated) against the return times of the calls that changed each
// pseudonymous key.
func Exact(kcatOut []byte, returned map[string]time.Time) (Exactness, error) {
	e := Exactness{After: map[string]int{}, Lateness: map[string]time.Duration{}}
	type where struct{ topic, partition, key string }
	lastIsTomb := map[where]bool{}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(kcatOut)), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 5)
		if len(f) != 5 {
			return e, fmt.Errorf("kcat line %q: want %q", line, KcatBarrierFormat)
		}
		ms, err1 := strconv.ParseInt(f[2], 10, 64)
		size, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return e, fmt.Errorf("kcat line %q: want %q", line, KcatBarrierFormat)
		}
		key := f[4]
		at, changed := returned[key]
		if !changed {
			continue
		}
		tomb := size < 0
		lastIsTomb[where{f[0], f[1], key}] = tomb
		if tomb {
			continue
		}
		seen[key] = true
		ts := time.UnixMilli(ms)
		if ts.After(at.Truncate(time.Millisecond)) {
			e.After[key]++
		}
		if d := ts.Sub(at); !seen[key+"\x00"] || d > e.Lateness[key] {
			e.Lateness[key] = d
			seen[key+"\x00"] = true
		}
	}
	for w, tomb := range lastIsTomb {
		if !tomb {
			e.NotLast = append(e.NotLast, w.topic+"/"+w.partition+" "+w.key)
		}
	}
	for key := range returned {
		if !seen[key] {
			e.NoRecords = append(e.NoRecords, key)
		}
	}
	return e, nil
}
