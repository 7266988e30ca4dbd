package proctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/ciutil"
)

func shell(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	ciutil.Need(t, "sh", err)
	return sh
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// TestStopKillsTheWholeGroup starts a shell whose child ignores SIGTERM
// and checks that Stop leaves neither of them behind.
func TestStopKillsTheWholeGroup(t *testing.T) {
	cmd := exec.Command(shell(t), "-c", `trap "" TERM; sleep 300 & echo "child $!"; wait`)
	p, err := Start("sh", cmd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.WaitLine(ctx, regexp.MustCompile(`^child (\d+)$`))
	if err != nil {
		_ = p.Kill(time.Second)
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(m[1])
	if !pidAlive(child) || !p.Alive() {
		t.Fatal("processes should be running")
	}
	start := time.Now()
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Alive() {
		t.Fatal("shell still running after Stop")
	}
	// The child was reparented; give the kernel a moment to reap it.
	deadline := time.Now().Add(5 * time.Second)
	for pidAlive(child) && !isZombie(child) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pidAlive(child) && !isZombie(child) {
		t.Fatalf("child %d of the group survived Stop", child)
	}
	t.Logf("stopped in %v (SIGTERM ignored, so SIGKILL after 1s)", time.Since(start).Round(time.Millisecond))
	if err := p.Stop(time.Second); err != nil { // again: nothing to do
		t.Fatal(err)
	}
}

// TestWaitLineReportsEarlyExit: a process that exits before printing the
// line fails the wait at once, with its output kept and its exit error.
func TestWaitLineReportsEarlyExit(t *testing.T) {
	p, err := Start("sh", exec.Command(shell(t), "-c", `echo starting; exit 3`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p.WaitLine(ctx, regexp.MustCompile(`^listening on`))
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("want an early-exit error, got %v", err)
	}
	if !strings.Contains(p.Output(), "starting") {
		t.Fatalf("output not kept: %q", p.Output())
	}
	if p.Err() == nil {
		t.Fatal("exit status 3 is not an error")
	}
}

// TestLogGetsEveryLineKeepBoundsMemory: the log file receives every line
// even when only the last few are kept; dropped lines are counted, and a
// line printed before WaitLine is called still matches.
func TestLogGetsEveryLineKeepBoundsMemory(t *testing.T) {
	log := filepath.Join(t.TempDir(), "p.log")
	p, err := Start("sh", exec.Command(shell(t), "-c", `i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done`),
		Options{LogPath: log, Keep: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.WaitLine(ctx, regexp.MustCompile(`^line 99$`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 100 {
		t.Fatalf("log has %d lines, want 100", n)
	}
	out := p.Output()
	if !strings.HasPrefix(out, "[... 90 earlier lines dropped]\n") || !strings.Contains(out, "line 90\n") || strings.Contains(out, "line 89\n") {
		t.Fatalf("kept output: %q", out)
	}
	if got := p.Tail(2); got != "line 98\nline 99" {
		t.Fatalf("Tail(2) = %q", got)
	}
	if fi, err := os.Stat(log); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log mode: %v %v", fi.Mode(), err)
	}
}

// TestKillIsImmediate: Kill does not wait for a graceful stop.
func TestKillIsImmediate(t *testing.T) {
	p, err := Start("sh", exec.Command(shell(t), "-c", `trap "" TERM; echo up; sleep 300`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.WaitLine(ctx, regexp.MustCompile(`^up$`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Kill(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Kill took %v", d)
	}
}

// TestStartRefusesACollectedCommand: output already directed elsewhere is
// refused (it would not be collected).
func TestStartRefusesACollectedCommand(t *testing.T) {
	cmd := exec.Command(shell(t), "-c", "true")
	cmd.Stdout = os.Stdout
	if _, err := Start("sh", cmd, Options{}); err == nil {
		t.Fatal("Start accepted a command with Stdout set")
	}
}
