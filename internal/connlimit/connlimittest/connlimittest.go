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
	"sync/atomic"
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
	// Count the connections the server still holds: a read on a closed
	// one ends at once, on an open one it times out.
	var open atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(500 * time.Millisecond)
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	if got := open.Load(); got > int64(max) {
		t.Errorf("%d stalled connections held open, cap %d", got, max)
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
