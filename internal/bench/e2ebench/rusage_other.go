//go:build !unix

package e2ebench

import (
	"errors"
	"os"
	"time"
)

// usage returns the CPU time of an exited process; the peak resident set
// size is not reported on this platform (0).
func usage(ps *os.ProcessState) (cpu time.Duration, maxRSS int64, err error) {
	if ps == nil {
		return 0, 0, errors.New("no resource usage for the child process")
	}
	return ps.UserTime() + ps.SystemTime(), 0, nil
}
