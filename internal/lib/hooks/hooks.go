// Package hooks is consentd's one observation mechanism, in the style of
// franz-go's kgo hooks: a List of values, each implementing any of the
// small hook interfaces that consentd's packages declare next to the code
// that calls them (pipeline.BatchWrittenHook, consent.LookupHook,
// barrier.FencedHook, ...). A package calls only the interfaces it
// declares and finds them by type assertion; a hook that implements none
// of them is skipped. Metrics are one such hook (internal/metrics), the
// readiness tracker another (Readiness); no core package carries metrics
// code.
//
// Every hook is called synchronously from consentd's goroutines: it must
// be safe for concurrent use, return quickly and never call back into the
// code that called it.
//
// Owns: the List type, the readiness condition hook and the readiness
// tracker. Imports nothing of consentd.
package hooks

import (
	"sort"
	"sync"
)

// Hook is a value implementing one or more hook interfaces.
type Hook any

// List is an ordered list of hooks. The zero value is an empty list; a nil
// entry is skipped.
type List []Hook

// Each calls fn, in order, for every hook in l that implements T.
func Each[T any](l List, fn func(T)) {
	for _, h := range l {
		if t, ok := h.(T); ok {
			fn(t)
		}
	}
}

// ConditionHook is implemented by hooks that follow readiness conditions.
// Every package that can stop consentd from deciding or writing reports
// its conditions through it: cond names the condition (with the partition
// for per-partition ones), err is why it fails, nil once it holds again.
// A condition may be reported healthy many times in a row.
type ConditionHook interface {
	OnCondition(cond string, err error)
}

// Condition reports cond to every ConditionHook in l.
func (l List) Condition(cond string, err error) {
	for _, h := range l {
		if c, ok := h.(ConditionHook); ok {
			c.OnCondition(cond, err)
		}
	}
}

// Readiness tracks readiness conditions, as a ConditionHook, for /readyz
// and the consentd_ready gauge. The zero value is ready; use it by
// pointer. It is safe for concurrent use.
type Readiness struct {
	mu     sync.Mutex
	failed map[string]string
}

// OnCondition implements ConditionHook.
func (r *Readiness) OnCondition(cond string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.failed, cond)
		return
	}
	if r.failed == nil {
		r.failed = map[string]string{}
	}
	r.failed[cond] = err.Error()
}

// Failing returns the names of the conditions that fail now, sorted.
func (r *Readiness) Failing() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.failed))
	for k := range r.failed {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Ready reports whether no condition fails, and the failures otherwise
// ("cond: cause"), sorted.
func (r *Readiness) Ready() (bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.failed))
	for k, v := range r.failed {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return len(out) == 0, out
}
