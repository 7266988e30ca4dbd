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
	"strings"
	"sync"
	"time"

	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest/devop"
)

type options struct {
	listen          string
	httpsListen     string
	tlsCert, tlsKey string
	tlsCertOut      string
	store           string
	redisPrefix     string
	protectSocket   bool
	httpsProtect    bool
	devOP           bool
	logLevel        string
	shutdownTimeout time.Duration
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
	fs.BoolVar(&o.protectSocket, "protect-socket", false, "require protection access tokens on the socket protocol")
	fs.BoolVar(&o.httpsProtect, "https-protect", true, "require protection access tokens on the HTTPS extension")
	fs.BoolVar(&o.devOP, "dev-op", false, "start the development OP on a loopback port and print its issuer")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for commands in flight")
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
	if o.shutdownTimeout <= 0 {
		return nil, errors.New("-shutdown-timeout must be positive")
	}
	return o, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("invalid -log-level %q", s)
	}
	return l, nil
}

// run is the whole program; it returns the exit status: 0 after a graceful
// stop (ctx cancelled by SIGTERM/SIGINT), 1 on a failure, 2 on bad flags.
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, o, log); err != nil {
		log.Error("oxd-server stopped", "err", err)
		return 1
	}
	log.Info("oxd-server stopped")
	return 0
}

// serve starts everything, waits for ctx or a failure, then stops.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	store, storeDesc, err := openStore(ctx, o.store, o.redisPrefix)
	if err != nil {
		return err
	}
	engine, err := oxdserver.New(oxdserver.Config{Store: store, Logger: log})
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("engine: %w", err)
	}
	defer engine.Close() // closes the store
	log.Info("oxd engine ready", "store", storeDesc)

	if o.devOP {
		op, err := devop.StartOP(devop.OPConfig{Logger: log.With("component", "dev-op")})
		if err != nil {
			return fmt.Errorf("development OP: %w", err)
		}
		defer op.Close()
		users := make([]string, 0, len(devop.DemoUsers))
		for _, u := range devop.DemoUsers {
			users = append(users, u.Username)
		}
		log.Info("development OP listening", "issuer", op.Issuer(), "users", strings.Join(users, ","),
			"note", "for trials only: demo users with documented passwords (see devop.DemoUsers)")
	}

	var (
		sock    *oxdserver.SocketServer
		httpSrv *http.Server
		failed  = make(chan error, 2)
		wg      sync.WaitGroup
	)
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("socket listener: %w", err)
		}
		sock = &oxdserver.SocketServer{Engine: engine, Protect: o.protectSocket, Logger: log}
		log.Info("oxd socket protocol listening", "addr", ln.Addr().String(), "protect", o.protectSocket)
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
		httpSrv = &http.Server{
			Handler: oxdserver.NewHTTPSHandler(engine, oxdserver.HTTPSConfig{
				InsecureNoProtection: !o.httpsProtect,
				Logger:               log,
			}),
			TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      2 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		log.Info("oxd HTTPS extension listening", "url", "https://"+ln.Addr().String(), "protect", o.httpsProtect)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("HTTPS listener: %w", err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: finishing commands in flight", "timeout", o.shutdownTimeout)
	case runErr = <-failed:
	}

	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	if httpSrv != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := httpSrv.Shutdown(sctx); err != nil {
				log.Warn("HTTPS extension: commands still running at the shutdown deadline; closing", "err", err)
				_ = httpSrv.Close()
			}
		}()
	}
	if sock != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			stopSocketCtx(sctx, sock, log)
		}()
	}
	swg.Wait()
	wg.Wait()
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

func stopSocketCtx(ctx context.Context, s *oxdserver.SocketServer, log *slog.Logger) {
	if err := s.Shutdown(ctx); err != nil {
		log.Warn("socket: commands still running at the shutdown deadline; closing", "err", err)
		_ = s.Close()
	}
}
