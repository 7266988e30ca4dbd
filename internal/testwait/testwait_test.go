package testwait

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct{ failed string }

func (*fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // Fatalf does not return
}

func run(f *fakeT, wait func()) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	wait()
}

func TestForReturnsOnceDone(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(50 * time.Millisecond)
		n.Store(3)
	}()
	var f fakeT
	run(&f, func() {
		For(&f, func() (bool, string) { return n.Load() == 3, fmt.Sprintf("n = %d", n.Load()) })
	})
	if f.failed != "" {
		t.Fatalf("failed: %s", f.failed)
	}
}

// TestForFailsWithWhatItSaw: a condition that never holds fails after
// Patience, with the last state cond described.
func TestForFailsWithWhatItSaw(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits Patience")
	}
	var f fakeT
	calls := 0
	start := time.Now()
	run(&f, func() {
		For(&f, func() (bool, string) { calls++; return false, fmt.Sprintf("seen %d", calls) })
	})
	if time.Since(start) < Patience {
		t.Fatalf("gave up after %v", time.Since(start))
	}
	if want := fmt.Sprintf("seen %d after %v", calls, Patience); f.failed != want {
		t.Fatalf("failure %q, want %q", f.failed, want)
	}
}

func TestUntilNamesTheCondition(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits Patience")
	}
	var f fakeT
	run(&f, func() { Until(&f, "the moon is blue", func() bool { return false }) })
	if !strings.Contains(f.failed, "the moon is blue") {
		t.Fatalf("failure %q does not name the condition", f.failed)
	}
}
