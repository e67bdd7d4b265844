package policy

import (
	"strings"
	"testing"
)

// TestSemanticErrorsCarryTheLine: a policy that parses but does not
// compile reports each problem at the line of the YAML it is about (the
// value named when there is one), and a missing setting with the file's
// name alone.
func TestSemanticErrorsCarryTheLine(t *testing.T) {
	const text = `version: "t1"
purposes: [personalization, analytics]
consent_categories:
  marketing: advertising
pseudonym_key: k1
outputs:
  - name: web
    topic: clean.web
    require: [personalization, advertising]
    transforms:
      - keep_only: [userId, properties]
      - pseudonymize:
          fields: [userId]
          key: k9
  - name: web
    topic: clean.other
    require: [analytics]
    transforms:
      - keep_only: [userId]
`
	_, err := FromBytes("p.yaml", []byte(text), testKeys(t))
	if err == nil {
		t.Fatal("the policy compiled")
	}
	for _, want := range []string{
		`p.yaml:4: consent_categories: "marketing" maps to unknown purpose "advertising"`,
		`p.yaml:9: outputs[0] (web): require: unknown purpose "advertising" (declare it under purposes)`,
		`p.yaml:14: outputs[0] (web): transforms[1]: pseudonymize: key "k9" is not in the key file`,
		`p.yaml:15: outputs[1] (web): name "web" used twice`,
	} {
		if !strings.Contains(err.Error()+"\n", want+"\n") {
			t.Errorf("missing %s\nin %v", want, err)
		}
	}

	_, err = FromBytes("p.yaml", []byte(strings.Replace(text, `version: "t1"`, "", 1)), testKeys(t))
	if err == nil || !strings.Contains(err.Error(), "p.yaml: version: required") {
		t.Fatalf("missing version: %v", err)
	}
}
