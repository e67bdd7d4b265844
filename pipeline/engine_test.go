package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/internal/demo/synth"
	"github.com/consentd/consentd/internal/lib/retry"
	"github.com/consentd/consentd/pipeline"
	"github.com/consentd/consentd/pipeline/enginetest"
	"github.com/consentd/consentd/policy"
	"github.com/consentd/consentd/wire"
)

// copyProc writes each raw message as one clean message; values starting
// with "poison" are dead-lettered.
type copyProc struct{}

func (copyProc) Process(_ context.Context, msgs []kafka.Message) (*pipeline.Result, error) {
	res := &pipeline.Result{Accounting: pipeline.NewAccounting()}
	for i := range msgs {
		m := &msgs[i]
		res.Accounting.Consumed[m.Topic]++
		if strings.HasPrefix(string(m.Value), "poison") {
			res.Out = append(res.Out, wire.DeadLetter(enginetest.DeadLetter, m, "test", "test", "v1"))
			res.Accounting.Dead["test"]++
		} else {
			res.Out = append(res.Out, wire.Clean{Topic: "clean", Key: m.Key, Value: m.Value, PolicyVersion: []byte("v1"),
				ConsentVersion: wire.None, Actions: wire.None, Output: []byte("out"), Source: wire.Source(m)}.Message())
			res.Accounting.Written["out"]++
			res.Accounting.Decisions[pipeline.Decision{Output: "out", Action: "write"}]++
		}
		res.Origin = append(res.Origin, i)
	}
	return res, nil
}

func (copyProc) Stale(*pipeline.Result) bool { return false }

// TestEngineContractCopy runs the engine's contract with a processor that
// only copies: the engine's own guarantees.
func TestEngineContractCopy(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, enginetest.Setup{
		CleanTopics: []string{"clean"},
		NewProcessor: func(*testing.T) func() pipeline.BatchProcessor {
			return func() pipeline.BatchProcessor { return copyProc{} }
		},
		Event:  func(i int) []byte { return fmt.Appendf(nil, "event-%04d", i) },
		Poison: func(i int) []byte { return fmt.Appendf(nil, "poison-%04d", i) },
	})
}

// grantAll is a consent store in which every subject granted every
// purpose.
type grantAll struct{ purposes []string }

func (g grantAll) Lookup(_ context.Context, subjects []string) (map[string]consent.Record, error) {
	out := make(map[string]consent.Record, len(subjects))
	for _, s := range subjects {
		granted := map[string]bool{}
		for _, p := range g.purposes {
			granted[p] = true
		}
		out[s] = consent.Record{Found: true, Version: 1, Granted: granted}
	}
	return out, nil
}

// TestEngineContractProcessor runs the engine's contract with consentd's
// own Processor and the shipped policy.
func TestEngineContractProcessor(t *testing.T) {
	t.Parallel()
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load("../configs/policy.yaml", keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.ProcessorConfig{Policy: pol, Store: grantAll{pol.Purposes}, DeadLetterTopic: enginetest.DeadLetter,
		Backoff: retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}}
	newProc, err := pipeline.NewProcessorFactory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Synthetic events the policy writes somewhere.
	var events [][]byte
	g := synth.New(7, 1000)
	probe := newProc()
	for len(events) < 500 {
		v, _ := g.Event()
		res, err := probe.Process(context.Background(), []kafka.Message{{Topic: enginetest.Raw, Value: v, Time: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Out) > 0 && !wire.IsDeadLetter(&res.Out[0]) {
			events = append(events, v)
		}
	}
	var clean []string
	for _, o := range pol.Outputs {
		clean = append(clean, o.Topic)
	}
	enginetest.Run(t, enginetest.Setup{
		CleanTopics:  clean,
		NewProcessor: func(*testing.T) func() pipeline.BatchProcessor { return newProc },
		Event:        func(i int) []byte { return events[i%len(events)] },
		Poison:       func(i int) []byte { return fmt.Appendf(nil, `{"userId":"u%d",`, i) },
	})
}
