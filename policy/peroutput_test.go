package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/event"
)

// hkdfSHA256 is RFC 5869 written out from the RFC, independent of the
// standard library's, with an empty salt.
func hkdfSHA256(secret []byte, info string, n int) []byte {
	ext := hmac.New(sha256.New, make([]byte, sha256.Size))
	ext.Write(secret)
	prk := ext.Sum(nil)
	var out, prev []byte
	for i := byte(1); len(out) < n; i++ {
		m := hmac.New(sha256.New, prk)
		m.Write(prev)
		m.Write([]byte(info))
		m.Write([]byte{i})
		prev = m.Sum(nil)
		out = append(out, prev...)
	}
	return out[:n]
}

// reviewerPseudonym computes a per-output pseudonym as a reviewer holding
// the key file would, from the documented recipe alone.
func reviewerPseudonym(secret []byte, id, output, v string) string {
	m := hmac.New(sha256.New, hkdfSHA256(secret, "consentd pseudonym key v1 output "+output, 32))
	m.Write([]byte(v))
	return id + ":" + hex.EncodeToString(m.Sum(nil)[:PseudonymLen/2])
}

// TestRFC5869Vector checks the test's own HKDF against RFC 5869 A.3 (no
// salt, no info), so that it can judge Derive.
func TestRFC5869Vector(t *testing.T) {
	ikm := make([]byte, 22)
	for i := range ikm {
		ikm[i] = 0x0b
	}
	want := "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
	if got := hex.EncodeToString(hkdfSHA256(ikm, "", 42)); got != want {
		t.Fatalf("HKDF = %s, want %s", got, want)
	}
}

const perOutputOutputs = `  - name: perso
    topic: c.perso
    require: [personalization]
    transforms:
      - pseudonymize: {fields: [userId, context.device.id]}
  - name: ads
    topic: c.ads
    require: [advertising]
    transforms:
      - pseudonymize: {fields: [userId, context.device.id]}
  - name: ads2
    topic: c.ads
    require: [analytics]
    transforms:
      - pseudonymize: {fields: [userId, context.device.id], key: k2}
`

// TestPerOutputPseudonyms: with pseudonymization.per_output, one subject's
// message keys and pseudonymized fields differ on every output, each is
// what the documented recipe gives, and nothing is shared between two
// outputs; without it, every output carries the same pseudonyms.
func TestPerOutputPseudonyms(t *testing.T) {
	secrets := map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef"), "k2": []byte("fedcba9876543210fedcba9876543210")}
	ev := `{"userId":"u-77","context":{"device":{"id":"dev-9"}}}`
	all := granted(1, "personalization", "analytics", "advertising")
	field := func(t *testing.T, v []byte, path string) string {
		t.Helper()
		var doc event.Doc
		if err := doc.Parse(v); err != nil {
			t.Fatal(err)
		}
		s, _, err := doc.GetString(event.MustPath(path))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	shared := compileYAML(t, perOutputOutputs)
	d, err := decide(t, shared, ev, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Outputs[1:] {
		if string(o.Key) != string(d.Outputs[0].Key) {
			t.Fatalf("without per_output, %s is keyed %s, %s %s", o.Output.Name, o.Key, d.Outputs[0].Output.Name, d.Outputs[0].Key)
		}
	}

	p := compileSpec(t, strings.Replace(basePolicy, "outputs:", "pseudonymization: {per_output: true}\noutputs:", 1)+perOutputOutputs)
	if !p.PerOutputPseudonyms || !strings.Contains(p.Summary(), "pseudonyms per output") || !strings.Contains(shared.Summary(), "pseudonyms shared") {
		t.Fatalf("per_output not compiled or not summarized:\n%s", p.Summary())
	}
	d, err = decide(t, p, ev, all)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, o := range d.Outputs {
		if !o.Write {
			t.Fatalf("%s not written: %s", o.Output.Name, o.Reason)
		}
		fieldKey := "k1"
		if o.Output.Name == "ads2" {
			fieldKey = "k2"
		}
		want := map[string]string{
			"key":               reviewerPseudonym(secrets["k1"], "k1", o.Output.Name, "u-77"),
			"userId":            reviewerPseudonym(secrets[fieldKey], fieldKey, o.Output.Name, "u-77"),
			"context.device.id": reviewerPseudonym(secrets[fieldKey], fieldKey, o.Output.Name, "dev-9"),
		}
		got := map[string]string{"key": string(o.Key), "userId": field(t, o.Value, "userId"), "context.device.id": field(t, o.Value, "context.device.id")}
		for what, w := range want {
			if got[what] != w {
				t.Errorf("%s %s = %s, want %s", o.Output.Name, what, got[what], w)
			}
			if other, dup := seen[got[what]]; dup && other != o.Output.Name {
				t.Errorf("%s %s is also on %s: the outputs are joinable", o.Output.Name, what, other)
			}
			seen[got[what]] = o.Output.Name
		}
		if k, _ := p.OutputKey(o.Output, "u-77"); string(k) != string(o.Key) {
			t.Errorf("OutputKey(%s) = %s, the decision keyed %s", o.Output.Name, k, o.Key)
		}
		if base := pseudonym(t, testKeys(t), "k1", "u-77"); string(o.Key) == base || got["userId"] == base {
			t.Errorf("%s carries the underived pseudonym", o.Output.Name)
		}
	}
	// Deterministic: a second compile (another instance) keys alike.
	p2 := compileSpec(t, strings.Replace(basePolicy, "outputs:", "pseudonymization: {per_output: true}\noutputs:", 1)+perOutputOutputs)
	d2, err := decide(t, p2, ev, all)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.Outputs {
		if string(d.Outputs[i].Key) != string(d2.Outputs[i].Key) || string(d.Outputs[i].Value) != string(d2.Outputs[i].Value) {
			t.Errorf("%s: two compiles disagree", d.Outputs[i].Output.Name)
		}
	}
}

// TestPerOutputRetractionKeys: retractions follow the output's derived
// keys, under the current key and the retired one within retention.
func TestPerOutputRetractionKeys(t *testing.T) {
	s1, s2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	enc := base64.RawURLEncoding.EncodeToString
	retiredAt := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	keys, err := ParseKeyring("keys", []byte("k1:"+enc(s1)+":retired="+retiredAt+"\nk2:"+enc(s2)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec("p.yaml", []byte(strings.Replace(strings.Replace(basePolicy, "pseudonym_key: k1", "pseudonym_key: k2", 1), "outputs:", "pseudonymization: {per_output: true}\noutputs:", 1)+
		"  - {name: perso, topic: c.perso, require: [personalization]}\n  - {name: ads, topic: c.ads, require: [advertising]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range p.Outputs {
		got, err := p.RetractionKeys(o, "u1", time.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{reviewerPseudonym(s2, "k2", o.Name, "u1"), reviewerPseudonym(s1, "k1", o.Name, "u1")}
		if len(got) != 2 || string(got[0]) != want[0] || string(got[1]) != want[1] {
			t.Errorf("%s: retraction keys %q, want %q", o.Name, got, want)
		}
	}
}

func TestPerOutputSpecIsStrict(t *testing.T) {
	_, err := ParseSpec("p.yaml", []byte(strings.Replace(basePolicy, "outputs:", "pseudonymization: {per_outputs: true}\noutputs:", 1)+"  - {name: o, topic: c.o, require: [analytics]}\n"))
	if err == nil || !strings.Contains(err.Error(), "per_outputs") {
		t.Fatalf("a misspelt pseudonymization setting was accepted: %v", err)
	}
}
