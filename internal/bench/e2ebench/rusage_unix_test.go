//go:build unix

package e2ebench

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestFromRusage(t *testing.T) {
	ru := &syscall.Rusage{
		Utime:  syscall.NsecToTimeval(int64(1500 * time.Millisecond)),
		Stime:  syscall.NsecToTimeval(int64(250 * time.Millisecond)),
		Maxrss: 2048,
	}
	for _, tc := range []struct {
		goos    string
		wantRSS int64
	}{
		{"linux", 2048 << 10}, // KiB
		{"freebsd", 2048 << 10},
		{"darwin", 2048}, // bytes
	} {
		t.Run(tc.goos, func(t *testing.T) {
			cpu, rss := fromRusage(ru, tc.goos)
			if cpu != 1750*time.Millisecond || rss != tc.wantRSS {
				t.Errorf("fromRusage = %v, %d; want 1.75s, %d", cpu, rss, tc.wantRSS)
			}
		})
	}
}

// TestUsageOfAChild reads the usage of a real exited process: this test
// binary, running no test.
func TestUsageOfAChild(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	cpu, rss, err := usage(cmd.ProcessState)
	if err != nil {
		t.Fatal(err)
	}
	// A Go binary's peak RSS is megabytes, not kilobytes (unit check).
	if cpu < 0 || rss < 1<<20 || rss > 1<<32 {
		t.Errorf("usage = %v CPU, %d bytes peak RSS", cpu, rss)
	}
}
