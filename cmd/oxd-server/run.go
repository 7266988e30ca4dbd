package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oxdgo/oxd/internal/connlimit"
	"github.com/oxdgo/oxd/internal/opsserver"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest/devop"
)

// Defaults of the HTTPS listener.
const (
	defaultHTTPSMaxConns    = 256
	defaultHTTPSIdleTimeout = time.Minute
	// httpsMaxStreams bounds the concurrent HTTP/2 streams (commands) of
	// one HTTPS connection. Go's default (250) would let -https-max-conns
	// connections run 250 times as many commands at once as HTTP/1.1, each
	// possibly holding an outbound connection to an OP, and exhaust file
	// descriptors (the socket listener included).
	httpsMaxStreams = 4
)

type options struct {
	listen          string
	httpsListen     string
	tlsCert, tlsKey string
	tlsCertOut      string
	store           string
	redisPrefix     string
	noProtection    bool
	opHosts         stringList
	loopbackHTTP    bool
	devOP           bool
	devOPAddr       string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration

	metricsListen       string
	metricsAnyInterface bool

	maxConns, maxConnsPerSource int
	idleTimeout, readTimeout    time.Duration
	httpsMaxConns               int
	httpsIdleTimeout            time.Duration
	devOPAllowUnsafe            bool
	operatorTokenFile           string
	registrationsPerMinute      int
	protectionCacheTTL          time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("oxd-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", oxdserver.DefaultSocketAddr, `socket protocol address ("" disables it)`)
	fs.StringVar(&o.httpsListen, "https-listen", "", `HTTPS-extension address, e.g. 127.0.0.1:8443 ("" disables it)`)
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) for the HTTPS extension; default: generate a self-signed one")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for -tls-cert")
	fs.StringVar(&o.tlsCertOut, "tls-cert-out", "", "write the generated self-signed certificate (PEM) to this file")
	fs.StringVar(&o.store, "store", "memory", "storage: memory, file:<path> or redis://[user:password@]host:port/db")
	fs.StringVar(&o.redisPrefix, "redis-prefix", "oxd:", "prefix of every Redis key (with -store redis://…)")
	fs.BoolVar(&o.noProtection, "insecure-no-protection", false, "do not require protection access tokens on any listener (3.1.4's shipped default): anyone who reaches a listener can read every site's client secret, use, change and remove every site")
	fs.Var(&o.opHosts, "op-host", "allow this OP (host, host:port or https origin); repeat for several; none: any https OP")
	fs.BoolVar(&o.loopbackHTTP, "insecure-loopback-http", false, "allow plain-http OPs on loopback addresses (development OPs); on with -dev-op")
	fs.BoolVar(&o.devOP, "dev-op", false, "start the development OP on a loopback port and print its issuer")
	fs.StringVar(&o.devOPAddr, "dev-op-addr", "127.0.0.1:0", "with -dev-op: loopback host:port of the development OP (a fixed port keeps its issuer across restarts)")
	fs.BoolVar(&o.devOPAllowUnsafe, "dev-op-allow-unsafe", false, "allow -dev-op with a persistent store or a listener off loopback")
	fs.StringVar(&o.operatorTokenFile, "operator-token-file", "", "file holding the operator token that setup_client and register_site need (parameter operator_token); without it they are open on loopback listeners and refused on others")
	fs.IntVar(&o.registrationsPerMinute, "registrations-per-minute", oxdserver.DefaultRegistrationsPerMinute, "most setup_client and register_site commands per minute (bursts of as many)")
	fs.DurationVar(&o.protectionCacheTTL, "protection-cache-ttl", oxdserver.DefaultProtectionCacheTTL, "reuse a positive protection token check for that long (never past the token's exp); a token revoked at the OP keeps working that long; 0: introspect every command")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json (one JSON object a line)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", `serve /metrics (Prometheus), /healthz and /readyz on this loopback address, e.g. 127.0.0.1:9464 ("" disables it)`)
	fs.BoolVar(&o.metricsAnyInterface, "insecure-metrics-any-interface", false, "allow -metrics-listen on an address that is not loopback: the endpoints have no authentication and tell anyone who reaches them the server's load, OP latency and error rates")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for commands in flight")
	fs.IntVar(&o.maxConns, "max-conns", oxdserver.DefaultMaxConns, "socket: most open connections; at the cap the longest idle one is closed")
	fs.IntVar(&o.maxConnsPerSource, "max-conns-per-source", oxdserver.DefaultMaxConnsPerSource, "socket: most open connections from one IP address")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", oxdserver.DefaultIdleTimeout, "socket: close a connection idle between commands for that long")
	fs.DurationVar(&o.readTimeout, "read-timeout", oxdserver.DefaultReadTimeout, "socket: longest time to receive one command frame")
	fs.IntVar(&o.httpsMaxConns, "https-max-conns", defaultHTTPSMaxConns, "HTTPS extension: most open connections; at the cap the longest idle one is closed")
	fs.DurationVar(&o.httpsIdleTimeout, "https-idle-timeout", defaultHTTPSIdleTimeout, "HTTPS extension: close a keep-alive connection idle for that long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.listen == "" && o.httpsListen == "" {
		return nil, errors.New("nothing to serve: both -listen and -https-listen are empty")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if o.tlsCertOut != "" && o.tlsCert != "" {
		return nil, errors.New("-tls-cert-out only applies to a generated certificate")
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, fmt.Errorf("-log-format %q: want text or json", o.logFormat)
	}
	if o.metricsListen != "" && !o.metricsAnyInterface && !onLoopback(o.metricsListen) {
		return nil, fmt.Errorf("-metrics-listen %s is not a loopback address: scrape through a local agent, or add -insecure-metrics-any-interface (the endpoints have no authentication)", o.metricsListen)
	}
	if o.shutdownTimeout <= 0 {
		return nil, errors.New("-shutdown-timeout must be positive")
	}
	if o.maxConns <= 0 || o.maxConnsPerSource <= 0 || o.httpsMaxConns <= 0 {
		return nil, errors.New("-max-conns, -max-conns-per-source and -https-max-conns must be positive")
	}
	if o.idleTimeout <= 0 || o.readTimeout <= 0 || o.httpsIdleTimeout <= 0 {
		return nil, errors.New("-idle-timeout, -read-timeout and -https-idle-timeout must be positive")
	}
	devOPAddrSet := false
	fs.Visit(func(f *flag.Flag) { devOPAddrSet = devOPAddrSet || f.Name == "dev-op-addr" })
	if devOPAddrSet && !o.devOP {
		return nil, errors.New("-dev-op-addr needs -dev-op")
	}
	if o.devOP && !onLoopback(o.devOPAddr) {
		// Even -dev-op-allow-unsafe does not put published passwords on
		// the network.
		return nil, fmt.Errorf("-dev-op-addr %q: want a loopback host:port such as 127.0.0.1:8090", o.devOPAddr)
	}
	if o.devOP && !o.devOPAllowUnsafe {
		if o.store != "" && o.store != "memory" {
			return nil, errors.New("-dev-op (demo users with published passwords, anonymous registration) refuses a persistent -store; add -dev-op-allow-unsafe to insist")
		}
		for _, a := range []string{o.listen, o.httpsListen} {
			if a != "" && !onLoopback(a) {
				return nil, fmt.Errorf("-dev-op refuses the listener %s, which is not on a loopback address; add -dev-op-allow-unsafe to insist", a)
			}
		}
	}
	return o, nil
}

// exposureWarnings logs what the options expose. protected is the
// engine's effective setting (Engine.Protected), not the flag's text: a
// warning follows what the listeners do.
func exposureWarnings(o *options, protected bool, log *slog.Logger) {
	if protected {
		return
	}
	for _, a := range []string{o.listen, o.httpsListen} {
		if a != "" && !onLoopback(a) {
			log.Warn("a listener is not on a loopback address and protection is OFF: anyone on the network can read and change every site", "addr", a)
		}
	}
	log.Warn("protection access tokens are OFF (-insecure-no-protection): anyone who reaches a listener can list every site, read its client secret (get_rp), use, change and remove it; use only for a trusted single-tenant setup on loopback")
}

// onLoopback reports whether a listen address is on a loopback address
// (127.0.0.0/8, ::1, localhost). An empty host (every interface) is not.
func onLoopback(addr string) bool { return opsserver.OnLoopback(addr) }

// requireOperator reports whether a listener needs the operator token for
// setup_client and register_site: unless both the flag's address and the
// address bound are loopback (a host name such as localhost may resolve
// elsewhere).
func requireOperator(flag string, bound net.Addr) bool {
	a, ok := bound.(*net.TCPAddr)
	return !onLoopback(flag) || !ok || !a.IP.IsLoopback()
}

// startDevOP starts the development OP on addr (a loopback host:port,
// port 0 for any) over plain HTTP.
func startDevOP(addr string, log *slog.Logger) (*devop.OP, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	op, err := devop.NewOP("http://"+ln.Addr().String(), devop.OPConfig{Logger: log})
	if err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	srv := &http.Server{
		Handler:           op,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return op, func() {
		op.Close()
		_ = srv.Close()
		<-done
	}, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("invalid -log-level %q", s)
	}
	return l, nil
}

// run is the whole program; it returns the exit status: 0 after a graceful
// stop (ctx cancelled by SIGTERM/SIGINT), 1 on a failure or when the
// -shutdown-timeout deadline cut commands short, 2 on bad flags.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "oxd-server:", err)
		return 2
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "oxd-server:", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(stderr, hopts)
	if o.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(handler)
	if err := serve(ctx, o, log); err != nil {
		log.Error("oxd-server stopped", "err", err)
		return 1
	}
	log.Info("oxd-server stopped")
	return 0
}

// serve starts everything, waits for ctx or a failure, then stops.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	res := newResource()
	tp, err := startTracing(ctx, res)
	if err != nil {
		return err
	}
	if tp != nil {
		log.Info("exporting traces over OTLP (OTEL_* environment)")
		defer func() {
			// Flush the spans of the last commands.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if ferr := tp.Shutdown(fctx); ferr != nil {
				log.Warn("flushing traces failed", "err", ferr.Error())
			}
		}()
	}
	var ms *opsserver.Server
	if o.metricsListen != "" {
		ms, err = newMetricsServer(o.metricsListen, res, log, o.metricsAnyInterface)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ms.Shutdown(sctx)
		}()
	}
	store, storeDesc, err := openStore(ctx, o.store, o.redisPrefix)
	if err != nil {
		return err
	}
	var devOP *devop.OP
	if o.devOP {
		// Started first: its issuer joins a non-empty OP allow-list.
		var stopDevOP func()
		devOP, stopDevOP, err = startDevOP(o.devOPAddr, log.With("component", "dev-op"))
		if err != nil {
			_ = store.Close()
			return fmt.Errorf("development OP: %w", err)
		}
		defer stopDevOP()
		if len(o.opHosts) > 0 {
			o.opHosts = append(o.opHosts, devOP.Issuer())
		}
	}
	operatorToken := ""
	if o.operatorTokenFile != "" {
		b, err := os.ReadFile(o.operatorTokenFile)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			_ = store.Close()
			return errors.New("-operator-token-file: cannot read a non-empty token")
		}
		operatorToken = strings.TrimSpace(string(b))
	}
	protCacheTTL := o.protectionCacheTTL
	if protCacheTTL <= 0 {
		protCacheTTL = -1 // off
	}
	ecfg := oxdserver.Config{
		OperatorToken: operatorToken, RegistrationsPerMinute: o.registrationsPerMinute, ProtectionCacheTTL: protCacheTTL,
		Store: store, Logger: log, InsecureNoProtection: o.noProtection,
		OPHosts: o.opHosts, InsecureAllowLoopbackHTTP: o.loopbackHTTP || o.devOP,
	}
	if tp != nil {
		ecfg.TracerProvider = tp
	}
	if ms != nil {
		ecfg.MeterProvider = ms.MeterProvider
	}
	engine, err := oxdserver.New(ecfg)
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("engine: %w", err)
	}
	defer engine.Close() // closes the store
	log.Info("oxd engine ready", "store", storeDesc, "protection", engine.Protected())
	exposureWarnings(o, engine.Protected(), log)

	if devOP != nil {
		op := devOP
		users := make([]string, 0, len(devop.DemoUsers))
		for _, u := range devop.DemoUsers {
			users = append(users, u.Username)
		}
		log.Warn("DEVELOPMENT OP RUNNING (-dev-op): NOT FOR PRODUCTION. It registers any client anonymously and its demo users have published passwords",
			"issuer", op.Issuer(), "users", strings.Join(users, ","), "plain_http_loopback_ops", "allowed")
		log.Warn("The development OP keeps its clients and users' sessions in memory: after a restart it has forgotten them, and so has this server's memory store. "+
			"A site file an application wrote in a previous run is stale: delete it (or let oxdclient.EnsureSite re-register with oxdclient.ReRegisterOnMismatch()); "+
			"use a fixed -dev-op-addr so that the issuer stays the same",
			"issuer", op.Issuer(), "dev_op_addr", o.devOPAddr)
		log.Info("development OP listening", "issuer", op.Issuer())
	}

	var (
		sock    *oxdserver.SocketServer
		httpSrv *http.Server
		failed  = make(chan error, 3)
		wg      sync.WaitGroup
		probes  = []readinessProbe{storeProbe(store)}
	)
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("socket listener: %w", err)
		}
		sock = &oxdserver.SocketServer{Engine: engine, Logger: log, MaxConns: o.maxConns, MaxConnsPerSource: o.maxConnsPerSource,
			IdleTimeout: o.idleTimeout, ReadTimeout: o.readTimeout, RequireOperatorToken: requireOperator(o.listen, ln.Addr())}
		probes = append(probes, socketProbe(ln.Addr()))
		log.Info("oxd socket protocol listening", "addr", ln.Addr().String(), "protection", engine.Protected())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sock.Serve(ln); err != nil && !errors.Is(err, oxdserver.ErrServerClosed) {
				failed <- fmt.Errorf("socket listener: %w", err)
			}
		}()
	}
	if o.httpsListen != "" {
		cert, err := loadOrGenerateCert(o, log)
		if err != nil {
			stopSocket(sock, o.shutdownTimeout, log)
			return err
		}
		ln, err := net.Listen("tcp", o.httpsListen)
		if err != nil {
			stopSocket(sock, o.shutdownTimeout, log)
			return fmt.Errorf("HTTPS listener: %w", err)
		}
		capped := connlimit.New(ln, o.httpsMaxConns, "HTTPS extension", log)
		probes = append(probes, httpsProbe(ln.Addr(), cert))
		if ms != nil {
			reg, err := observeHTTPSConns(ms.MeterProvider, capped)
			if err != nil {
				log.Warn("the HTTPS connections metric is not available", "err", err.Error())
			} else {
				defer func() { _ = reg.Unregister() }()
			}
		}
		httpSrv = &http.Server{
			ConnState:         capped.ConnState,
			Handler:           oxdserver.NewHTTPSHandler(engine, oxdserver.HTTPSConfig{Logger: log, RequireOperatorToken: requireOperator(o.httpsListen, ln.Addr())}),
			TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      2 * time.Minute,
			IdleTimeout:       o.httpsIdleTimeout,
			MaxHeaderBytes:    64 << 10,
			HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: httpsMaxStreams},
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		log.Info("oxd HTTPS extension listening", "url", "https://"+ln.Addr().String(), "protection", engine.Protected())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.ServeTLS(capped, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("HTTPS listener: %w", err)
			}
		}()
	}

	if ms != nil {
		ms.Ready(probes)
		log.Info("metrics and health listening", "url", "http://"+ms.Addr().String()+"/metrics")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ms.Serve(); err != nil {
				failed <- err
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: finishing commands in flight", "timeout", o.shutdownTimeout)
	case runErr = <-failed:
	}

	if ms != nil {
		ms.Stopping() // /readyz answers 503 from now on
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	var (
		swg sync.WaitGroup
		cut atomic.Bool // the deadline cut commands short
	)
	if httpSrv != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := httpSrv.Shutdown(sctx); err != nil {
				log.Warn("HTTPS extension: commands still running at the shutdown deadline; closing", "err", err)
				_ = httpSrv.Close()
				cut.Store(true)
			}
		}()
	}
	if sock != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if !stopSocketCtx(sctx, sock, log) {
				cut.Store(true)
			}
		}()
	}
	swg.Wait()
	if ms != nil {
		_ = ms.StopServing(sctx)
	}
	wg.Wait()
	if runErr == nil && cut.Load() {
		return errCutShort
	}
	return runErr
}

func stopSocket(s *oxdserver.SocketServer, timeout time.Duration, log *slog.Logger) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopSocketCtx(ctx, s, log)
}

// stopSocketCtx stops s gracefully; false when ctx ended first and
// commands were cut short.
func stopSocketCtx(ctx context.Context, s *oxdserver.SocketServer, log *slog.Logger) bool {
	if err := s.Shutdown(ctx); err != nil {
		log.Warn("socket: commands still running at the shutdown deadline; closing", "err", err)
		_ = s.Close()
		return false
	}
	return true
}

// errCutShort: the graceful stop's deadline (-shutdown-timeout) cut
// commands in flight short; the exit status is then 1.
var errCutShort = errors.New("commands in flight were cut short at the -shutdown-timeout deadline")
