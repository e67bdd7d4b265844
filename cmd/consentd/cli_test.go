package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// eachNode calls f with every node of the command tree and its path,
// depth first, consentd itself first.
func eachNode(c *command, path []string, f func(*command, []string)) {
	f(c, path)
	for _, s := range c.sub {
		eachNode(s, append(append([]string(nil), path...), s.name), f)
	}
}

// TestEveryCommandExplainsItself walks the command tree the code runs:
// every group and every leaf answers --help and -h with exit 0 and its
// usage on stdout (nothing on stderr), names itself, spells every flag it
// declares --name and never -name, and is listed in consentd's usage; a
// group with a command it does not know exits 2.
func TestEveryCommandExplainsItself(t *testing.T) {
	root := commands()
	var top bytes.Buffer
	if code := run([]string{"--help"}, &top, &top); code != 0 {
		t.Fatalf("consentd --help: exit %d", code)
	}
	leaves := 0
	eachNode(root, []string{"consentd"}, func(c *command, path []string) {
		name := strings.Join(path, " ")
		for _, h := range []string{"--help", "-h"} {
			t.Run(name+" "+h, func(t *testing.T) {
				var out, errOut bytes.Buffer
				code := run(append(append([]string(nil), path[1:]...), h), &out, &errOut)
				if code != 0 || errOut.Len() > 0 {
					t.Fatalf("exit %d, stderr %q", code, errOut.String())
				}
				text := out.String()
				want := "Usage: " + name
				if len(path) == 1 {
					want = "Usage:\n  consentd "
				}
				if !strings.Contains(text, want) {
					t.Fatalf("usage does not name the command (%q):\n%s", want, text)
				}
				if c.run == nil {
					return
				}
				for _, f := range flagsOf(c) {
					if !strings.Contains(text, "--"+f.Name) {
						t.Errorf("--%s is not in the usage", f.Name)
					}
					if single := regexp.MustCompile(`(^|[^-\w])-` + regexp.QuoteMeta(f.Name) + `\b`); single.MatchString(text) {
						t.Errorf("the usage spells -%s: %q", f.Name, single.FindString(text))
					}
				}
				if regexp.MustCompile(`(?m)^\s+-\w`).MatchString(text) {
					t.Errorf("a flag listed with one dash:\n%s", text)
				}
			})
		}
		if c.run != nil {
			leaves++
			if !strings.Contains(top.String(), name+" "+c.args) {
				t.Errorf("consentd's usage does not list %q", name+" "+c.args)
			}
			// consentd help PATH prints the same usage.
			var viaHelp, direct bytes.Buffer
			run(append([]string{"help"}, path[1:]...), &viaHelp, &viaHelp)
			run(append(append([]string(nil), path[1:]...), "--help"), &direct, &direct)
			if viaHelp.String() != direct.String() {
				t.Errorf("consentd help %s differs from %s --help", strings.Join(path[1:], " "), name)
			}
			return
		}
		var out, errOut bytes.Buffer
		if code := run(append(append([]string(nil), path[1:]...), "frobnicate"), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
			t.Errorf("%s frobnicate: exit %d, stderr %q", name, code, errOut.String())
		}
	})
	if leaves < 25 {
		t.Fatalf("walked %d commands: the tree is not the one consentd runs", leaves)
	}
}

// TestBashCompletion loads the generated bash script in bash and drives
// its function as bash does on TAB: every group offers its commands and
// every command its flags, all taken from the command tree; a flag's
// value and a positional argument complete as file names.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "consentd.bash")
	var out bytes.Buffer
	if code := run([]string{"completion", "bash"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pseudonym.keys"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		words []string // after consentd; the last is the word being completed
		want  []string
		exact bool
	}
	cases := []tc{
		{[]string{"po"}, []string{"policy"}, true},
		{[]string{"policy", "c"}, []string{"check"}, true},
		{[]string{"policy", "check", "--k"}, []string{"--keys"}, true},
		{[]string{"policy", "check", "--keys", "pseudo"}, []string{"pseudonym.keys"}, true},
		{[]string{"policy", "check", "pseu"}, []string{"pseudonym.keys"}, true},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, true},
		{[]string{"redis", "migrate", "--"}, []string{"--force", "--dry-run", "--json", "--config"}, false},
	}
	eachNode(commands(), nil, func(c *command, path []string) {
		if c.run != nil {
			var want []string
			for _, f := range flagsOf(c) {
				want = append(want, "--"+f.Name)
			}
			cases = append(cases, tc{append(append([]string(nil), path...), "--"), append(want, "--help"), true})
			return
		}
		var subs []string
		for _, s := range c.sub {
			subs = append(subs, s.name)
		}
		cases = append(cases, tc{append(append([]string(nil), path...), ""), subs, true})
	})
	var sh strings.Builder
	sh.WriteString("set -e\ncd " + shQuote(dir) + "\nsource " + shQuote(script) + "\ncomplete -p consentd\n")
	for _, c := range cases {
		sh.WriteString("COMP_WORDS=(consentd")
		for _, w := range c.words {
			sh.WriteString(" " + shQuote(w))
		}
		sh.WriteString(")\nCOMP_CWORD=" + strconv.Itoa(len(c.words)) + "\nCOMPREPLY=()\n_consentd\necho \"${COMPREPLY[*]}\"\n")
	}
	got, err := exec.Command("bash", "-c", sh.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, got)
	}
	lines := strings.Split(strings.TrimRight(string(got), "\n"), "\n")
	if len(lines) != len(cases)+1 || !strings.Contains(lines[0], "-F _consentd consentd") {
		t.Fatalf("bash printed %d lines for %d cases:\n%s", len(lines), len(cases), got)
	}
	for i, c := range cases {
		reply := strings.Fields(lines[i+1])
		if c.exact && !sameSet(reply, c.want) || !c.exact && !subset(c.want, reply) {
			t.Errorf("consentd %s<TAB>: %v, want %v", strings.Join(c.words, " "), reply, c.want)
		}
	}
}

func subset(a, b []string) bool {
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool { return len(a) == len(b) && subset(a, b) && subset(b, a) }

// TestZshAndFishCompletionParse checks the zsh and fish scripts' syntax
// with those shells, where they are installed.
func TestZshAndFishCompletionParse(t *testing.T) {
	for _, sh := range []struct{ shell, check string }{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		t.Run(sh.shell, func(t *testing.T) {
			if _, err := exec.LookPath(sh.shell); err != nil {
				t.Skipf("no %s", sh.shell)
			}
			var out bytes.Buffer
			if code := run([]string{"completion", sh.shell}, &out, &out); code != 0 {
				t.Fatal(out.String())
			}
			f := filepath.Join(t.TempDir(), "consentd."+sh.shell)
			if err := os.WriteFile(f, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(sh.shell, sh.check, f).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", sh.shell, sh.check, err, b)
			}
		})
	}
}

// TestREADMEListsEveryCommand: the README's command table has a row for
// every command of the tree, and its rows name each subcommand.
func TestREADMEListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, c := range commands().sub {
		if c.name == "help" {
			continue
		}
		row := regexp.MustCompile("(?m)^\\| `" + c.name + "\\b.*$")
		found := strings.Join(row.FindAllString(readme, -1), "\n")
		if found == "" {
			t.Errorf("the README's command table has no row for %s", c.name)
			continue
		}
		for _, s := range c.sub {
			if !strings.Contains(found, s.name) {
				t.Errorf("the README's row for %s does not name %s %s: %s", c.name, c.name, s.name, found)
			}
		}
	}
}

// TestZshAndFishCompletionComplete drives the zsh and fish scripts where
// those shells are installed: zsh's function with its completion
// builtins stubbed to print what they are given, fish through complete -C.
func TestZshAndFishCompletionComplete(t *testing.T) {
	script := func(t *testing.T, shell string) string {
		var out bytes.Buffer
		if code := run([]string{"completion", shell}, &out, &out); code != 0 {
			t.Fatal(out.String())
		}
		f := filepath.Join(t.TempDir(), "consentd."+shell)
		if err := os.WriteFile(f, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Run("zsh", func(t *testing.T) {
		if _, err := exec.LookPath("zsh"); err != nil {
			t.Skip("no zsh")
		}
		f := script(t, "zsh")
		got, err := exec.Command("zsh", "-c", `
compdef() { :; }
compadd() { [[ $1 == -- ]] && shift; print -r -- "$*"; }
_describe() { local -a arr; arr=("${(@P)2}"); print -r -- ${arr%%:*}; }
_files() { print -r -- "<files>"; }
source `+shQuote(f)+`
words=(consentd ""); CURRENT=2; _consentd
words=(consentd policy check --); CURRENT=4; _consentd
words=(consentd policy check --keys ""); CURRENT=5; _consentd
words=(consentd completion ""); CURRENT=3; _consentd`).CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, got)
		}
		lines := strings.Split(strings.TrimSpace(string(got)), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "run demo config policy") || lines[1] != "--help --json --keys" || lines[2] != "<files>" || lines[3] != "bash zsh fish" {
			t.Fatalf("zsh completions:\n%s", got)
		}
	})
	t.Run("fish", func(t *testing.T) {
		if _, err := exec.LookPath("fish"); err != nil {
			t.Skip("no fish")
		}
		f := script(t, "fish")
		got, err := exec.Command("fish", "-c", "source "+shQuote(f)+`; complete -C "consentd po"; echo ---; complete -C "consentd policy check --"; echo ---; complete -C "consentd completion "`).CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, got)
		}
		want := "policy\tpolicy files\n---\n--help\tprint the usage\n--json\tprint the summary as JSON\n--keys\tpseudonymization key file; when given, every key id the policy uses must be in it\n---\n" +
			"bash\tprint the bash completion script\nfish\tprint the fish completion script\nzsh\tprint the zsh completion script\n"
		if string(got) != want {
			t.Fatalf("fish completions:\n%s\nwant:\n%s", got, want)
		}
	})
}
