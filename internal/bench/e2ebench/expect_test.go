package e2ebench

import (
	"strings"
	"testing"

	"github.com/consentd/consentd/policy"
)

func TestWrites(t *testing.T) {
	all := map[string]bool{"analytics": true, "advertising": true}
	for _, tc := range []struct {
		name    string
		out     policy.OutputSpec
		granted map[string]bool
		typ, ev string
		want    bool
	}{
		{"granted, no filter", policy.OutputSpec{Require: []string{"analytics"}}, all, "page", "", true},
		{"one purpose missing", policy.OutputSpec{Require: []string{"analytics", "personalization"}}, all, "page", "", false},
		{"no record", policy.OutputSpec{Require: []string{"analytics"}}, nil, "page", "", false},
		{"type filtered out", policy.OutputSpec{Require: []string{"analytics"}, When: &policy.FilterSpec{Type: []string{"track"}}}, all, "page", "", false},
		{"type and event match", policy.OutputSpec{Require: []string{"analytics"}, When: &policy.FilterSpec{Type: []string{"track"}, Event: []string{"Order Completed"}}}, all, "track", "Order Completed", true},
		{"event filtered out", policy.OutputSpec{Require: []string{"analytics"}, When: &policy.FilterSpec{Event: []string{"Order Completed"}}}, all, "track", "Signed Up", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := writes(tc.out, tc.granted, tc.typ, tc.ev); got != tc.want {
				t.Errorf("writes = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestContenders checks the policies the bench runs: both parse, their
// topics are where the bench renames them, and the expected counts hold
// together (the 1-output job needs analytics only, which the 3-output
// policy's analytics output needs too, for fewer event types).
func TestContenders(t *testing.T) {
	cs, err := contenders()
	if err != nil {
		t.Fatal(err)
	}
	exp, err := expected(cs, throughputSeed, 500, 3000)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]int64{}
	for _, c := range cs {
		byKey[c.key] = exp[c]
		outs, dlq := c.topics("p." + c.key)
		if len(outs) != len(exp[c]) || (c.role == RoleConsentd) != (dlq != "") {
			t.Errorf("%s: outputs %v, dead letters %q, expected counts %v", c.name, outs, dlq, exp[c])
		}
	}
	if byKey["pt"][0] != 3000 || byKey["ppt"][0] != 3000 {
		t.Errorf("pass-throughs copy every event: %v %v", byKey["pt"], byKey["ppt"])
	}
	one, three := byKey["cd1"], byKey["cd3"]
	if one[0] == 0 || one[0] >= 3000 || three[1] > one[0] || three[1] == 0 {
		t.Errorf("1-output job %v, 3-output policy %v", one, three)
	}
}

func TestChildSpecRenamesTopics(t *testing.T) {
	cs, err := contenders()
	if err != nil {
		t.Fatal(err)
	}
	r := &run{o: Options{Brokers: "b:9092", Redis: "r:6379", Partitions: 4, BatchSize: 100, ConsentdCPUProfile: "/tmp/prof"}, dir: t.TempDir(), keys: "keys", prefix: "id:consent:"}
	for _, c := range cs {
		s, err := r.childSpec(c, "id."+c.key, "id.raw", "g", 10, "throughput-r1")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.role != RoleConsentd {
			if s.Out != "id."+c.key+".passthrough" || s.Policy != "" || s.CPUProfile != "" {
				t.Errorf("%s: %+v", c.name, s)
			}
			continue
		}
		spec, err := policy.Load(s.Policy, nil)
		if err != nil {
			t.Fatalf("%s: the written policy: %v", c.name, err)
		}
		for _, o := range spec.Outputs {
			if !strings.HasPrefix(o.Topic, "id."+c.key+".") {
				t.Errorf("%s: output %s still writes to %s", c.name, o.Name, o.Topic)
			}
		}
		if s.DeadLetter != "id."+c.key+".dlq" || s.CPUProfile != "/tmp/prof-"+c.key+"-throughput-r1.pprof" || s.KeyPrefix != "id:consent:" {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
}
