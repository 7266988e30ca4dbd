package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/oxdgo/oxd/internal/connlimit/connlimittest"
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
// that serves the oxd listeners too): beyond opsserver.DefaultMaxConns
// they are closed, and a scrape still gets through.
func TestMetricsListenerSlowLoris(t *testing.T) {
	m := startMetricsServer(t)
	connlimittest.CheckSlowLoris(t, m.Addr().String(), "/healthz", opsserver.DefaultMaxConns)
}
