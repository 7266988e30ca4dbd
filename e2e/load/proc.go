// Package load is the load and fault suite of oxd for Go: two replicas of a
// sample application (e2e/load/app) behind a small round-robin proxy, sharing
// one Redis, talking to cmd/oxd-server over the socket protocol, against the
// certified OP (oidc-provider) behind a fault proxy; browsers are HTTP
// clients that drive the OP's login form. Everything listens on 127.0.0.1.
//
// The helpers of this package are shared by the suite (load_test.go) and the
// peer benchmark (e2e/bench/peer). See e2e/README.md.
package load

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/proctest"
)

// Proc is a process of ours (an app replica, oxd-server, the OP, Redis,
// oauth2-proxy) in its own process group (internal/proctest). Every line it
// prints goes to its log file (for the secrets audit) and the last lines
// are kept in memory.
type Proc struct {
	Name    string
	LogPath string
	p       *proctest.Proc
}

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// Start starts bin with args in a new process group, in directory dir
// (empty: the current one); its output is appended to logPath. The kernel
// kills it if the starting thread (the test or bench process) dies.
func Start(name, logPath, dir string, env []string, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	p, err := proctest.Start(name, cmd, proctest.Options{LogPath: logPath, Keep: 400})
	if err != nil {
		return nil, err
	}
	return &Proc{Name: name, LogPath: logPath, p: p}, nil
}

// PID is the process id (and process group id).
func (p *Proc) PID() int { return p.p.PID() }

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool { return p.p.Alive() }

// Tail is the last n lines of output.
func (p *Proc) Tail(n int) string { return p.p.Tail(n) }

// WaitLine waits until a line matches re (lines printed before the call
// count) and returns its submatches.
func (p *Proc) WaitLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return p.p.WaitLine(ctx, re)
}

// Stop sends SIGTERM to the group, SIGKILL after 5 s, and waits for the
// process and its output.
func (p *Proc) Stop() { _ = p.p.Stop(stopTimeout) }

// Kill sends SIGKILL to the group at once (a crash) and waits.
func (p *Proc) Kill() { _ = p.p.Kill(stopTimeout) }

// CPUSeconds is the user+system CPU time of the process so far
// (/proc/<pid>/stat utime+stime), or -1 once it has exited.
func (p *Proc) CPUSeconds() float64 {
	return CPUSecondsOf(p.PID())
}

// CPUSecondsOf reads utime+stime of pid from /proc.
func CPUSecondsOf(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// after the command: state(0) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(11) stime(12)
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck
}

// clkTck is USER_HZ, 100 on Linux.
const clkTck = 100

// RSSBytes is the resident set size of pid (/proc/<pid>/status VmRSS).
func RSSBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return -1
}
