package redistest

import (
	"os/exec"
	"time"

	"github.com/oxdgo/oxd/internal/proctest"
)

// stopTimeout is how long a graceful stop waits after SIGTERM before it sends
// SIGKILL, and how long it then waits for the process to be reaped.
const stopTimeout = 10 * time.Second

// keptLines bounds the output lines kept for a failure report.
const keptLines = 200

// startProc starts a redis-server or redis-cli process in its own process
// group (internal/proctest), its last keptLines lines of output kept.
func startProc(name, bin string, args []string) (*proctest.Proc, error) {
	return proctest.Start(name, exec.Command(bin, args...), proctest.Options{Keep: keptLines})
}
