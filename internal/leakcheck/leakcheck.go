// Package leakcheck checks that a test left no goroutine behind, with the
// patience of a loaded machine: goroutines that are on their way out (a
// connection's reader after its peer closed, a timer's callback) may take
// longer to end than goleak's own retries, about half a second, allow.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/internal/testwait"
)

// Patience is how long goroutines have to end before they count as
// leaked.
const Patience = testwait.Patience

// T is the part of testing.TB that VerifyNone uses.
type T interface {
	Helper()
	Error(args ...any)
}

// VerifyNone reports an error on t when goroutines other than those opts
// ignore are still running after Patience (goleak.VerifyNone after
// waiting for them to end).
func VerifyNone(t T, opts ...goleak.Option) {
	t.Helper()
	if err := await(opts...); err != nil {
		t.Error(err)
	}
}

// VerifyTestMain runs the tests of m and, when they passed, fails the run
// if goroutines other than those opts ignore are still running after
// Patience (goleak.VerifyTestMain with the same patience).
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := await(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines left after a successful run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// await waits up to Patience for goleak.Find to find nothing and returns
// its last finding.
func await(opts ...goleak.Option) error {
	deadline := time.Now().Add(Patience)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
