package hooks

import (
	"errors"
	"slices"
	"testing"
)

type counter struct{ n int }

func (c *counter) OnThing(k int) { c.n += k }

type thingHook interface{ OnThing(int) }

type other struct{}

func TestEachFindsOnlyImplementations(t *testing.T) {
	a, b := &counter{}, &counter{}
	l := List{a, other{}, nil, b}
	Each(l, func(h thingHook) { h.OnThing(2) })
	if a.n != 2 || b.n != 2 {
		t.Fatalf("counts %d, %d; want 2, 2", a.n, b.n)
	}
	Each(nil, func(h thingHook) { t.Fatal("called on an empty list") })
}

func TestReadinessFollowsConditions(t *testing.T) {
	r := &Readiness{}
	if ok, why := r.Ready(); !ok || len(why) != 0 {
		t.Fatalf("zero value: %v %v, want ready", ok, why)
	}
	l := List{r, other{}}
	l.Condition("b", errors.New("down"))
	l.Condition("a", errors.New("not joined"))
	ok, why := r.Ready()
	if ok || !slices.Equal(why, []string{"a: not joined", "b: down"}) {
		t.Fatalf("Ready = %v %v", ok, why)
	}
	if f := r.Failing(); !slices.Equal(f, []string{"a", "b"}) {
		t.Fatalf("Failing = %v", f)
	}
	l.Condition("b", nil)
	l.Condition("b", nil) // healthy twice is fine
	l.Condition("a", nil)
	if ok, why := r.Ready(); !ok {
		t.Fatalf("after recovery: not ready: %v", why)
	}
}
