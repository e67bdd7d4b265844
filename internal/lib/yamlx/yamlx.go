// Package yamlx decodes YAML strictly: unknown keys and wrong types are
// errors that name the file, the line and the dotted key. Imports nothing
// of consentd.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	lineRe  = regexp.MustCompile(`^line (\d+): (.*)$`)
	fieldRe = regexp.MustCompile(`field (\S+) not found`)
)

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
			key := keyAtLine(&root, line, "", want)
			if key != "" {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s: %s", name, line, key, m[2]))
			} else {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s", name, line, m[2]))
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
