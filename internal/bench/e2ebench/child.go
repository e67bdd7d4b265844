package e2ebench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"
)

// Every contender runs in a child process of its own (the bench binary
// again, with the hidden --role flag), so its CPU time and peak RSS are
// the operating system's figures for that process alone. The parent
// hands the child a ChildSpec as JSON on stdin; the child consumes and
// commits Events raw events, exits, and prints one ChildReport as JSON on
// stdout.

// Roles of a child process.
const (
	RolePassThrough = "passthrough" // plain kafka-go Reader → Writer → commit
	RoleParallel    = "parallel"    // consentd's plumbing with a copying processor
	RoleConsentd    = "consentd"    // consentd with the policy in ChildSpec.Policy
)

// ChildSpec is what a child process runs.
type ChildSpec struct {
	Brokers    string
	Redis      string
	Raw        string // raw topic, read from its first offset
	Group      string // a consumer group of its own
	Events     int    // the child exits once this many are consumed and committed
	Partitions int    // of Raw
	BatchSize  int
	// Out is the pass-throughs' output topic.
	Out string
	// DeadLetter, Policy, Keys and KeyPrefix configure consentd.
	DeadLetter string
	Policy     string // policy file
	Keys       string // pseudonymization key file
	KeyPrefix  string // Redis consent key prefix
	// CPUProfile, when set, is where the child writes a CPU profile of
	// its whole life.
	CPUProfile string
}

// ChildReport is what a child measured itself.
type ChildReport struct {
	Consumed int
	Outputs  int64         // records written (clean + dead letters, or copies), as the contender counts them
	Wall     time.Duration // from start, group join included
	Steady   time.Duration // from the first message fetched to the last commit
}

// RunChild runs one contender (role) as specified by the JSON on in and
// writes its ChildReport as one JSON line to out.
func RunChild(ctx context.Context, role string, in io.Reader, out io.Writer) error {
	var spec ChildSpec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return fmt.Errorf("child spec: %w", err)
	}
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		rep ChildReport
		err error
	)
	switch role {
	case RolePassThrough:
		rep, err = passThrough(ctx, spec)
	case RoleParallel:
		rep, err = parallelPassThrough(ctx, spec)
	case RoleConsentd:
		rep, err = consentd(ctx, spec)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(rep)
}

// childRun is a finished child: its report and its resource usage.
type childRun struct {
	ChildReport
	CPU    time.Duration // user + system
	MaxRSS int64         // bytes
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr tailBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // of cmd.Wait, set before done is closed
	cancel context.CancelFunc
}

// startChild starts exe --role role with spec; the child is killed if it
// runs longer than timeout or ctx ends.
func startChild(ctx context.Context, exe, role string, spec ChildSpec, timeout time.Duration) (*child, error) {
	in, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	c := &child{done: make(chan struct{}), cancel: cancel}
	c.cmd = exec.CommandContext(ctx, exe, "--role", role)
	c.cmd.Stdin = bytes.NewReader(in)
	c.cmd.Stdout = &c.stdout
	c.cmd.Stderr = &c.stderr
	c.cmd.WaitDelay = 10 * time.Second
	if err := c.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s child: %w", role, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// wait waits for the child to exit and returns its report and usage.
func (c *child) wait() (childRun, error) {
	<-c.done
	defer c.cancel()
	if c.err != nil {
		return childRun{}, fmt.Errorf("%s child: %w; its last output: %s", c.cmd.Args[len(c.cmd.Args)-1], c.err, c.stderr.String())
	}
	rep, err := parseReport(c.stdout.Bytes())
	if err != nil {
		return childRun{}, err
	}
	cpu, rss, err := usage(c.cmd.ProcessState)
	if err != nil {
		return childRun{}, err
	}
	return childRun{ChildReport: rep, CPU: cpu, MaxRSS: rss}, nil
}

// parseReport reads the last JSON line of a child's stdout.
func parseReport(stdout []byte) (ChildReport, error) {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "{") {
			last = l
		}
	}
	if last == "" {
		return ChildReport{}, errors.New("the child printed no report")
	}
	var rep ChildReport
	if err := json.Unmarshal([]byte(last), &rep); err != nil {
		return ChildReport{}, fmt.Errorf("child report: %w", err)
	}
	return rep, nil
}

// tailBuffer keeps the last 4 KiB written to it: a child's last words.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
