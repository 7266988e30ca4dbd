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
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process of ours (an app replica, oxd-server, the OP, Redis,
// oauth2-proxy) in its own process group. Every line it prints goes to its
// log file (for the secrets audit) and the last lines are kept in memory.
type Proc struct {
	Name    string
	LogPath string
	pid     int

	done    chan struct{}
	outDone chan struct{}

	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

// Start starts bin with args in a new process group, in directory dir
// (empty: the current one); its output is appended to logPath. The kernel kills it if the starting thread (the test or bench
// process) dies.
func Start(name, logPath, dir string, env []string, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, LogPath: logPath, done: make(chan struct{}), outDone: make(chan struct{}), changed: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	w.Close()
	if err != nil {
		r.Close()
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	go p.read(r, f)
	return p, nil
}

func (p *Proc) read(r, f *os.File) {
	defer close(p.outDone)
	defer r.Close()
	defer f.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	bw := bufio.NewWriter(f)
	for sc.Scan() {
		line := sc.Text()
		bw.WriteString(line)
		bw.WriteByte('\n')
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if len(p.lines) > 400 {
			p.lines = append(p.lines[:0:0], p.lines[200:]...)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if len(line) > 0 && bw.Buffered() > 32<<10 {
			bw.Flush()
		}
	}
	bw.Flush()
}

// PID is the process id (and process group id).
func (p *Proc) PID() int { return p.pid }

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Tail is the last n lines of output.
func (p *Proc) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// WaitLine waits until a line matches re (lines printed before the call
// count) and returns its submatches.
func (p *Proc) WaitLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m, nil
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.outDone:
			p.mu.Lock()
			for _, l := range p.lines {
				if m := re.FindStringSubmatch(l); m != nil {
					p.mu.Unlock()
					return m, nil
				}
			}
			p.mu.Unlock()
			return nil, fmt.Errorf("%s exited before printing %q: %s", p.Name, re, p.Tail(15))
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no line %q: %w: %s", p.Name, re, ctx.Err(), p.Tail(15))
		}
	}
}

// Stop sends SIGTERM to the group, SIGKILL after 5 s, and waits for the
// process and its output.
func (p *Proc) Stop() { p.stop(syscall.SIGTERM) }

// Kill sends SIGKILL to the group at once (a crash) and waits.
func (p *Proc) Kill() { p.stop(syscall.SIGKILL) }

func (p *Proc) stop(sig syscall.Signal) {
	if p.Alive() {
		_ = syscall.Kill(-p.pid, sig)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	select {
	case <-p.outDone:
	case <-time.After(5 * time.Second):
	}
}

// CPUSeconds is the user+system CPU time of the process so far
// (/proc/<pid>/stat utime+stime), or -1 once it has exited.
func (p *Proc) CPUSeconds() float64 {
	return CPUSecondsOf(p.pid)
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
