package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExampleDocumentsTheDefaults checks configs/consentd.yaml, which
// says it shows every default: each key it documents exists, has a
// comment (in its own or its group's comment) saying its default or that
// it is required, and holds exactly the value the code applies when the
// key is left out.
func TestExampleDocumentsTheDefaults(t *testing.T) {
	const path = "../configs/consentd.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	example, err := Parse(path, data)
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	minimal, err := Parse(path, []byte(`
kafka: {brokers: ["127.0.0.1:9092"], raw_topics: [raw.events], dead_letter_topic: consentd.dlq}
pseudonymization: {key_file: pseudonym.keys}
policy: policy.yaml
`))
	if err != nil {
		t.Fatalf("a config with only the required keys does not parse: %v", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	keys := 0
	var walk func(n *yaml.Node, path []string, groupDoc string)
	walk = func(n *yaml.Node, path []string, groupDoc string) {
		if n.Kind == yaml.DocumentNode {
			walk(n.Content[0], path, "")
			return
		}
		doc := groupDoc
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.HeadComment != "" {
				doc = k.HeadComment // shared by the keys that follow it
			}
			p := append(append([]string(nil), path...), k.Value)
			if v.Kind == yaml.MappingNode {
				walk(v, p, "")
				continue
			}
			keys++
			name := strings.Join(p, ".")
			lower := strings.ToLower(doc)
			if !strings.Contains(lower, "default") && !strings.Contains(lower, "required") {
				t.Errorf("%s: its comment names neither a default nor that it is required", name)
				continue
			}
			ex, ok1 := field(reflect.ValueOf(example).Elem(), p)
			def, ok2 := field(reflect.ValueOf(minimal).Elem(), p)
			if !ok1 || !ok2 {
				t.Errorf("%s: documented but not a Config field", name)
				continue
			}
			if strings.Contains(lower, "required") {
				continue
			}
			if !reflect.DeepEqual(ex.Interface(), def.Interface()) {
				t.Errorf("%s: the example shows %v, the code's default is %v", name, ex.Interface(), def.Interface())
			}
		}
	}
	walk(&root, nil, "")
	if keys < 20 {
		t.Fatalf("only %d keys found in %s", keys, path)
	}
}

// field finds the struct field at a YAML key path.
func field(v reflect.Value, path []string) (reflect.Value, bool) {
	for _, name := range path {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}
