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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/sync/singleflight"

	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/oxdserver"
)

// serviceName is the default OpenTelemetry service.name (OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES replace it).
const serviceName = "oxd-server"

// newResource describes the process for traces and metrics.
func newResource() *resource.Resource {
	base := resource.NewSchemaless(attribute.String("service.name", serviceName))
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins.
	r, err := resource.Merge(base, resource.Environment())
	if err != nil {
		return base
	}
	return r
}

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

// metricsMaxConns bounds the metrics listener's connections (scrapers
// and probes need a few).
const metricsMaxConns = 32

// metricsServer serves /metrics (Prometheus), /healthz and /readyz.
type metricsServer struct {
	mp       *sdkmetric.MeterProvider
	reg      *prometheus.Registry
	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger
	stopping atomic.Bool
	// probes is set once the listeners are up; nil means not ready.
	probes atomic.Pointer[[]readinessProbe]
	// ready makes concurrent /readyz requests share one probe run.
	ready singleflight.Group
}

type readinessProbe struct {
	name  string
	check func(ctx context.Context) error
}

// newMetricsServer listens on addr and prepares the meter provider whose
// metrics /metrics exposes. Unless anyInterface, the address bound must be
// a loopback address (checked at the bind, after name resolution: a host
// name resolving elsewhere is refused).
func newMetricsServer(addr string, res *resource.Resource, log *slog.Logger, anyInterface bool) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var lc net.ListenConfig
	if !anyInterface {
		lc.Control = hostutil.LoopbackOnly
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	// Bounded like the HTTPS listener (slow-loris): the process's file
	// descriptors also serve the oxd listeners.
	capped := newCapListener(ln, metricsMaxConns, log)
	capped.what = "metrics listener"
	m := &metricsServer{
		mp:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res)),
		reg: reg, ln: capped, log: log,
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Timeout: 10 * time.Second, MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", m.readyz)
	m.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         capped.connState,
	}
	return m, nil
}

func (m *metricsServer) serve() error {
	if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// readinessTimeout bounds the probes of one /readyz request.
const readinessTimeout = 2 * time.Second

// readyz answers 200 when the store answers and every listener accepts
// and answers a connection; 503 with the failed checks' names otherwise
// (also while starting and stopping).
func (m *metricsServer) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	probes := m.probes.Load()
	switch {
	case m.stopping.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "stopping\n")
		return
	case probes == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "starting\n")
		return
	}
	// One probe run at a time, shared by the requests that arrive during
	// it: each run opens connections to the listeners from loopback, and
	// the endpoint has no authentication. The run is detached from the
	// first request (bounded by readinessTimeout).
	v, _, _ := m.ready.Do("readyz", func() (any, error) { return m.runProbes(*probes), nil })
	failed, _ := v.([]string)
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+strings.Join(failed, ", ")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// runProbes runs every probe and returns the names of those that failed.
func (m *metricsServer) runProbes(probes []readinessProbe) []string {
	ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
	defer cancel()
	var failed []string
	for _, p := range probes {
		if err := p.check(ctx); err != nil {
			failed = append(failed, p.name)
			m.log.Debug("readiness check failed", "check", p.name, "err", err)
		}
	}
	return failed
}

// storeProbe reads a site id that does not exist: the store answers "not
// found" when it is reachable.
func storeProbe(store oxdserver.Store) readinessProbe {
	return readinessProbe{name: "store", check: func(ctx context.Context) error {
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
	return readinessProbe{name: "socket", check: func(ctx context.Context) error {
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
	return readinessProbe{name: "https", check: func(ctx context.Context) error {
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
func observeHTTPSConns(mp metric.MeterProvider, l *capListener) (metric.Registration, error) {
	m := telemetry.Meter(mp)
	conns, err := m.Int64ObservableUpDownCounter(oxdserver.MetricConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Open connections, by listener."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(telemetry.KeyListener.String("https"))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(conns, int64(l.open()), attrs)
		return nil
	}, conns)
}

// shutdown stops serving (closing the listener also when serve never
// ran) and shuts the meter provider down.
func (m *metricsServer) shutdown(ctx context.Context) error {
	err := m.srv.Shutdown(ctx)
	if cerr := m.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return errors.Join(err, m.mp.Shutdown(ctx))
}
