package connlimit

import (
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/syncbuf"
)

// emfileListener fails Accept with EMFILE n times, then hands out one end
// of a pipe.
type emfileListener struct {
	n, calls int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls <= l.n {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	a, _ := net.Pipe()
	return a, nil
}
func (l *emfileListener) Close() error   { return nil }
func (l *emfileListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestAcceptEMFILEBacksOff: running out of descriptors is logged once
// (rate-limited) and retried with a growing pause, not in a busy loop.
func TestAcceptEMFILEBacksOff(t *testing.T) {
	var logs syncbuf.Buffer
	inner := &emfileListener{n: 5}
	l := New(inner, 4, "test listener", slog.New(slog.NewTextHandler(&logs, nil)))
	var slept []time.Duration
	l.sleep = func(d time.Duration) { slept = append(slept, d) }
	c, err := l.Accept()
	if err != nil || c == nil {
		t.Fatalf("accept: %v", err)
	}
	_ = c.Close()
	if inner.calls != 6 || len(slept) != 5 {
		t.Fatalf("%d accepts, %d pauses", inner.calls, len(slept))
	}
	for i := 1; i < len(slept); i++ {
		if slept[i] <= slept[i-1] {
			t.Fatalf("pauses do not grow: %v", slept)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
