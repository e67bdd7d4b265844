package barrier

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// fakeRegistry answers with the confirmations of the members in confirm.
type fakeRegistry struct {
	mu        sync.Mutex
	live      []string
	confirm   []string
	remaining time.Duration
	fenced    []string
	published []string
	err       error
}

func (r *fakeRegistry) Live(context.Context) ([]string, error) { return r.live, r.err }
func (r *fakeRegistry) Publish(_ context.Context, id string, subjects []string) error {
	r.mu.Lock()
	r.published = append(r.published, subjects...)
	r.mu.Unlock()
	return nil
}
func (r *fakeRegistry) NextConfirmation(ctx context.Context, _ string, wait time.Duration) (string, bool, error) {
	r.mu.Lock()
	if len(r.confirm) > 0 {
		m := r.confirm[0]
		r.confirm = r.confirm[1:]
		r.mu.Unlock()
		return m, true, nil
	}
	r.mu.Unlock()
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	return "", false, nil
}
func (r *fakeRegistry) Fence(_ context.Context, members []string) (time.Duration, error) {
	r.fenced = append(r.fenced, members...)
	return r.remaining, nil
}

func TestAwait(t *testing.T) {
	tests := []struct {
		name       string
		reg        *fakeRegistry
		wantFenced int
		minWait    time.Duration
		wantErr    bool
	}{
		{name: "no members", reg: &fakeRegistry{}},
		{name: "all confirm", reg: &fakeRegistry{live: []string{"a", "b"}, confirm: []string{"b", "a"}}},
		{name: "one silent member is fenced and waited for", reg: &fakeRegistry{live: []string{"a", "b"}, confirm: []string{"a"}, remaining: 100 * time.Millisecond},
			wantFenced: 1, minWait: 100*time.Millisecond + LeaseMargin + 50*time.Millisecond},
		{name: "registry down", reg: &fakeRegistry{err: errors.New("down")}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			r := &Revoker{Registry: tc.reg, Timeout: 50 * time.Millisecond, Hooks: hooks.List{rec}}
			start := time.Now()
			err := r.Await(context.Background(), []string{"alice"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if len(tc.reg.fenced) != tc.wantFenced || rec.fence != tc.wantFenced {
				t.Fatalf("fenced %v (hook %d), want %d", tc.reg.fenced, rec.fence, tc.wantFenced)
			}
			if el := time.Since(start); el < tc.minWait {
				t.Fatalf("returned after %v, before the fenced lease ended (%v)", el, tc.minWait)
			}
			if len(tc.reg.live) > 0 && (len(tc.reg.published) != 1 || tc.reg.published[0] != "alice") {
				t.Fatalf("published %v", tc.reg.published)
			}
		})
	}
}
