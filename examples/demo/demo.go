package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/oxdgo/oxd/examples/internal/devenv"
	"github.com/oxdgo/oxd/internal/devcert"
	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/opsserver"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest/devop"
)

// demo is the running application: its listener and server, the oxd client
// (over the in-process engine, a socket or the HTTPS extension), the
// development OP when no real OP is given, and the app with its pages.
type demo struct {
	opts    *options
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	baseURL string
	cert    *x509.Certificate // the generated certificate; nil with -tls-cert

	devOP    *devop.OP
	devOPSrv *http.Server
	devOPLn  net.Listener

	engine  *oxdserver.Engine
	client  *oxdclient.Client
	oxdDesc string // "in-process engine", "socket …", "https …"
	opHost  string // the OP new registrations use by default

	app *app

	// ops serves /metrics, /healthz and /readyz (-metrics-listen); nil
	// without it.
	ops *opsserver.Server
}

// meterProvider is the provider of every layer's metrics: the one /metrics
// exposes, or nil (the global provider, a no-op) without -metrics-listen.
func (d *demo) meterProvider() metric.MeterProvider {
	if d.ops == nil {
		return nil
	}
	return d.ops.MeterProvider
}

// serviceName is the demo's OpenTelemetry service.name (OTEL_SERVICE_NAME
// replaces it).
const serviceName = "oxd-demo"

// start builds everything and listens, but does not serve yet.
func start(ctx context.Context, o *options, logOut io.Writer) (_ *demo, err error) {
	level := slog.LevelWarn
	if o.Verbose {
		level = slog.LevelDebug
	}
	d := &demo{opts: o, log: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	// The application's listener first: its address is part of the
	// redirect URIs.
	d.ln, err = net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	host, port, _ := net.SplitHostPort(d.ln.Addr().String())
	urlHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		urlHost = "127.0.0.1"
	}
	if reqHost, _, err := net.SplitHostPort(o.Addr); err == nil && reqHost == "localhost" {
		urlHost = "localhost"
	}
	d.baseURL = "https://" + net.JoinHostPort(urlHost, port)

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading -tls-cert/-tls-key: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{c}
	} else {
		c, err := devcert.Generate(devcert.Options{CommonName: devenv.CertName}, host)
		if err != nil {
			return nil, err
		}
		tlsCfg.Certificates = []tls.Certificate{c.TLS}
		d.cert = c.Leaf
	}

	if o.MetricsListen != "" {
		d.ops, err = opsserver.New(o.MetricsListen, opsserver.NewResource(serviceName), d.log,
			opsserver.Options{InsecureAnyInterface: o.InsecureMetricsAnyInterface})
		if err != nil {
			return nil, err
		}
	}

	// The OP.
	if o.OP != "" {
		d.opHost = strings.TrimRight(o.OP, "/")
	} else {
		if err := d.startDevOP(); err != nil {
			return nil, err
		}
		d.opHost = d.devOP.Issuer()
	}

	// oxd.
	switch {
	case o.Oxd != "":
		t, err := oxdclient.NewSocket(o.Oxd, oxdclient.SocketConfig{})
		if err != nil {
			return nil, fmt.Errorf("-oxd: %w", err)
		}
		d.client = oxdclient.New(t, oxdclient.Config{Logger: d.log, MeterProvider: d.meterProvider()})
		d.oxdDesc = "oxd-server socket " + o.Oxd
	case o.OxdHTTPS != "":
		hc, err := httpsClient(o.OxdHTTPSCA)
		if err != nil {
			return nil, err
		}
		t, err := oxdclient.NewHTTPS(o.OxdHTTPS, oxdclient.HTTPSConfig{HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("-oxd-https: %w", err)
		}
		d.client = oxdclient.New(t, oxdclient.Config{Logger: d.log, MeterProvider: d.meterProvider()})
		d.oxdDesc = "oxd-https-extension " + t.BaseURL()
	default:
		// The development OP speaks plain http on loopback; a real OP
		// (-op) must use https.
		d.engine, err = oxdserver.New(oxdserver.Config{Logger: d.log, InsecureAllowLoopbackHTTP: o.OP == "", MeterProvider: d.meterProvider()})
		if err != nil {
			return nil, fmt.Errorf("starting the oxd engine: %w", err)
		}
		d.client = oxdclient.New(d.engine, oxdclient.Config{Logger: d.log, MeterProvider: d.meterProvider()})
		d.oxdDesc = "in-process engine"
	}

	d.app, err = newApp(ctx, d)
	if err != nil {
		return nil, err
	}
	d.srv = &http.Server{
		Handler:           d.app,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	return d, nil
}

// startDevOP starts the development OP on its own loopback listener over
// plain HTTP, so that any oxd (the in-process engine or an oxd-server
// started next to the demo) can reach it.
func (d *demo) startDevOP() error {
	host, _, err := net.SplitHostPort(d.opts.DevOPAddr)
	if err != nil {
		return fmt.Errorf("-dev-op-addr: %w", err)
	}
	if !hostutil.PlainHTTPStaysLocal(host) {
		return errors.New("-dev-op-addr must be a loopback address: the development OP accepts any demo user")
	}
	d.devOPLn, err = net.Listen("tcp", d.opts.DevOPAddr)
	if err != nil {
		return fmt.Errorf("development OP: listen on %s: %w", d.opts.DevOPAddr, err)
	}
	opCfg := devop.OPConfig{Logger: d.log, AccessTokenTTL: d.opts.DevOPAccessTokenTTL}
	if d.cert != nil {
		// The OP's back-channel logout requests reach the demo over TLS
		// with its development certificate.
		pool := x509.NewCertPool()
		pool.AddCert(d.cert)
		opCfg.LogoutHTTPClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	op, err := devop.NewOP("http://"+d.devOPLn.Addr().String(), opCfg)
	if err != nil {
		return fmt.Errorf("development OP: %w", err)
	}
	d.devOP = op
	d.devOPSrv = &http.Server{
		Handler:           op,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	go func() { _ = d.devOPSrv.Serve(d.devOPLn) }()
	return nil
}

// httpsClient is the HTTP client for the oxd-https-extension: TLS
// verification on, with the certificates of caFile trusted besides the
// system's.
func httpsClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil // the transport's default client
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("-oxd-https-ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-oxd-https-ca: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// printBanner tells the user where the demo is and how to sign in.
func (d *demo) printBanner(w io.Writer) {
	fmt.Fprintf(w, "oxd for Go demo: open %s\n", d.baseURL)
	if d.cert != nil {
		fmt.Fprintf(w, "  TLS:      self-signed certificate generated for this run; the browser warns once.\n")
		fmt.Fprintf(w, "            SHA-256 fingerprint %s\n", devcert.Fingerprint(d.cert.Raw))
	}
	fmt.Fprintf(w, "  oxd:      %s\n", d.oxdDesc)
	if d.devOP != nil {
		fmt.Fprintf(w, "  OP:       development OP at %s (in process; forgets everything when the demo stops)\n", d.devOP.Issuer())
		fmt.Fprintf(w, "  users:   ")
		for i, u := range devop.DemoUsers {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, " %s / %s", u.Username, u.Password)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "  OP:       %s\n", d.opHost)
	}
	fmt.Fprintf(w, "  settings: %s\n", d.opts.SettingsPath)
	if d.ops != nil {
		fmt.Fprintf(w, "  metrics:  http://%s/metrics (also /healthz, /readyz)\n", d.ops.Addr())
	}
	if host, _, err := net.SplitHostPort(d.ln.Addr().String()); err == nil {
		if !hostutil.PlainHTTPStaysLocal(host) {
			fmt.Fprintf(w, "  warning:  listening on %s: anyone who reaches it can change the settings; keep the demo on a loopback address\n", host)
		}
	}
	if msg := d.app.startupNote(); msg != "" {
		fmt.Fprintf(w, "  note:     %s\n", msg)
	}
	fmt.Fprintf(w, "Press Ctrl+C to stop.\n")
}

// Serve serves HTTPS until ctx ends, then shuts down gracefully.
func (d *demo) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- d.srv.ServeTLS(d.ln, "", "") }()
	if d.ops != nil {
		d.ops.Ready(nil) // ready once the application serves
		go func() {
			if err := d.ops.Serve(); err != nil {
				errc <- err
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.ops != nil {
		d.ops.Stopping()
	}
	err := d.srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Close releases everything start acquired.
func (d *demo) Close() {
	if d.srv != nil {
		_ = d.srv.Close()
	} else if d.ln != nil {
		_ = d.ln.Close()
	}
	if d.app != nil {
		d.app.close()
	}
	if d.client != nil {
		_ = d.client.Close() // closes the engine too when it is the transport
	}
	if d.devOPSrv != nil {
		_ = d.devOPSrv.Close()
	}
	if d.ops != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.ops.Shutdown(ctx)
		cancel()
	}
	if d.devOP != nil {
		d.devOP.Close()
	}
}
