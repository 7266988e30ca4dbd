// Package connlimittest checks from outside that an HTTP listener bounds
// its connections (connlimit.Listener): for the tests of the programs that
// serve one.
package connlimittest

import (
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// CheckSlowLoris opens 4*max connections to the plain HTTP listener addr
// that send nothing and fails t if the server holds more than max of them
// open, or if GET path is not answered 200 once the stalled connections
// are older than connlimit.StalledGrace.
func CheckSlowLoris(t testing.TB, addr, path string, max int) {
	t.Helper()
	n := 4 * max
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Count the connections the server still holds until at most max are:
	// the server accepts (and closes) them in its own time, which a loaded
	// machine delays, but the count must end well before an HTTP server's
	// header timeout (5 s or more), which closes every stalled connection,
	// capped or not.
	held := conns
	for deadline := time.Now().Add(3 * time.Second); ; {
		held = stillOpen(held, 200*time.Millisecond)
		if len(held) <= max {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stalled connections held open after 3s, cap %d", len(held), max)
		}
	}
	// A request gets through once a stalled connection is old enough to
	// make room.
	c := &http.Client{Timeout: 10 * time.Second}
	var lastErr error
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		res, err := c.Get("http://" + addr + path)
		if err != nil {
			lastErr = err
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s after the flood: %d", path, res.StatusCode)
		}
		return
	}
	t.Fatalf("GET %s after the flood: %v", path, lastErr)
}

// stillOpen returns the connections of conns that the peer has not closed:
// a read on a closed one ends at once, on an open one it times out after
// wait.
func stillOpen(conns []net.Conn, wait time.Duration) []net.Conn {
	open := make([]bool, len(conns))
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			open[i] = errors.Is(err, os.ErrDeadlineExceeded)
		})
	}
	wg.Wait()
	var out []net.Conn
	for i, c := range conns {
		if open[i] {
			out = append(out, c)
		}
	}
	return out
}
