// Package yamlx decodes YAML strictly: unknown keys and wrong types are
// errors that name the file, the line and the dotted key. Imports nothing
// of consentd.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	lineRe  = regexp.MustCompile(`^line (\d+): (.*)$`)
	fieldRe = regexp.MustCompile(`field (\S+) not found`)
	typeRe  = regexp.MustCompile(`field (\S+) not found in type (\S+)`)
)

// hint adds to a decoding error what would have been right: the keys a
// mapping takes (with the closest one to a misspelt key), or that a
// duration needs a unit.
func hint(msg string, t reflect.Type) string {
	if strings.Contains(msg, "into time.Duration") {
		return " (a duration needs a unit: 500ms, 5s, 2m, 1h)"
	}
	m := typeRe.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	st := findStruct(t, m[2], map[reflect.Type]bool{})
	if st == nil {
		return ""
	}
	var keys []string
	for i := range st.NumField() {
		tag := strings.Split(st.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	out := "; valid keys here: " + strings.Join(keys, ", ")
	if best := Closest(m[1], keys, 2); best != "" {
		out = " (did you mean " + best + "?)" + out
	}
	return out
}

// findStruct returns the struct type named name (as reflect prints it:
// pkg.Type) reachable from t.
func findStruct(t reflect.Type, name string, seen map[reflect.Type]bool) reflect.Type {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	if t.String() == name {
		return t
	}
	for i := range t.NumField() {
		if f := findStruct(t.Field(i).Type, name, seen); f != nil {
			return f
		}
	}
	return nil
}

// Closest returns the candidate nearest to word (case-insensitive edit
// distance), if it is at most maxDist edits away; "" otherwise.
func Closest(word string, candidates []string, maxDist int) string {
	best, dist := "", maxDist+1
	for _, c := range candidates {
		if d := distance(strings.ToLower(word), strings.ToLower(c)); d < dist {
			best, dist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Decode parses data (read from file name) into out, rejecting unknown
// fields, type mismatches and more than one document.
func Decode(name string, data []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty document", name)
	}
	if err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fmt.Errorf("%s: %w", name, err)
		}
		var root yaml.Node
		_ = yaml.Unmarshal(data, &root)
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			m := lineRe.FindStringSubmatch(e)
			if m == nil {
				msgs = append(msgs, fmt.Sprintf("%s: %s", name, e))
				continue
			}
			line, _ := strconv.Atoi(m[1])
			want := ""
			if f := fieldRe.FindStringSubmatch(m[2]); f != nil {
				want = f[1]
			}
			text := m[2] + hint(m[2], reflect.TypeOf(out))
			key := keyAtLine(&root, line, "", want)
			if key != "" {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s: %s", name, line, key, text))
			} else {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s", name, line, text))
			}
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("%s: more than one YAML document", name)
	}
	return nil
}

// keyAtLine returns the dotted path of the deepest mapping key (named
// want, if want is not empty) or scalar sequence item on line.
func keyAtLine(n *yaml.Node, line int, prefix, want string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, prefix, want); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if r := keyAtLine(v, line, p, want); r != "" {
				return r
			}
			if k.Line == line && (want == "" || k.Value == want) {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if r := keyAtLine(c, line, p, want); r != "" {
				return r
			}
			if c.Kind == yaml.ScalarNode && c.Line == line && want == "" {
				return p
			}
		}
	}
	return ""
}
