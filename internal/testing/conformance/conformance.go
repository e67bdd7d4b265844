// Package conformance gives tests the conformance vectors
// (policy/testdata/conformance): consent signals published by third
// parties with their reference implementations' decisions. Test tooling.
package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func dir() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "../../../policy/testdata/conformance")
}

// Vector is one file of policy/testdata/conformance/vectors (see the
// README there): a consent signal published by a third party, and the
// decision of its reference implementation under one or more policies.
type Vector struct {
	Kind   string `json:"kind"`
	Source struct {
		Repo   string `json:"repo"`
		Path   string `json:"path"`
		Commit string `json:"commit"`
		URL    string `json:"url"`
		Note   string `json:"note"`
	} `json:"source"`
	Reference string          `json:"reference"`
	Purposes  []string        `json:"purposes"`
	Event     json.RawMessage `json:"event"`
	// Record, for Segment and RudderStack, is the same consent as a
	// consent-topic record.
	Record json.RawMessage `json:"record"`
	Runs   []Run           `json:"runs"`
}

// Run decides a vector under one policy.
type Run struct {
	Name    string   `json:"name"`
	Policy  string   `json:"policy"`
	Options []string `json:"options"`
	Expect  struct {
		Invalid   bool     `json:"invalid"`
		Withheld  []string `json:"withheld"`
		CoarseGeo *bool    `json:"coarse_geo"`
		// Stored (consent-topic records): the purposes granted, and
		// the purposes the record leaves as stored.
		Stored *struct {
			Granted []string `json:"granted"`
			Keep    []string `json:"keep"`
		} `json:"stored"`
	} `json:"expect"`
}

func Load(t testing.TB) map[string]*Vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir(), "vectors", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Vector{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v Vector
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.Source.Repo == "" || (v.Source.Commit == "" && v.Source.URL == "") || len(v.Runs) == 0 || len(v.Purposes) == 0 {
			t.Fatalf("%s: source repository, commit, purposes and runs are required", f)
		}
		out[filepath.Base(f)] = &v
	}
	return out
}

// TestConformance runs every vector through the code path of live events
// (Decide on an event carrying the signal) and, for Segment and
// RudderStack, of the consent topic (ingest.Parse).

// PolicyText is the policy a run decides the vector under: the vector's
// purposes, the run's policy lines, and one output per purpose requiring
// it (topic c.<purpose>).
func (v *Vector) PolicyText(run Run) string {
	var b strings.Builder
	b.WriteString("version: conformance\npurposes: [" + strings.Join(v.Purposes, ", ") + "]\npseudonym_key: k1\n")
	b.WriteString(run.Policy)
	b.WriteString("outputs:\n")
	for _, pu := range v.Purposes {
		b.WriteString("  - {name: " + pu + ", topic: c." + pu + ", require: [" + pu + "]}\n")
	}
	return b.String()
}
