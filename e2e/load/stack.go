package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Env holds what a run started, in order, and stops it in reverse order.
type Env struct {
	// Dir receives the log of every process (<name>.log).
	Dir string
	// Bin holds the built binaries.
	Bin string

	mu       sync.Mutex
	cleanups []func()
	procs    []*Proc
}

// NewEnv makes an Env writing logs to dir (emptied first) and binaries to
// bin.
func NewEnv(dir, bin string) (*Env, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return &Env{Dir: dir, Bin: bin}, nil
}

// Defer registers f to run at Close.
func (e *Env) Defer(f func()) {
	e.mu.Lock()
	e.cleanups = append(e.cleanups, f)
	e.mu.Unlock()
}

// Close runs the registered functions, the last first.
func (e *Env) Close() {
	e.mu.Lock()
	c := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// Start starts a process whose log goes to Dir/<name>.log and stops it at
// Close.
func (e *Env) Start(name, dir string, env []string, bin string, args ...string) (*Proc, error) {
	p, err := Start(name, filepath.Join(e.Dir, name+".log"), dir, env, bin, args...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	e.Defer(p.Stop)
	return p, nil
}

// OwnLogs are the log files of the processes of ours (not the OP, Redis
// or a peer): the ones whose name starts with one of the prefixes.
func (e *Env) OwnLogs(prefixes ...string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, p := range e.procs {
		for _, pre := range prefixes {
			if strings.HasPrefix(p.Name, pre) && !seen[p.LogPath] {
				seen[p.LogPath] = true
				out = append(out, p.LogPath)
			}
		}
	}
	return out
}

// E2EDir is the e2e directory of the repository (where this file lives).
func E2EDir() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(f))
}

// Build compiles the sample app and cmd/oxd-server into e.Bin.
func (e *Env) Build(ctx context.Context) error {
	for _, b := range []struct{ out, pkg string }{
		{"app", "./load/app"},
		{"oxd-server", "github.com/oxdgo/oxd/cmd/oxd-server"},
	} {
		args := []string{"build"}
		// OXD_LOAD_TAGS=oxdprofile builds binaries that serve pprof
		// (internal/pprofhook) for profiling a run.
		if tags := os.Getenv("OXD_LOAD_TAGS"); tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, "-o", filepath.Join(e.Bin, b.out), b.pkg)...)
		cmd.Dir = E2EDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", b.pkg, err, out)
		}
	}
	return nil
}

// FreePort is a 127.0.0.1 port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// OP is an OP behind its fault proxy: the certified OP (a process) or the
// development OP (served by this process).
type OP struct {
	Issuer string
	Proxy  *FaultProxy
	Proc   *Proc // nil for the development OP
	// Ledger is the file where the certified OP writes every secret it
	// issues or receives (OP_SECRETS_FILE), "" for the development OP.
	Ledger string
	// Login drives the OP's login pages (see Browser.Driver).
	Login LoginDriver
}

// LoginDriver drives an OP's login pages with hc from authURL (or an
// application URL that redirects there) and returns the first redirect that
// leaves the OP, not followed.
type LoginDriver func(ctx context.Context, hc *http.Client, authURL, user, pass string) (*url.URL, error)

// StartDevOP serves the development OP (oxdtest) in this process behind a
// fault proxy that is its issuer, with the given accounts.
func (e *Env) StartDevOP(users []oxdtest.User) (*OP, error) {
	proxy, err := NewFaultProxy()
	if err != nil {
		return nil, err
	}
	e.Defer(proxy.Close)
	op, err := oxdtest.NewOP(proxy.URL, oxdtest.OPConfig{Users: users})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: op, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLogger()}
	go func() { _ = srv.Serve(ln) }()
	e.Defer(func() { _ = srv.Close(); op.Close() })
	proxy.SetUpstream(&url.URL{Scheme: "http", Host: ln.Addr().String()})
	return &OP{Issuer: proxy.URL, Proxy: proxy, Login: oxdtest.BrowserLogin}, nil
}

var opReady = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)

// StartOP starts e2e/op/provider.mjs on a free port with the fault proxy's
// URL as issuer. opEnv are extra environment variables (OP_TTL_…). Its
// in-memory store holds 500,000 entries (the default 1,000 would evict the
// registered clients after a few hundred logins).
func (e *Env) StartOP(ctx context.Context, opEnv ...string) (*OP, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not installed")
	}
	dir := filepath.Join(E2EDir(), "op")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		return nil, errors.New("oidc-provider is not installed in e2e/op (npm ci there)")
	}
	proxy, err := NewFaultProxy()
	if err != nil {
		return nil, err
	}
	e.Defer(proxy.Close)
	var lastErr error
	for range 3 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		ledger := filepath.Join(e.Dir, "oidc-provider.secrets")
		p, err := e.Start("oidc-provider", dir, append([]string{"OP_STORE_SIZE=500000", "OP_SECRETS_FILE=" + ledger}, opEnv...), node, "provider.mjs", "--port", strconv.Itoa(port), "--issuer", proxy.URL)
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, lastErr = p.WaitLine(wctx, opReady)
		cancel()
		if lastErr == nil {
			proxy.SetUpstream(&url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)})
			return &OP{Issuer: proxy.URL, Proxy: proxy, Proc: p, Ledger: ledger, Login: harness.DriverFor(proxy.URL).LoginHTTP}, nil
		}
		p.Stop()
	}
	return nil, lastErr
}

// Oxd is a cmd/oxd-server process over the socket protocol, its sites in
// Redis.
type Oxd struct {
	Addr string
	Proc *Proc
	args []string
	env  *Env
	n    int
}

var oxdReady = regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`)

// StartOxd starts cmd/oxd-server with protection tokens required, its store
// in Redis at redisAddr, logging at logLevel, plain-http loopback OPs
// allowed.
func (e *Env) StartOxd(ctx context.Context, redisAddr, logLevel string) (*Oxd, error) {
	bin := filepath.Join(e.Bin, "oxd-server")
	help, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	args := []string{"-listen", "127.0.0.1:0", "-store", "redis://" + redisAddr + "/0", "-log-level", logLevel, "-shutdown-timeout", "2s"}
	// Protection on the socket: a flag before the server hardening, the
	// default after it.
	if strings.Contains(string(help), "-protect-socket") {
		args = append(args, "-protect-socket")
	}
	if strings.Contains(string(help), "-insecure-loopback-http") {
		args = append(args, "-insecure-loopback-http")
	}
	o := &Oxd{args: args, env: e}
	if err := o.start(ctx, args); err != nil {
		return nil, err
	}
	// Restarts come back on the same address.
	for i, a := range o.args {
		if a == "127.0.0.1:0" {
			o.args[i] = o.Addr
		}
	}
	return o, nil
}

func (o *Oxd) start(ctx context.Context, args []string) error {
	o.n++
	p, err := o.env.Start(fmt.Sprintf("oxd-server-%d", o.n), "", nil, filepath.Join(o.env.Bin, "oxd-server"), args...)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := p.WaitLine(wctx, oxdReady)
	if err != nil {
		p.Stop()
		return err
	}
	o.Addr, o.Proc = m[1], p
	return nil
}

// Restart starts oxd-server again on the same address (after Kill).
func (o *Oxd) Restart(ctx context.Context) error {
	o.Proc.Stop()
	return o.start(ctx, o.args)
}

// EnsureSite registers the application's site (setup_client) through oxd and
// writes the site file at path. opts change the setup_client parameters
// (the peer benchmark sets the client authentication method).
func EnsureSite(ctx context.Context, oxdAddr, path, issuer, publicURL string, opts ...func(*oxdclient.SetupClientParams)) (*oxdclient.Site, error) {
	sock, err := oxdclient.NewSocket(oxdAddr, oxdclient.SocketConfig{Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	c := oxdclient.New(sock, oxdclient.Config{})
	p := oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   issuer,
		AuthorizationRedirectURI: publicURL + "/callback",
		PostLogoutRedirectURI:    publicURL + "/logged-out",
		Scope:                    []string{"openid", "profile", "email", "offline_access", "uma_protection"},
		GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:            []string{"code"},
		ClientName:               "load suite",
	}}
	for _, o := range opts {
		o(&p)
	}
	return oxdclient.EnsureSite(ctx, c, path, p)
}

// App is one replica of the sample application.
type App struct {
	Name     string
	URL      string
	DebugURL string
	Proc     *Proc
}

var (
	appReady   = regexp.MustCompile(`^app listening on (http://127\.0\.0\.1:\d+)$`)
	debugReady = regexp.MustCompile(`^debug listening on (http://127\.0\.0\.1:\d+)$`)
)

// StartApp starts a replica of e2e/load/app; args are its flags.
func (e *Env) StartApp(ctx context.Context, name string, args ...string) (*App, error) {
	p, err := e.Start("app-"+name, "", nil, filepath.Join(e.Bin, "app"), append([]string{"-name", name}, args...)...)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := p.WaitLine(wctx, appReady)
	if err != nil {
		return nil, err
	}
	d, err := p.WaitLine(wctx, debugReady)
	if err != nil {
		return nil, err
	}
	return &App{Name: name, URL: m[1], DebugURL: d[1], Proc: p}, nil
}

// Goroutines reads the replica's goroutine count from its debug listener.
func (a *App) Goroutines(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.DebugURL+"/debug/goroutines", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// LiveHeap reads the replica's live heap after a collection that returns
// freed memory to the OS (bytes).
func (a *App) LiveHeap(ctx context.Context) (int64, error) {
	b, err := a.debugGet(ctx, "/debug/liveheap")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// SaveHeapProfile writes the replica's heap profile (pprof format) to path.
func (a *App) SaveHeapProfile(ctx context.Context, path string) error {
	b, err := a.debugGet(ctx, "/debug/pprof/heap")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (a *App) debugGet(ctx context.Context, path string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.DebugURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s%s: HTTP %d", a.Name, path, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// PinHeader makes the round-robin proxy send a request to one backend (its
// index), so that a test can start a login on one replica and finish it on
// the other. It is removed before forwarding.
const PinHeader = "X-Load-Pin"

// RoundRobin is the load balancer: each request goes to the next backend.
type RoundRobin struct {
	URL      string
	srv      *http.Server
	backends atomic.Pointer[[]*url.URL]
	next     atomic.Uint64
	rp       *httputil.ReverseProxy
}

// NewRoundRobin listens on a free 127.0.0.1 port; SetBackends gives it its
// backends.
func NewRoundRobin() (*RoundRobin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rr := &RoundRobin{URL: "http://" + ln.Addr().String()}
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second}
	rr.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			bs := *rr.backends.Load()
			i := int(rr.next.Add(1) % uint64(len(bs)))
			if pin := pr.In.Header.Get(PinHeader); pin != "" {
				if n, err := strconv.Atoi(pin); err == nil && n >= 0 && n < len(bs) {
					i = n
				}
			}
			pr.Out.Header.Del(PinHeader)
			pr.SetURL(bs[i])
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  discardLogger(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	rr.srv = &http.Server{Handler: rr.rp, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLogger()}
	go func() { _ = rr.srv.Serve(ln) }()
	return rr, nil
}

// SetBackends sets the backends' base URLs.
func (rr *RoundRobin) SetBackends(urls ...string) error {
	var bs []*url.URL
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		bs = append(bs, u)
	}
	rr.backends.Store(&bs)
	return nil
}

// CloseIdle closes the proxy's idle connections to the backends.
func (rr *RoundRobin) CloseIdle() { rr.rp.Transport.(*http.Transport).CloseIdleConnections() }

// Close stops the proxy.
func (rr *RoundRobin) Close() { _ = rr.srv.Close() }
