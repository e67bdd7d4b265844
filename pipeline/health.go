package pipeline

import (
	"sort"
	"sync"
)

// Readiness conditions.
const (
	CondConsentStore = "consent_store"
	CondKafkaWrite   = "kafka_write"
	CondGroup        = "consumer_group"
)

// Health tracks readiness conditions. The zero value is not usable; use
// NewHealth. A nil *Health ignores every call.
type Health struct {
	mu       sync.Mutex
	failed   map[string]string
	onChange func(ready bool)
}

// NewHealth returns a Health in which the given conditions start failed
// (for example "not joined yet"). onChange, if set, is called with the
// readiness after every change (normally Hooks.OnReadiness), under the
// Health's lock: it must not call back into the Health.
func NewHealth(onChange func(ready bool), initial map[string]string) *Health {
	h := &Health{failed: map[string]string{}, onChange: onChange}
	for k, v := range initial {
		h.failed[k] = v
	}
	h.publish()
	return h
}

// Set marks cond failed with err, or healthy when err is nil.
func (h *Health) Set(cond string, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if err == nil {
		delete(h.failed, cond)
	} else {
		h.failed[cond] = err.Error()
	}
	h.publish()
	h.mu.Unlock()
}

func (h *Health) publish() {
	if h.onChange != nil {
		h.onChange(len(h.failed) == 0)
	}
}

// Ready reports whether no condition failed, and the failures otherwise,
// sorted.
func (h *Health) Ready() (bool, []string) {
	if h == nil {
		return true, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for k, v := range h.failed {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return len(out) == 0, out
}
