// Command app is the sample application of the load and fault suite
// (e2e/load): the oxd login middleware in front of a small handler, one
// RequireLogin area and one UMA-protected route, sessions in a shared Redis,
// oxd reached over the socket protocol (or, with -engine redis, the oxd
// engine in process with its store in the same Redis). Two of these run side by side as
// replicas behind the suite's round-robin proxy.
//
// It prints two ready lines,
//
//	app listening on http://127.0.0.1:PORT
//	debug listening on http://127.0.0.1:PORT
//
// and stops on SIGTERM. The debug listener (loopback only) serves
// /debug/goroutines (the goroutine count), /debug/liveheap (the live heap
// after a collection that returns freed memory to the OS, bytes) and /debug/pprof/heap (a heap profile).
//
// With -upstream it serves only the plain handler (no login), the upstream
// that oauth2-proxy guards in the peer benchmark.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	_ "github.com/oxdgo/oxd/internal/pprofhook" // profiles for the benchmarks, with -tags oxdprofile only
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/redisstore"
)

type options struct {
	addr, debugAddr   string
	name              string
	oxdAddr, siteFile string
	redisAddr         string
	redisCluster      string
	publicURL         string
	logLevel          string
	callTimeout       time.Duration
	upstream          bool
	engine            string
}

func main() {
	o := options{}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "application listener (loopback)")
	flag.StringVar(&o.debugAddr, "debug-addr", "127.0.0.1:0", "debug listener (loopback)")
	flag.StringVar(&o.name, "name", "A", "replica name, sent back in the X-Replica header")
	flag.StringVar(&o.oxdAddr, "oxd", "", "oxd socket address")
	flag.StringVar(&o.siteFile, "site-file", "", "site file written by oxdclient.EnsureSite")
	flag.StringVar(&o.redisAddr, "redis", "", "Redis address of the sessions")
	flag.StringVar(&o.redisCluster, "redis-cluster", "", "comma-separated seed addresses of a Redis Cluster for the sessions (instead of -redis)")
	flag.StringVar(&o.publicURL, "public-url", "", "URL the browsers use (the load balancer)")
	flag.StringVar(&o.logLevel, "log-level", "debug", "debug, info, warn or error")
	flag.DurationVar(&o.callTimeout, "call-timeout", 3*time.Second, "bound of every oxd call")
	flag.BoolVar(&o.upstream, "upstream", false, "serve only the plain handler (no login)")
	flag.StringVar(&o.engine, "engine", "", `"redis": run the oxd engine in process (instead of -oxd), its sites, states and nonces in the sessions' Redis under cmd/oxd-server's default prefix "oxd:"`)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

func run(o options) error {
	for _, a := range []string{o.addr, o.debugAddr} {
		if err := loopback(a); err != nil {
			return err
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("replica", o.name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var h http.Handler
	if o.upstream {
		h = http.HandlerFunc(hello)
	} else {
		var closeFn func()
		var err error
		h, closeFn, err = buildApp(ctx, o, logger)
		if err != nil {
			return err
		}
		defer closeFn()
	}
	name := o.name
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Replica", name)
		h.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	dln, err := net.Listen("tcp", o.debugAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: root, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	dsrv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = dsrv.Serve(dln) }()
	fmt.Printf("app listening on http://%s\n", ln.Addr())
	fmt.Printf("debug listening on http://%s\n", dln.Addr())

	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = dsrv.Shutdown(sctx)
	return nil
}

// hello is the upstream handler, the same for every gate in front of it.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	user := r.Header.Get("X-Forwarded-User") // set by oauth2-proxy
	if u, ok := oxd.UserFrom(r.Context()); ok {
		user = u.Subject
	}
	fmt.Fprintf(w, "hello sub=%s path=%s\n", user, r.URL.Path)
}

func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/goroutines", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", runtime.NumGoroutine())
	})
	// The live heap after a collection, in bytes: what the process holds,
	// as opposed to its RSS (which keeps freed pages for a while: the
	// collection returns them to the OS first).
	mux.HandleFunc("GET /debug/liveheap", func(w http.ResponseWriter, r *http.Request) {
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "%d\n", m.HeapAlloc)
	})
	mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	return mux
}

// buildApp wires the middleware: oxd over the socket, sessions in Redis.
func buildApp(ctx context.Context, o options, logger *slog.Logger) (http.Handler, func(), error) {
	if (o.oxdAddr == "") == (o.engine == "") || o.siteFile == "" || (o.redisAddr == "") == (o.redisCluster == "") || o.publicURL == "" {
		return nil, nil, errors.New("-site-file, -public-url, one of -oxd and -engine, and one of -redis and -redis-cluster are required")
	}
	if o.engine != "" && o.engine != "redis" {
		return nil, nil, fmt.Errorf("-engine %q: only redis", o.engine)
	}
	var rdb redis.UniversalClient
	if o.redisCluster != "" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(o.redisCluster, ","), PoolSize: 64,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: o.redisAddr, PoolSize: 64, DialTimeout: time.Second,
			ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1})
	}
	site, err := oxdclient.LoadSite(o.siteFile)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	var sock io.Closer
	var client *oxdclient.Client
	if o.engine != "" {
		// The engine in process: no oxd-server, no socket hop; the
		// in-process transport is trusted (no protection token). Its
		// Redis client has go-redis's defaults, as cmd/oxd-server's
		// (the sessions' client fails fast, for 503s during outages).
		var erdb redis.UniversalClient
		if o.redisCluster != "" {
			erdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(o.redisCluster, ",")})
		} else {
			erdb = redis.NewClient(&redis.Options{Addr: o.redisAddr})
		}
		eng, err := oxdserver.New(oxdserver.Config{Store: redisstore.New(erdb, "oxd:"), InsecureAllowLoopbackHTTP: true, Logger: logger})
		if err != nil {
			_ = rdb.Close()
			_ = erdb.Close()
			return nil, nil, err
		}
		sock, client = closers{eng, erdb}, oxdclient.New(eng, oxdclient.Config{Logger: logger})
	} else {
		s, err := oxdclient.NewSocket(o.oxdAddr, oxdclient.SocketConfig{PoolSize: 64, DialTimeout: time.Second, Timeout: o.callTimeout})
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		sock, client = s, oxdclient.New(s, oxdclient.Config{Logger: logger})
		client.SetProtection(site.ProtectionCredentials())
	}

	sm := scs.New()
	sm.Lifetime = time.Hour
	store, err := sessionStore(rdb)
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	sm.Store = store
	// A session store that cannot be reached is an outage, not a bug: 503.
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		logger.Warn("session store unavailable", "err", err)
		http.Error(w, "session store unavailable, try again", http.StatusServiceUnavailable)
	}
	pub := strings.TrimRight(o.publicURL, "/")
	auth, err := newAuth(client, sm, rdb, site, pub, o, logger)
	if err != nil {
		sock.Close()
		return nil, nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "public") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/private/", auth.RequireLogin(http.HandlerFunc(hello)))
	mux.Handle("GET /photos/{id}", auth.RequireLogin(auth.UMAProtect("GET /photos/{id}", "photos:view")(http.HandlerFunc(hello))))
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "signed out") })

	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := auth.RegisterUMA(rctx); err != nil {
		sock.Close()
		return nil, nil, fmt.Errorf("RegisterUMA: %w", err)
	}
	return sm.LoadAndSave(mux), func() { _ = sock.Close(); _ = rdb.Close() }, nil
}

// closers closes each of its elements.
type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for _, x := range c {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}
