// Package opsserver is the operations listener of the project's programs
// (cmd/oxd-server and the demo application): /metrics in the Prometheus
// text format through the OpenTelemetry Prometheus exporter, /healthz
// (process up) and /readyz (the program's readiness probes).
//
// The endpoints have no authentication: programs listen on a loopback
// address unless the operator insists with an Insecure… switch
// ([OnLoopback] tells which addresses are loopback).
package opsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/oxdgo/oxd/internal/connlimit"
	"github.com/oxdgo/oxd/internal/hostutil"
)

// OnLoopback reports whether addr (host:port) stays on this machine.
func OnLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && hostutil.PlainHTTPStaysLocal(host)
}

// NewResource describes the process for traces and metrics: service.name
// is serviceName unless the environment (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) says otherwise.
func NewResource(serviceName string) *resource.Resource {
	base := resource.NewSchemaless(attribute.String("service.name", serviceName))
	r, err := resource.Merge(base, resource.Environment())
	if err != nil {
		return base
	}
	return r
}

// Probe is one readiness check of /readyz: Name is shown when it fails
// (never the error, which is logged at debug level).
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// ReadinessTimeout bounds the probes of one /readyz request.
const ReadinessTimeout = 2 * time.Second

// Server serves /metrics, /healthz and /readyz on its own listener.
type Server struct {
	// MeterProvider is the provider whose metrics /metrics exposes: give
	// it to every layer of the program (engine, client, middleware).
	MeterProvider *sdkmetric.MeterProvider

	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger
	stopping atomic.Bool
	// probes is set once the program is up; nil means not ready.
	probes atomic.Pointer[[]Probe]
	// ready makes concurrent /readyz requests share one probe run.
	ready singleflight.Group
}

// Options of [New]. The zero value is the secure default.
type Options struct {
	// InsecureAnyInterface lets the listener bind an address off loopback.
	// By default the address bound, after name resolution, must be a
	// loopback address (a host name resolving elsewhere is refused with
	// hostutil.ErrNotLoopback): the endpoints have no authentication.
	InsecureAnyInterface bool
	// MaxConns bounds the listener's open connections (default
	// DefaultMaxConns): each holds a file descriptor of the process, which
	// also serves the program's own listeners. At the cap a connection
	// stalled before its first request, else the longest idle one, is
	// closed to make room (connlimit.Listener).
	MaxConns int
}

// DefaultMaxConns is the default of Options.MaxConns: scrapers and probes
// need a few connections.
const DefaultMaxConns = 32

// New listens on addr and prepares the meter provider whose metrics
// /metrics exposes (with the Go runtime and process collectors). Unless
// opt.InsecureAnyInterface, the address bound must be a loopback address.
func New(addr string, res *resource.Resource, log *slog.Logger, opt Options) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var lc net.ListenConfig
	if !opt.InsecureAnyInterface {
		lc.Control = hostutil.LoopbackOnly
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	maxConns := opt.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	capped := connlimit.New(ln, maxConns, "metrics listener", log)
	ln = capped
	s := &Server{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res)),
		ln:            ln, log: log,
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Timeout: 10 * time.Second, MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         capped.ConnState,
	}
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready makes /readyz run probes (an empty list: always ready). Until it
// is called /readyz answers 503 "starting".
func (s *Server) Ready(probes []Probe) {
	p := append([]Probe(nil), probes...)
	s.probes.Store(&p)
}

// Stopping makes /readyz answer 503 "stopping" from now on.
func (s *Server) Stopping() { s.stopping.Store(true) }

// Serve serves until Shutdown or Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// StopServing stops serving gracefully (the meter provider stays up).
func (s *Server) StopServing(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// readyz answers 200 when every probe passes; 503 with the failed probes'
// names otherwise (also while starting and stopping).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	probes := s.probes.Load()
	switch {
	case s.stopping.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "stopping\n")
		return
	case probes == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "starting\n")
		return
	}
	// One probe run at a time, shared by the requests that arrive during
	// it: a run may open connections to the program's own listeners (from
	// loopback, where they count against limits every local application
	// shares), and the endpoint has no authentication. The run is detached
	// from the first request and bounded by ReadinessTimeout.
	v, _, _ := s.ready.Do("readyz", func() (any, error) { return s.runProbes(*probes), nil })
	failed, _ := v.([]string)
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+strings.Join(failed, ", ")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// runProbes runs every probe and returns the names of those that failed.
func (s *Server) runProbes(probes []Probe) []string {
	ctx, cancel := context.WithTimeout(context.Background(), ReadinessTimeout)
	defer cancel()
	var failed []string
	for _, p := range probes {
		if err := p.Check(ctx); err != nil {
			failed = append(failed, p.Name)
			s.log.Debug("readiness check failed", "check", p.Name, "err", err)
		}
	}
	return failed
}

// Shutdown stops serving (closing the listener also when Serve never
// ran) and shuts the meter provider down.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return errors.Join(err, s.MeterProvider.Shutdown(ctx))
}
