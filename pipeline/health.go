package pipeline

import (
	"sort"
	"strconv"
	"sync"
)

// Readiness conditions.
const (
	CondConsentStore = "consent_store"
	CondKafkaWrite   = "kafka_write"
	CondGroup        = "consumer_group"
)

// PartitionCond names a condition of one raw partition, so that /readyz
// and the metrics say which partition is stuck: "kafka_write raw/3".
func PartitionCond(cond, topic string, partition int) string {
	return cond + " " + topic + "/" + strconv.Itoa(partition)
}

// HealthHooks observe a Health; internal/metrics implements them. They are
// called under the Health's lock and must not call back into it.
type HealthHooks interface {
	// OnReadiness is called with the readiness after every change.
	OnReadiness(ready bool)
	// OnCondition is called when a condition starts or stops failing.
	OnCondition(cond string, failing bool)
}

// Health tracks readiness conditions. The zero value is not usable; use
// NewHealth. A nil *Health ignores every call.
type Health struct {
	mu     sync.Mutex
	failed map[string]string
	hooks  HealthHooks
}

// NewHealth returns a Health in which the given conditions start failed
// (for example "not joined yet"). hooks may be nil.
func NewHealth(hooks HealthHooks, initial map[string]string) *Health {
	h := &Health{failed: map[string]string{}, hooks: hooks}
	for k, v := range initial {
		h.failed[k] = v
		if hooks != nil {
			hooks.OnCondition(k, true)
		}
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
	_, was := h.failed[cond]
	if err == nil {
		delete(h.failed, cond)
	} else {
		h.failed[cond] = err.Error()
	}
	if h.hooks != nil && was != (err != nil) {
		h.hooks.OnCondition(cond, err != nil)
	}
	h.publish()
	h.mu.Unlock()
}

func (h *Health) publish() {
	if h.hooks != nil {
		h.hooks.OnReadiness(len(h.failed) == 0)
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
