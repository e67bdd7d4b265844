package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one node of consentd's command tree (commands). The tree is
// the one source of the top-level usage, each group's usage, the shell
// completion scripts and the test that asks every command for --help:
// a command exists only by being in it.
type command struct {
	name    string
	args    string // what follows the command's path in its synopsis
	summary string // one line, for the parent's list
	help    string // a group's description, printed above its commands
	sub     []*command
	// run runs a leaf with the arguments after its name. It declares its
	// flags with newFlags and parses them (parse, parseArgs) before it
	// does anything else, so that --help prints them and runs nothing.
	run func(args []string, stdout, stderr io.Writer) error
}

// find descends from c along the leading arguments that name commands,
// and returns the command reached, its path (names from the root) and
// the arguments left.
func (c *command) find(args []string) (*command, []string, []string) {
	path := []string{c.name}
	for len(args) > 0 {
		next := c.child(args[0])
		if next == nil {
			break
		}
		c, path, args = next, append(path, next.name), args[1:]
	}
	return c, path, args
}

func (c *command) child(name string) *command {
	for _, s := range c.sub {
		if s.name == name {
			return s
		}
	}
	return nil
}

// exec runs c (reached by path) with args. A group prints its usage; a
// leaf asked for help prints it to stdout.
func (c *command) exec(path, args []string, stdout, stderr io.Writer) error {
	p := strings.Join(path[1:], " ") + ": " // errors name the command after "consentd: "
	if p == ": " {
		p = ""
	}
	if c.run != nil {
		if wantsHelp(args) {
			stderr = stdout // help asked for is the output
		}
		return c.run(args, stdout, stderr)
	}
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		c.printUsage(stdout, path)
		return nil
	case len(args) == 0:
		c.printUsage(stderr, path)
		return usageError{fmt.Errorf("%smissing command", p)}
	default:
		c.printUsage(stderr, path)
		return usageError{fmt.Errorf("%sunknown command %q", p, args[0])}
	}
}

func isHelpFlag(a string) bool {
	switch a {
	case "-h", "--h", "-help", "--help", "help":
		return true
	}
	return false
}

// wantsHelp reports whether a leaf's arguments ask for help before any
// "--" (flag.Parse then answers flag.ErrHelp).
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a != "help" && isHelpFlag(a) {
			return true
		}
	}
	return false
}

// leaves calls f with every leaf under c and its path, depth first.
func (c *command) leaves(path []string, f func(*command, []string)) {
	if c.run != nil {
		f(c, path)
		return
	}
	for _, s := range c.sub {
		s.leaves(append(append([]string(nil), path...), s.name), f)
	}
}

// printUsage prints a group's usage: its description and every command
// under it with its synopsis and summary.
func (c *command) printUsage(w io.Writer, path []string) {
	if len(path) == 1 {
		fmt.Fprintf(w, "consentd %s.\n\nUsage:\n", c.summary)
	} else {
		fmt.Fprintf(w, "Usage: %s COMMAND\n\n", strings.Join(path, " "))
		if c.help != "" {
			fmt.Fprintln(w, strings.TrimSpace(c.help))
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Commands:")
	}
	c.leaves(path, func(l *command, p []string) {
		syn := strings.TrimSpace(strings.Join(p, " ") + " " + l.args)
		if len(syn) <= 32 {
			fmt.Fprintf(w, "  %-33s %s\n", syn, l.summary)
		} else {
			fmt.Fprintf(w, "  %s\n  %-33s %s\n", syn, "", l.summary)
		}
	})
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", strings.Join(path, " "))
}

// flagProbe stands for stderr when flagsOf asks a leaf for --help:
// newFlags records the flag sets the leaf declares.
type flagProbe struct {
	io.Writer
	sets []*flag.FlagSet
}

// flagsOf returns the flags a leaf declares, by asking it for --help.
func flagsOf(c *command) []*flag.Flag {
	p := &flagProbe{Writer: io.Discard}
	_ = c.run([]string{"--help"}, io.Discard, p)
	var out []*flag.Flag
	for _, fs := range p.sets {
		fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	}
	return out
}

// newFlags returns the flag set of one leaf; synopsis is the usage line
// and description that --help prints above the flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse returns the error; run prints it once
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		printFlags(stderr, fs)
	}
	if p, ok := stderr.(*flagProbe); ok {
		p.sets = append(p.sets, fs)
	}
	return fs
}

// printFlags prints fs's flags as they are spelled in consentd's texts
// (--name), with the value each takes and its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		value, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if value != "" {
			fmt.Fprintf(w, " %s", value)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !isBoolFlag(f) && f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashes spells the flag package's errors' flag names as consentd's
// texts do (--name).
var dashes = strings.NewReplacer("defined: -", "defined: --", "for flag -", "for flag --", "argument: -", "argument: --")

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fmt.Errorf("%s: %s", fs.Name(), dashes.Replace(err.Error()))}
	}
	return nil
}

// parseArgs parses fs's flags wherever they stand among the positional
// arguments, and returns the positional ones in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for rest := args; ; {
		if err := parse(fs, rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

type usageError struct{ error }
