package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oxdgo/oxd/internal/connlimit"
	"github.com/oxdgo/oxd/internal/opsserver"
	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/oxdserver"
)

// serviceName is the default OpenTelemetry service.name (OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES replace it).
const serviceName = "oxd-server"

// newResource describes the process for traces and metrics.
func newResource() *resource.Resource { return opsserver.NewResource(serviceName) }

// getenv reads an environment variable (tests replace it).
var getenv = os.Getenv

// tracingWanted decides from the standard OTEL_* variables whether spans
// are exported over OTLP: OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
// turn it off; OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turn
// it on. Only OTLP over HTTP with protobuf (http/protobuf) is built in.
func tracingWanted() (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return false, nil
		}
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: this server exports traces over OTLP only (otlp or none)", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p := strings.TrimSpace(proto); p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: this server speaks OTLP http/protobuf only", p)
	}
	return true, nil
}

// startTracing returns the tracer provider that exports spans over OTLP,
// configured by the OTEL_* variables (endpoint, headers, timeout,
// compression, certificates, sampler), or nil when tracing is off.
func startTracing(ctx context.Context, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	on, err := tracingWanted()
	if err != nil || !on {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// readinessProbe is one check of /readyz.
type readinessProbe = opsserver.Probe

// newMetricsServer listens on addr for /metrics, /healthz and /readyz.
// Unless anyInterface, the address bound must be a loopback address
// (checked at the bind, after name resolution). Its connections are
// bounded (opsserver.DefaultMaxConns) like the HTTPS listener's
// (slow-loris): the process's file descriptors also serve the oxd
// listeners.
func newMetricsServer(addr string, res *resource.Resource, log *slog.Logger, anyInterface bool) (*opsserver.Server, error) {
	return opsserver.New(addr, res, log, opsserver.Options{InsecureAnyInterface: anyInterface})
}

// storeProbe reads a site id that does not exist: the store answers "not
// found" when it is reachable.
func storeProbe(store oxdserver.Store) readinessProbe {
	return readinessProbe{Name: "store", Check: func(ctx context.Context) error {
		_, err := store.GetSite(ctx, "oxd-server-readiness-probe")
		if err == nil || errors.Is(err, oxdserver.ErrNotFound) {
			return nil
		}
		return err
	}}
}

// dialAddr is where this process reaches its own listener: a listener on
// every interface is reached on loopback.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// socketProbe connects to the socket listener. Connecting needs a file
// descriptor in this process, so a server out of descriptors (which could
// not serve the connection either) is not ready.
func socketProbe(a net.Addr) readinessProbe {
	addr := dialAddr(a)
	return readinessProbe{Name: "socket", Check: func(ctx context.Context) error {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}}
}

// httpsProbe asks the HTTPS extension's /health-check over TLS, accepting
// only the server's own certificate.
func httpsProbe(a net.Addr, cert tls.Certificate) readinessProbe {
	addr := dialAddr(a)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The certificate is this process's own (its names need not
			// include the loopback address): it is compared byte for byte.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || len(cert.Certificate) == 0 ||
					string(cs.PeerCertificates[0].Raw) != string(cert.Certificate[0]) {
					return errors.New("not this server's certificate")
				}
				return nil
			},
		},
		DisableKeepAlives: true,
	}
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return readinessProbe{Name: "https", Check: func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/health-check", nil)
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<10))
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("health-check answered %d", res.StatusCode)
		}
		return nil
	}}
}

// observeHTTPSConns reports the HTTPS listener's open connections under the
// engine's connections instrument.
func observeHTTPSConns(mp metric.MeterProvider, l *connlimit.Listener) (metric.Registration, error) {
	m := telemetry.Meter(mp)
	conns, err := m.Int64ObservableUpDownCounter(oxdserver.MetricConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Open connections, by listener."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(telemetry.KeyListener.String("https"))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(conns, int64(l.Open()), attrs)
		return nil
	}, conns)
}
