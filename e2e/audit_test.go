package e2e_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/oxdgo/oxd/e2e/harness"
)

// TestMain runs the suite, then the secrets audit (harness.AuditRun): no
// log line of ours (the demo's, oxd-server's, the in-process engines' and
// middlewares', all at debug level) may contain a secret the OP issued or
// received. A leak fails the run.
func TestMain(m *testing.M) {
	code := m.Run()
	res, err := harness.AuditRun(os.Stderr)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "e2e secrets audit: %v\n", err)
		code = 1
	case len(res.Leaks) > 0:
		code = 1
	}
	os.Exit(code)
}
