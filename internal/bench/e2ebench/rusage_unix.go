//go:build unix

package e2ebench

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"
)

// usage returns the CPU time (user + system) and the peak resident set
// size in bytes of an exited process.
func usage(ps *os.ProcessState) (cpu time.Duration, maxRSS int64, err error) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, 0, errors.New("no resource usage for the child process")
	}
	cpu, maxRSS = fromRusage(ru, runtime.GOOS)
	return cpu, maxRSS, nil
}

// fromRusage reads getrusage(2) fields: ru_maxrss is in KiB on Linux and
// the BSDs, in bytes on macOS.
func fromRusage(ru *syscall.Rusage, goos string) (cpu time.Duration, maxRSS int64) {
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	maxRSS = int64(ru.Maxrss)
	if goos != "darwin" && goos != "ios" {
		maxRSS *= 1024
	}
	return cpu, maxRSS
}
