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
	"sync/atomic"
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
	time.Sleep(stalledGrace + 200*time.Millisecond)
	// Count the connections the server still holds: a read on a closed
	// one ends at once, on an open one it times out.
	var open atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(500 * time.Millisecond)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				open.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := open.Load(); got > metricsMaxConns {
		t.Errorf("%d stalled connections held open, cap %d", got, metricsMaxConns)
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("a scrape after the flood: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the flood: %d", res.StatusCode)
	}
}
