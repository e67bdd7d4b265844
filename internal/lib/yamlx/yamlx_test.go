package yamlx

import (
	"strings"
	"testing"
	"time"
)

type inner struct {
	KeepOnly []string `yaml:"keep_only"`
	DropAll  bool     `yaml:"drop_all"`
}

type doc struct {
	Linger time.Duration `yaml:"linger"`
	Steps  []inner       `yaml:"steps"`
}

// TestDecodeErrorsSayWhatIsRight: an unknown key lists the keys its
// mapping takes (and the closest to a misspelt one), a duration without
// a unit says so, each with the file, line and dotted key.
func TestDecodeErrorsSayWhatIsRight(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"misspelt key", "steps:\n  - keep_onyl: [a]\n", []string{"f.yaml:2: steps[0].keep_onyl:", "(did you mean keep_only?)", "valid keys here: keep_only, drop_all"}},
		{"unknown key", "steps:\n  - hash_ip: [a]\n", []string{"f.yaml:2: steps[0].hash_ip:", "valid keys here: keep_only, drop_all"}},
		{"top-level key", "lingr: 5s\n", []string{"f.yaml:1: lingr:", "(did you mean linger?)", "valid keys here: linger, steps"}},
		{"duration without unit", "linger: 5\n", []string{"f.yaml:1: linger:", "a duration needs a unit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode("f.yaml", []byte(tc.yaml), &d)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
	var d doc
	if err := Decode("f.yaml", []byte("steps:\n  - drop_nothing: true\n"), &d); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a key far from every valid one gets a suggestion: %v", err)
	}
}
