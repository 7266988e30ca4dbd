package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer
// letting a server bind port 0 itself; this is for programs that cannot.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("e2e: no free port on 127.0.0.1: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// maxKeptLines bounds how many output lines a ProcessGroup keeps.
const maxKeptLines = 2000

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 5 * time.Second

// ProcessGroup is a process started in its own process group, whose standard
// output and error are collected line by line. Stop (which StartProcessGroup
// registers with t.Cleanup) signals the whole group and waits for the process,
// so nothing it started survives the test.
type ProcessGroup struct {
	name string
	cmd  *exec.Cmd
	pid  int

	done    chan struct{} // closed when the process has exited and was reaped
	waitErr error         // valid after done

	readDone chan struct{} // closed when the output pipe reached EOF

	mu      sync.Mutex
	lines   []string
	dropped int
	changed chan struct{} // closed and replaced on every new line

	stopOnce sync.Once
	stopErr  error
}

// StartProcessGroup starts cmd in a new process group, with its output
// collected, and registers a cleanup that stops it (SIGTERM, then SIGKILL after
// StopTimeout, to the whole group) and waits for it. cmd must not have been
// started, and its Stdout and Stderr must be nil. If the test fails, the last
// lines of output are logged at cleanup.
func StartProcessGroup(t testing.TB, name string, cmd *exec.Cmd) *ProcessGroup {
	t.Helper()
	p, err := startProcessGroup(name, cmd)
	if err != nil {
		t.Fatalf("e2e: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("e2e: stop %s (pid %d): %v", name, p.pid, err)
		}
		if t.Failed() {
			t.Logf("e2e: last output of %s (pid %d):\n%s", name, p.pid, p.Output())
		}
	})
	return p
}

func startProcessGroup(name string, cmd *exec.Cmd) (*ProcessGroup, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("cmd.Stdout and cmd.Stderr must be nil")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	cmd.Stderr = w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// If the test binary dies, the kernel kills the child. Pdeathsig follows
	// the OS thread that forked, so the start and wait below run on one
	// goroutine locked to its thread for the whole life of the process.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL

	p := &ProcessGroup{
		name:     name,
		cmd:      cmd,
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		changed:  make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	go p.read(r)
	return p, nil
}

func (p *ProcessGroup) read(r *os.File) {
	defer close(p.readDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		if len(p.lines) > maxKeptLines {
			n := len(p.lines) - maxKeptLines
			p.lines = append(p.lines[:0:0], p.lines[n:]...)
			p.dropped += n
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// Name is the name given at start.
func (p *ProcessGroup) Name() string { return p.name }

// PID is the process id (and process group id) of the process.
func (p *ProcessGroup) PID() int { return p.pid }

// Done is closed once the process has exited.
func (p *ProcessGroup) Done() <-chan struct{} { return p.done }

// Output returns the output lines kept so far (the most recent ones).
func (p *ProcessGroup) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.dropped > 0 {
		fmt.Fprintf(&b, "[... %d earlier lines dropped]\n", p.dropped)
	}
	for _, l := range p.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// WaitForLine waits until a line of output matches re and returns the
// submatches of the first such line. It fails when ctx ends or the process
// exits first.
func (p *ProcessGroup) WaitForLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	seen := 0
	for {
		p.mu.Lock()
		start := seen - p.dropped
		if start < 0 {
			start = 0
		}
		for _, l := range p.lines[start:] {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m, nil
			}
		}
		seen = p.dropped + len(p.lines)
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.readDone:
			// Output closed: look once more at what arrived, then give up.
			p.mu.Lock()
			for _, l := range p.lines[max(0, seen-p.dropped):] {
				if m := re.FindStringSubmatch(l); m != nil {
					p.mu.Unlock()
					return m, nil
				}
			}
			p.mu.Unlock()
			<-p.done
			return nil, fmt.Errorf("%s exited (%v) before printing a line matching %q", p.name, p.waitErr, re)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no line matching %q: %w", p.name, re, ctx.Err())
		}
	}
}

// Stop sends SIGTERM to the process group, waits up to StopTimeout for the
// process to exit, then sends SIGKILL to the group. Once the process has
// exited it sends SIGKILL to the group again, for any child left behind. It
// is safe to call more than once. The process exiting with a signal is not an
// error; failing to make it exit is.
func (p *ProcessGroup) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(StopTimeout):
				_ = syscall.Kill(-p.pid, syscall.SIGKILL)
				select {
				case <-p.done:
				case <-time.After(StopTimeout):
					p.stopErr = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid)
					return
				}
			}
		}
		// Leftover group members, if any, go too (ESRCH when there are none).
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		select {
		case <-p.readDone:
		case <-time.After(StopTimeout):
			p.stopErr = fmt.Errorf("%s (pid %d): output still open after exit (a child kept it)", p.name, p.pid)
		}
	})
	return p.stopErr
}

// Alive reports whether the process has not exited yet.
func (p *ProcessGroup) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
