package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/oxdgo/oxd/internal/opsserver"
)

// startMetricsServer serves a metrics server on a loopback port until
// the test ends.
func startMetricsServer(t *testing.T) *opsserver.Server {
	t.Helper()
	m, err := newMetricsServer("127.0.0.1:0", resource.Empty(), slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	})
	return m
}

// TestMetricsListenerSlowLoris: connections to the metrics listener that
// send nothing cannot pile up (each holds a file descriptor of the process
// that serves the oxd listeners too): beyond metricsMaxConns they are
// closed, and a scrape still gets through once the stalled ones are older
// than the grace.
func TestMetricsListenerSlowLoris(t *testing.T) {
	m := startMetricsServer(t)
	addr := m.Addr().String()
	const n = 4 * metricsMaxConns
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Count the connections the server still holds until at most the cap
	// are: a read on a closed one ends at once, on an open one it times
	// out. The server accepts (and closes) them in its own time, but the
	// count must end well before its header timeout (5 s), which closes
	// every stalled connection, capped or not.
	held := conns
	for deadline := time.Now().Add(3 * time.Second); ; {
		held = stillOpen(held, 200*time.Millisecond)
		if len(held) <= metricsMaxConns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stalled connections held open after 3s, cap %d", len(held), metricsMaxConns)
		}
	}
	// Every held connection was admitted before the count above: once the
	// grace has passed they are all stalled for longer than it.
	time.Sleep(stalledGrace + 10*time.Millisecond)
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("a scrape after the flood: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the flood: %d", res.StatusCode)
	}
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
