package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCheckKeysErrorsNameTheFlag: every problem with the file given
// to policy check --keys names --keys.
func TestPolicyCheckKeysErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var kb bytes.Buffer
	if code := run([]string{"keygen", "k1"}, &kb, &kb); code != 0 {
		t.Fatal(kb.String())
	}
	readable := write("readable.keys", kb.String(), 0o644)
	badLine := write("bad.keys", kb.String()+"no colon here\n", 0o600)
	missing := filepath.Join(dir, "nope.keys")
	for _, tc := range []struct{ keys, want string }{
		{missing, "--keys: stat " + missing + ": no such file or directory"},
		{readable, "--keys: " + readable + " has mode 0644: a secret must not be readable by others (chmod 600)"},
		{badLine, "--keys: " + badLine + ":2: want KEYID:BASE64SECRET[:retired=RFC3339]"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"policy", "check", "../../configs/policy.yaml", "--keys", tc.keys}, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("--keys %s: exit %d, %s\nwant %s", filepath.Base(tc.keys), code, errOut.String(), tc.want)
		}
	}
}
