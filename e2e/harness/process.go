package harness

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/proctest"
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
// output and error are collected line by line (internal/proctest). Stop
// (which StartProcessGroup registers with t.Cleanup) signals the whole group
// and waits for the process, so nothing it started survives the test.
type ProcessGroup struct {
	p *proctest.Proc

	stopOnce sync.Once
	stopErr  error
}

// StartProcessGroup starts a process of ours (the demo, oxd-server) in a new
// process group, with its output collected, every line of it also in a log
// that the secrets audit reads (OwnLog), and registers a cleanup that stops
// it (SIGTERM, then SIGKILL after StopTimeout, to the whole group) and waits
// for it. cmd must not have been started, and its Stdout and Stderr must be
// nil. If the test fails, the last lines of output are logged at cleanup.
func StartProcessGroup(t testing.TB, name string, cmd *exec.Cmd) *ProcessGroup {
	t.Helper()
	return start(t, name, cmd, OwnLog(t, name))
}

// StartPeerProcessGroup is StartProcessGroup for a process that is not
// ours, whose output the secrets audit does not read: the OP, and the
// oxd-node driver, whose output is the channel that hands oxd's answers
// (tokens included) to the test.
func StartPeerProcessGroup(t testing.TB, name string, cmd *exec.Cmd) *ProcessGroup {
	t.Helper()
	return start(t, name, cmd, "")
}

func start(t testing.TB, name string, cmd *exec.Cmd, logPath string) *ProcessGroup {
	t.Helper()
	p, err := startProcessGroup(name, cmd, logPath)
	if err != nil {
		t.Fatalf("e2e: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("e2e: stop %s (pid %d): %v", name, p.PID(), err)
		}
		if t.Failed() {
			t.Logf("e2e: last output of %s (pid %d):\n%s", name, p.PID(), p.Output())
		}
	})
	return p
}

func startProcessGroup(name string, cmd *exec.Cmd, logPath string) (*ProcessGroup, error) {
	p, err := proctest.Start(name, cmd, proctest.Options{Keep: maxKeptLines, LogPath: logPath})
	if err != nil {
		return nil, err
	}
	return &ProcessGroup{p: p}, nil
}

// Name is the name given at start.
func (p *ProcessGroup) Name() string { return p.p.Name() }

// PID is the process id (and process group id) of the process.
func (p *ProcessGroup) PID() int { return p.p.PID() }

// Done is closed once the process has exited.
func (p *ProcessGroup) Done() <-chan struct{} { return p.p.Done() }

// Output returns the output lines kept so far (the most recent ones).
func (p *ProcessGroup) Output() string { return p.p.Output() }

// WaitForLine waits until a line of output matches re and returns the
// submatches of the first such line. It fails when ctx ends or the process
// exits first.
func (p *ProcessGroup) WaitForLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return p.p.WaitLine(ctx, re)
}

// Stop sends SIGTERM to the process group, waits up to StopTimeout for the
// process to exit, then sends SIGKILL to the group. Once the process has
// exited it sends SIGKILL to the group again, for any child left behind. It
// is safe to call more than once. The process exiting with a signal is not an
// error; failing to make it exit is.
func (p *ProcessGroup) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.p.Stop(StopTimeout) })
	return p.stopErr
}

// Alive reports whether the process has not exited yet.
func (p *ProcessGroup) Alive() bool { return p.p.Alive() }
