// Command demo is the demo application of oxd for Go, the counterpart of
// oxd-node-demo: a settings page that registers the application with oxd
// (setup_client, update_site, remove_site), sign-in through the OP, a
// user-info page, sign-out, and a UMA page that walks through a protected
// resource, its 401 challenge, obtaining an RPT (with claims gathering when
// the AS needs it) and access granted.
//
// With no flags it needs nothing else: it starts the development OP of
// package oxdtest/devop and the oxd engine of package oxdserver in
// process, and serves the application over HTTPS on a loopback port with a
// self-signed certificate generated at start:
//
//	go run ./examples/demo
//
// Flags (each also read from the environment variable in brackets):
//
//	-addr host:port      where the application listens [OXD_DEMO_ADDR] (127.0.0.1:5053)
//	-oxd host:port       a running oxd-server's socket instead of the in-process engine [OXD_DEMO_OXD]
//	-oxd-https URL       an oxd-https-extension instead of the in-process engine [OXD_DEMO_OXD_HTTPS]
//	-oxd-https-ca file   PEM certificates to trust for -oxd-https [OXD_DEMO_OXD_HTTPS_CA]
//	-op URL              a real OP's issuer instead of the development OP [OXD_DEMO_OP]
//	-settings file       the settings file [OXD_DEMO_SETTINGS]
//	-tls-cert, -tls-key  serve with this certificate instead of a self-signed one [OXD_DEMO_TLS_CERT, OXD_DEMO_TLS_KEY]
//	-dev-op-addr         where the development OP listens [OXD_DEMO_DEV_OP_ADDR] (127.0.0.1:0)
//	-dev-op-access-token-ttl  lifetime of the development OP's access tokens [OXD_DEMO_DEV_OP_ACCESS_TOKEN_TTL]
//	                     (10m); a few seconds makes the middleware refresh them while the demo is used
//	-client-id id        a client pre-registered at the OP instead of a dynamic registration [OXD_DEMO_CLIENT_ID];
//	                     its secret, if its method uses one, only from OXD_DEMO_CLIENT_SECRET
//	-client-auth-method  its token_endpoint_auth_method: client_secret_basic (default), client_secret_post,
//	                     client_secret_jwt, private_key_jwt or none [OXD_DEMO_CLIENT_AUTH_METHOD]
//	-setup-client-id id  a pre-registered protection (setup) client [OXD_DEMO_SETUP_CLIENT_ID]; its secret
//	                     only from OXD_DEMO_SETUP_CLIENT_SECRET; without it, -client-id plays both roles
//	                     at an OP without a registration endpoint
//	-setup-client-auth-method  the protection client's method (client_secret_basic by default)
//	                     [OXD_DEMO_SETUP_CLIENT_AUTH_METHOD]
//	-metrics-listen host:port  serve /metrics (Prometheus), /healthz and /readyz on this loopback
//	                     address, e.g. 127.0.0.1:9465 [OXD_DEMO_METRICS_LISTEN]: the middleware's logins,
//	                     failures, refreshes, logouts and UMA decisions, the oxd client's latency and,
//	                     with the in-process engine, the engine's metrics
//	-insecure-metrics-any-interface  allow -metrics-listen on an address that is not loopback
//	                     (the endpoints have no authentication)
//	-v                   log oxd commands and requests (never secrets) [OXD_DEMO_VERBOSE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/oxdgo/oxd/internal/opsserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// options are the command line and environment settings of the demo.
type options struct {
	Addr         string
	Oxd          string
	OxdHTTPS     string
	OxdHTTPSCA   string
	OP           string
	SettingsPath string
	TLSCert      string
	TLSKey       string
	DevOPAddr    string
	// DevOPAccessTokenTTL is the development OP's access-token lifetime
	// (0: its default).
	DevOPAccessTokenTTL time.Duration
	Verbose             bool
	Clients             clientOptions
	// MetricsListen is where /metrics, /healthz and /readyz are served
	// ("" for nowhere); a loopback address unless
	// InsecureMetricsAnyInterface.
	MetricsListen               string
	InsecureMetricsAnyInterface bool
}

// parseOptions reads flags from args, with defaults from the environment.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	env := func(k, def string) string {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			return v
		}
		return def
	}
	verbose, _ := strconv.ParseBool(env("OXD_DEMO_VERBOSE", "false"))
	o := &options{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "addr", env("OXD_DEMO_ADDR", "127.0.0.1:5053"), "`host:port` the application listens on (HTTPS)")
	fs.StringVar(&o.Oxd, "oxd", env("OXD_DEMO_OXD", ""), "`host:port` of an oxd-server socket (e.g. 127.0.0.1:8099) instead of the in-process engine")
	fs.StringVar(&o.OxdHTTPS, "oxd-https", env("OXD_DEMO_OXD_HTTPS", ""), "base `URL` of an oxd-https-extension instead of the in-process engine")
	fs.StringVar(&o.OxdHTTPSCA, "oxd-https-ca", env("OXD_DEMO_OXD_HTTPS_CA", ""), "PEM `file` of certificates to trust for -oxd-https (besides the system's)")
	fs.StringVar(&o.OP, "op", env("OXD_DEMO_OP", ""), "issuer `URL` of a real OP instead of the development OP")
	fs.StringVar(&o.SettingsPath, "settings", env("OXD_DEMO_SETTINGS", ""), "settings `file` (default "+defaultSettingsPath()+")")
	fs.StringVar(&o.TLSCert, "tls-cert", env("OXD_DEMO_TLS_CERT", ""), "PEM certificate `file` to serve instead of a generated self-signed one")
	fs.StringVar(&o.TLSKey, "tls-key", env("OXD_DEMO_TLS_KEY", ""), "PEM private key `file` for -tls-cert")
	fs.StringVar(&o.DevOPAddr, "dev-op-addr", env("OXD_DEMO_DEV_OP_ADDR", "127.0.0.1:0"), "`host:port` of the development OP (plain HTTP; loopback only)")
	fs.StringVar(&o.MetricsListen, "metrics-listen", env("OXD_DEMO_METRICS_LISTEN", ""), "loopback `host:port` serving /metrics (Prometheus), /healthz and /readyz, e.g. 127.0.0.1:9465 (\"\" disables it)")
	fs.BoolVar(&o.InsecureMetricsAnyInterface, "insecure-metrics-any-interface", false, "allow -metrics-listen on an address that is not loopback: the endpoints have no authentication and tell anyone who reaches them the demo's logins, failures and latencies")
	ttl, err := time.ParseDuration(env("OXD_DEMO_DEV_OP_ACCESS_TOKEN_TTL", "0s"))
	if err != nil {
		return nil, fmt.Errorf("OXD_DEMO_DEV_OP_ACCESS_TOKEN_TTL: %w", err)
	}
	fs.DurationVar(&o.DevOPAccessTokenTTL, "dev-op-access-token-ttl", ttl, "lifetime of the development OP's access tokens (0: 10m); a few seconds makes the middleware refresh them")
	fs.BoolVar(&o.Verbose, "v", verbose, "log oxd commands and requests (never secrets)")
	fs.StringVar(&o.Clients.ClientID, "client-id", env("OXD_DEMO_CLIENT_ID", ""), "`id` of a client pre-registered at the OP (no dynamic registration); its secret only from "+envClientSecret)
	fs.StringVar(&o.Clients.ClientAuthMethod, "client-auth-method", env("OXD_DEMO_CLIENT_AUTH_METHOD", ""), "token_endpoint_auth_`method` of the client: client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none")
	fs.StringVar(&o.Clients.SetupClientID, "setup-client-id", env("OXD_DEMO_SETUP_CLIENT_ID", ""), "`id` of a pre-registered protection (setup) client; its secret only from "+envSetupClientSecret)
	fs.StringVar(&o.Clients.SetupClientAuthMethod, "setup-client-auth-method", env("OXD_DEMO_SETUP_CLIENT_AUTH_METHOD", ""), "token_endpoint_auth_`method` of the protection client (client_secret_basic by default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: demo [flags]\n\nThe oxd for Go demo application. With no flags it runs the development OP and the\noxd engine in process and serves https://127.0.0.1:5053.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if o.Oxd != "" && o.OxdHTTPS != "" {
		return nil, errors.New("-oxd and -oxd-https are exclusive: choose the socket or the HTTPS extension")
	}
	if o.OxdHTTPSCA != "" && o.OxdHTTPS == "" {
		return nil, errors.New("-oxd-https-ca needs -oxd-https")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if o.MetricsListen != "" && !o.InsecureMetricsAnyInterface && !opsserver.OnLoopback(o.MetricsListen) {
		return nil, fmt.Errorf("-metrics-listen %s is not a loopback address: scrape through a local agent, or add -insecure-metrics-any-interface (the endpoints have no authentication)", o.MetricsListen)
	}
	if o.DevOPAccessTokenTTL != 0 && (o.OP != "" || o.DevOPAccessTokenTTL < 2*time.Second) {
		return nil, errors.New("-dev-op-access-token-ttl needs the development OP (no -op) and at least 2s")
	}
	if o.InsecureMetricsAnyInterface && o.MetricsListen == "" {
		return nil, errors.New("-insecure-metrics-any-interface needs -metrics-listen")
	}
	if o.OP != "" {
		if err := checkURL(o.OP); err != nil {
			return nil, fmt.Errorf("-op %w", err)
		}
	}
	o.Clients.readSecrets()
	if err := o.Clients.check(); err != nil {
		return nil, err
	}
	if o.SettingsPath == "" {
		o.SettingsPath = defaultSettingsPath()
	}
	return o, nil
}

// run starts the demo and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	d, err := start(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	d.printBanner(stdout)
	return d.Serve(ctx)
}
