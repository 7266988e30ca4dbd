// Package proctest starts the processes that tests and benchmarks of oxd
// for Go run beside themselves (redis-server, oidc-provider, oxd-server,
// the load suite's replicas, the demo, oxd-node): each in a process group
// of its own, its output collected line by line, stopped by signalling its
// group by the process id (never by name).
package proctest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultKeep is how many output lines a Proc keeps in memory by default.
const DefaultKeep = 2000

// maxLine is the longest output line read whole.
const maxLine = 4 << 20

// Options are the optional settings of Start.
type Options struct {
	// LogPath, when set, receives every line of output (appended; created
	// with mode 0600), whatever Keep is.
	LogPath string
	// Keep bounds the output lines kept in memory (default DefaultKeep).
	Keep int
}

// Proc is a process started by Start.
type Proc struct {
	name string
	pid  int
	keep int

	done    chan struct{} // closed once the process has exited and was reaped
	waitErr error         // valid after done
	outDone chan struct{} // closed when the output reached EOF

	mu      sync.Mutex
	lines   []string
	dropped int
	changed chan struct{} // closed and replaced on every new line

	leftovers sync.Once // the group's leftover members are killed once
}

// Start starts cmd in a new process group with its standard output and
// error collected (cmd.Stdout and cmd.Stderr must be nil). The child gets
// SIGKILL if the thread that started it goes away (the test binary dying):
// the start and the wait run on one goroutine locked to its OS thread.
func Start(name string, cmd *exec.Cmd, o Options) (*Proc, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("proctest: cmd.Stdout and cmd.Stderr must be nil")
	}
	var log *os.File
	if o.LogPath != "" {
		f, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		log = f
	}
	r, w, err := os.Pipe()
	if err != nil {
		if log != nil {
			log.Close()
		}
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &Proc{name: name, keep: o.Keep, done: make(chan struct{}), outDone: make(chan struct{}), changed: make(chan struct{})}
	if p.keep <= 0 {
		p.keep = DefaultKeep
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
		if log != nil {
			log.Close()
		}
		return nil, fmt.Errorf("proctest: start %s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	go p.read(r, log)
	return p, nil
}

func (p *Proc) read(r io.ReadCloser, log *os.File) {
	defer close(p.outDone)
	defer r.Close()
	var bw *bufio.Writer
	if log != nil {
		defer log.Close()
		bw = bufio.NewWriterSize(log, 64<<10)
		defer bw.Flush()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Text()
		if bw != nil {
			bw.WriteString(line)
			bw.WriteByte('\n')
		}
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if len(p.lines) > p.keep {
			n := len(p.lines) - p.keep
			p.lines = append(p.lines[:0:0], p.lines[n:]...)
			p.dropped += n
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// Name is the name given to Start.
func (p *Proc) Name() string { return p.name }

// PID is the process id, which is also its process group id.
func (p *Proc) PID() int { return p.pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil for exit status 0), once Done is
// closed.
func (p *Proc) Err() error {
	<-p.done
	return p.waitErr
}

// Alive reports whether the process has not exited yet.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Output is the output kept (the most recent lines), with a note of how
// many earlier lines were dropped.
func (p *Proc) Output() string {
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

// WaitLine waits until a line of output (one printed before the call
// counts, if still kept) matches re and returns the submatches of the
// first such line. It fails when ctx ends or the output closes first.
func (p *Proc) WaitLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	seen := 0 // lines looked at, counting dropped ones
	for {
		p.mu.Lock()
		for _, l := range p.lines[max(0, seen-p.dropped):] {
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
		case <-p.outDone:
			p.mu.Lock()
			for _, l := range p.lines[max(0, seen-p.dropped):] {
				if m := re.FindStringSubmatch(l); m != nil {
					p.mu.Unlock()
					return m, nil
				}
			}
			p.mu.Unlock()
			return nil, fmt.Errorf("%s exited before printing a line matching %q: %s", p.name, re, p.Tail(15))
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no line matching %q: %w: %s", p.name, re, ctx.Err(), p.Tail(15))
		}
	}
}

// Signal sends sig to the process group, unless the process has exited
// (its group id may then be reused).
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Alive() {
		_ = syscall.Kill(-p.pid, sig)
	}
}

// Stop sends SIGTERM to the process group, SIGKILL when the process has
// not exited after timeout, and waits up to timeout again. Then it sends
// SIGKILL to the group once more, for any child left behind (a background
// save of Redis, a worker), and waits up to timeout for the output to
// close. Calling it on an exited process only does the last two steps
// (the group's leftovers are signalled by the first call only).
// The process exiting with a signal is not an error; failing to make it
// exit is.
func (p *Proc) Stop(timeout time.Duration) error { return p.stop(syscall.SIGTERM, timeout) }

// Kill sends SIGKILL to the process group at once (a crash), then does as
// Stop.
func (p *Proc) Kill(timeout time.Duration) error { return p.stop(syscall.SIGKILL, timeout) }

func (p *Proc) stop(sig syscall.Signal, timeout time.Duration) error {
	p.Signal(sig)
	if !p.Wait(timeout) {
		p.Signal(syscall.SIGKILL)
		if !p.Wait(timeout) {
			return fmt.Errorf("proctest: %s (pid %d) did not exit after SIGKILL", p.name, p.pid)
		}
	}
	// Once only: a group id left without members may be reused later.
	p.leftovers.Do(func() { _ = syscall.Kill(-p.pid, syscall.SIGKILL) }) // ESRCH when the group is gone
	select {
	case <-p.outDone:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("proctest: %s (pid %d): output still open after exit (a child kept it)", p.name, p.pid)
	}
}
