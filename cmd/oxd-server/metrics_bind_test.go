package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/oxdgo/oxd/internal/hostutil"
)

// TestMetricsListenerBindsOnlyLoopback: the metrics listener checks the
// address it binds, not only the flag's text: a host name resolving off
// loopback (here: literal addresses standing for what a name may resolve
// to, IPv4, IPv6 and IPv4-mapped) is refused before the bind unless
// -insecure-metrics-any-interface; loopback addresses and localhost bind.
func TestMetricsListenerBindsOnlyLoopback(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, a := range []string{"192.0.2.1:0", "[2001:db8::1]:0", "[::ffff:192.0.2.1]:0", "198.51.100.7:0"} {
		_, err := newMetricsServer(a, resource.Empty(), log, false)
		if !errors.Is(err, hostutil.ErrNotLoopback) {
			t.Errorf("%s: %v, want a refusal before the bind", a, err)
		}
		// The insecure switch lets the bind be tried (it fails: the
		// address is not this machine's).
		if _, err := newMetricsServer(a, resource.Empty(), log, true); err == nil || errors.Is(err, hostutil.ErrNotLoopback) {
			t.Errorf("%s with the insecure switch: %v", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		m, err := newMetricsServer(a, resource.Empty(), log, false)
		if a == "[::1]:0" && err != nil && !errors.Is(err, hostutil.ErrNotLoopback) {
			continue // no IPv6 loopback here
		}
		if err != nil {
			t.Errorf("%s: %v", a, err)
			continue
		}
		if ip := m.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("%s bound %s", a, ip)
		}
		_ = m.Shutdown(t.Context())
	}
}
