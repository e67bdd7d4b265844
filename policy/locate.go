package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// locate prefixes each of Compile's errors with name:line, the line of
// the policy text it is about. Compile's messages start with where the
// problem is (outputs[0] (web): transforms[2]: keep_only: ...): the
// longest such path that exists in the document gives the line, refined
// to the line of a quoted value the message names (an unknown purpose, a
// key id) when that path holds it. Errors about something missing keep
// the name alone.
func locate(name string, data []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		if line := lineOf(root.Content[0], e.Error()); line > 0 {
			out[i] = fmt.Errorf("%s:%d: %w", name, line, e)
		} else {
			out[i] = fmt.Errorf("%s: %w", name, e)
		}
	}
	return errors.Join(out...)
}

var (
	// annotation is the " (name)" Compile adds after outputs[i].
	annotation = regexp.MustCompile(` \([^)]*\)$`)
	// pathStep is one step of a path: a key, or [index].
	pathStep = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// lineOf returns the line msg is about in the document node doc, or 0.
func lineOf(doc *yaml.Node, msg string) int {
	node, line := doc, 0
	rest := msg
	for {
		seg, after, ok := strings.Cut(rest, ": ")
		if !ok {
			break
		}
		next, l := walk(node, annotation.ReplaceAllString(seg, ""))
		if next == nil {
			break
		}
		node, line, rest = next, l, after
	}
	if line == 0 {
		return 0
	}
	qs := quoted.FindAllString(rest, -1)
	for i := len(qs) - 1; i >= 0; i-- {
		v, err := strconv.Unquote(qs[i])
		if err != nil {
			continue
		}
		if l := findScalar(node, v); l > 0 {
			return l
		}
	}
	return line
}

// walk follows path (a.b[2].c) from n, returning the node reached and the
// line of its key (or item); nil if a step does not exist.
func walk(n *yaml.Node, path string) (*yaml.Node, int) {
	steps := pathStep.FindAllString(path, -1)
	if len(steps) == 0 || strings.ContainsAny(path, " \"") {
		return nil, 0
	}
	line := 0
	for _, s := range steps {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		switch {
		case strings.HasPrefix(s, "["):
			i, _ := strconv.Atoi(s[1 : len(s)-1])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return nil, 0
			}
			n = n.Content[i]
			line = n.Line
		case n.Kind == yaml.MappingNode:
			found := false
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == s {
					line, n, found = n.Content[k].Line, n.Content[k+1], true
					break
				}
			}
			if !found {
				return nil, 0
			}
		default:
			return nil, 0
		}
	}
	return n, line
}

// findScalar returns the line of the first scalar under n whose value is
// v, or 0.
func findScalar(n *yaml.Node, v string) int {
	if n.Kind == yaml.ScalarNode {
		if n.Value == v {
			return n.Line
		}
		return 0
	}
	for _, c := range n.Content {
		if l := findScalar(c, v); l > 0 {
			return l
		}
	}
	return 0
}
