package policy

import (
	"strings"
	"testing"
)

// TestTaintRemovedObjects: a drop_fields path holding an object or an
// array of objects, and an identifier object the output keeps only a
// member of, are tracked in full.
func TestTaintRemovedObjects(t *testing.T) {
	const v = "CUST-99887766"
	p := compileYAML(t, `  - name: o
    topic: c.o
    require: [analytics]
    transforms:
      - drop_fields: [properties.customer]
      - keep_only: [userId, context.externalId.type, properties.title, properties.customer]
      - scrub: {identifiers: [externalId]}
`)
	for _, lits := range []map[string]string{
		{"properties.customer": `{"ref":"` + v + `"}`},
		{"properties.customer": `[{"ref":{"deep":["` + v + `"]}}]`},
		{"context.externalId": `{"type":"crm","id":"` + v + `"}`},
	} {
		lits["properties.title"] = `"order for ` + v + `"`
		ev := buildEvent(lits)
		d, err := decide(t, p, ev, granted(1, "analytics"))
		if err != nil {
			t.Fatal(err)
		}
		if o := d.Outputs[0]; !o.Write || leaks(string(o.Value), v) {
			t.Errorf("%s: %s (%s)", ev, o.Value, o.ActionsHeader())
		}
	}
}

// TestTaintBoundedOnHostileNesting: identifier fields nested 60 deep over
// an array of 200,000 short values are refused as too_many_identifiers,
// not searched (each value is collected once, not once per level).
func TestTaintBoundedOnHostileNesting(t *testing.T) {
	p, err := Load("../configs/policy.yaml", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"type":"track","event":"x","userId":"u1","context":`)
	for range 60 {
		b.WriteString(`{"externalId":`)
	}
	b.WriteString("[" + strings.Repeat(`"ab",`, 199999) + `"ab"]`)
	b.WriteString(strings.Repeat("}", 61))
	_, err = decide(t, p, b.String(), granted(1, "personalization", "analytics", "advertising"))
	wantInputError(t, err, ReasonTooManyIdentifiers)
}
