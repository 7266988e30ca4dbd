// Command oxd-server is a Go drop-in for Gluu oxd-server 3.1.x: it serves
// the oxd socket protocol (default 127.0.0.1:8099) and the
// oxd-https-extension protocol from the oxdserver engine, which performs
// OpenID Connect and UMA 2.0 against any OP.
//
// Usage:
//
//	oxd-server [flags]
//
// Every flag, its default and the behaviours changed from oxd-server 3.1.4
// for safety are listed in the README (section "The drop-in server") and
// by oxd-server -h. In short: protection access tokens are required on
// every listener unless -insecure-no-protection; OPs must use https
// (-insecure-loopback-http or -dev-op for a loopback development OP) and
// may be restricted with -op-host; both listeners cap their connections
// and close the longest idle one first.
//
// For development, -dev-op starts a development OP on loopback, and
// -dev-op-addr 127.0.0.1:8090 keeps its issuer the same across restarts.
// It forgets its clients and sessions on every restart (and the default
// memory store forgets the sites): an application's site file from a
// previous run is stale, and oxdclient.EnsureSite says so, or registers
// the site again with oxdclient.ReRegisterOnMismatch().
//
// Logs go to stderr (log/slog text, or JSON with -log-format json). They
// never contain parameters, answers, tokens or secrets. -metrics-listen
// 127.0.0.1:PORT serves /metrics (Prometheus), /healthz and /readyz; spans
// are exported over OTLP/HTTP when the standard OTEL_* environment asks for
// it (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER=otlp). SIGTERM or
// SIGINT stops both listeners gracefully (and flushes the spans); the exit
// status is then 0, or 1 when -shutdown-timeout cut commands short.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/oxdgo/oxd/internal/pprofhook" // profiles for the benchmarks, with -tags oxdprofile only
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
