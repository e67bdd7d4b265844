// Package corpus gives tests the hostile corpus's raw events
// (internal/app/testdata/hostile/corpus.jsonl): events built to slip
// personal data or consent past a pipeline. Test tooling only.
package corpus

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Events returns the raw event of every case in the hostile corpus, in
// file order.
func Events(t testing.TB) [][]byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(here), "../../app/testdata/hostile/corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c struct{ Event string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, []byte(c.Event))
	}
	if err := sc.Err(); err != nil || len(evs) < 100 {
		t.Fatalf("hostile corpus: %d events, %v", len(evs), err)
	}
	return evs
}
