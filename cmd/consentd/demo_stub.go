//go:build nodemo

package main

import (
	"errors"
	"io"
)

// demoIncluded says whether this build has the demo (version --json).
const demoIncluded = false

// demoCommand: this build (tag nodemo, the production image) carries no
// in-process Kafka, Redis or Lua interpreter, so no demo.
func demoCommand() *command {
	return &command{name: "demo", summary: "not in this build (built with -tags nodemo)", run: cmdDemo}
}

func cmdDemo(args []string, _, stderr io.Writer) error {
	fs := newFlags("demo", "consentd demo\n\nThis consentd was built with -tags nodemo, without the demo's in-process\nKafka and Redis: run 'go run ./cmd/consentd demo' from the source tree.", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	return errors.New("demo: not in this build (built with -tags nodemo); run 'go run ./cmd/consentd demo' from the source tree")
}
