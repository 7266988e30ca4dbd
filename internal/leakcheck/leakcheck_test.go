package leakcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// recorder is a T that keeps the errors.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprint(args...))
}

// TestSlowExitIsNotALeak: a goroutine that ends a second after the check
// begins (longer than goleak's own retries) passes.
func TestSlowExitIsNotALeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Second) // a goroutine slow to end, the subject of the test
	}()
	var r recorder
	VerifyNone(&r, opt)
	if len(r.errs) != 0 {
		t.Fatalf("a goroutine that ended within the patience was reported: %v", r.errs)
	}
	<-done
}

// TestLeakReported: a goroutine that outlives the patience is reported,
// named by its function.
func TestLeakReported(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the whole patience")
	}
	opt := goleak.IgnoreCurrent()
	stop := make(chan struct{})
	go leaky(stop)
	var r recorder
	start := time.Now()
	VerifyNone(&r, opt)
	close(stop)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "leakcheck.leaky") {
		t.Fatalf("errors %v, want one naming leakcheck.leaky", r.errs)
	}
	if waited := time.Since(start); waited < Patience {
		t.Fatalf("reported after %v, before the patience of %v", waited, Patience)
	}
}

func leaky(stop <-chan struct{}) { <-stop }
