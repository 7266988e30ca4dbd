package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a graceful stop waits after SIGTERM before it sends
// SIGKILL, and how long it then waits for the process to be reaped.
const stopTimeout = 10 * time.Second

// keptLines bounds the output lines kept for a failure report.
const keptLines = 200

// proc is one redis-server or redis-cli process in its own process group,
// with its output kept (the last keptLines lines).
type proc struct {
	name string
	pid  int

	done    chan struct{} // closed once the process has exited and was reaped
	waitErr error         // valid after done
	outDone chan struct{} // closed when the output reached EOF

	mu    sync.Mutex
	lines []string
}

// startProc starts bin with args in a new process group. The child gets
// SIGKILL if the thread that started it goes away (the test binary dying),
// so the start and the wait run on one goroutine locked to its OS thread.
func startProc(name, bin string, args []string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, done: make(chan struct{}), outDone: make(chan struct{})}
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

func (p *proc) read(r io.ReadCloser) {
	defer close(p.outDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 16*1024), 1024*1024)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		if len(p.lines) > keptLines {
			p.lines = append(p.lines[:0:0], p.lines[len(p.lines)-keptLines:]...)
		}
		p.mu.Unlock()
	}
}

// output returns the last lines of output.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits up to d for the process to exit and reports whether it did.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// signal sends sig to the process group of p, unless p has exited (then
// its process group may no longer exist and its id may have been reused).
func (p *proc) signal(sig syscall.Signal) {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(-p.pid, sig)
}

// stop sends SIGTERM (graceful) or SIGKILL (hard) to the process group and
// waits for the process to exit; after SIGTERM it escalates to SIGKILL once
// stopTimeout has passed. Calling it on an exited process does nothing.
func (p *proc) stop(hard bool) error {
	if hard {
		p.signal(syscall.SIGKILL)
	} else {
		p.signal(syscall.SIGTERM)
		if !p.wait(stopTimeout) {
			p.signal(syscall.SIGKILL)
		}
	}
	if !p.wait(stopTimeout) {
		return fmt.Errorf("redistest: %s (pid %d) did not exit after SIGKILL", p.name, p.pid)
	}
	// A child left behind (a background save or rewrite) keeps the process
	// group, and so its id, alive: it goes too. ESRCH when there is none.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-p.outDone:
	case <-time.After(stopTimeout):
		return errors.New("redistest: " + p.name + ": output still open after exit")
	}
	return nil
}
