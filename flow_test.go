package oxd

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// The flow suite: a real application (httptest over TLS, default Secure
// cookies) using RequireLogin, CallbackHandler and LogoutHandler, a browser
// with a cookie jar, and oxdtest's development OP behind the engine,
// reached in-process and over the socket protocol, with sessions in memory
// and in Redis.

type flowApp struct {
	t      *testing.T
	srv    *oxdtest.Server
	app    *httptest.Server
	auth   *Auth
	sm     *scs.SessionManager
	logs   *syncBuffer
	clockD atomic.Int64
}

func (fa *flowApp) now() time.Time { return time.Now().Add(time.Duration(fa.clockD.Load())) }

// newFlowApp starts the OP, the engine, and the application. transport
// picks how the middleware reaches the engine; store makes the session
// store.
func newFlowApp(t *testing.T, transport string, store func(t *testing.T) scs.Store, opts ...oxdtest.ServerOption) *flowApp {
	t.Helper()
	return newFlowAppCfg(t, transport, store, oxdtest.OPConfig{}, nil, opts...)
}

// newFlowAppCfg is newFlowApp with the development OP configured by opCfg
// (AccessTokenTTL defaults to 2 minutes) and cfgFn applied to the
// middleware's Config.
func newFlowAppCfg(t *testing.T, transport string, store func(t *testing.T) scs.Store, opCfg oxdtest.OPConfig, cfgFn func(*Config), opts ...oxdtest.ServerOption) *flowApp {
	t.Helper()
	fa := &flowApp{t: t, logs: &syncBuffer{}}
	if opCfg.AccessTokenTTL == 0 {
		opCfg.AccessTokenTTL = 2 * time.Minute
	}
	var handler atomic.Pointer[http.Handler]
	fa.app = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	// Idle keep-alive connections cut at Close are not worth a log line.
	fa.app.Config.ErrorLog = log.New(io.Discard, "", 0)
	fa.app.StartTLS()
	t.Cleanup(fa.app.Close)
	fa.srv = oxdtest.NewServer(t, append([]oxdtest.ServerOption{
		oxdtest.WithOPConfig(opCfg),
		oxdtest.WithRedirectURIs(fa.app.URL+"/callback", fa.app.URL+"/logged-out", "")}, opts...)...)

	var client *oxdclient.Client
	switch transport {
	case "inprocess":
		client = fa.srv.Client
	case "socket":
		client = socketClient(t, fa.srv)
	default:
		t.Fatalf("transport %q", transport)
	}
	fa.sm = scs.New()
	fa.sm.Store = store(t)
	cfg := Config{
		OxdID:                 fa.srv.OxdID,
		RedirectURL:           fa.app.URL + "/callback",
		PostLogoutRedirectURI: fa.app.URL + "/logged-out",
		Logger:                newTestLogger(fa.logs),
		CallTimeout:           10 * time.Second,
		PendingLoginKey:       testPendingKey,
	}
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	a, err := New(client, fa.sm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.now = fa.now
	fa.auth = a
	t.Cleanup(a.revoker.wg.Wait) // before the engine stops (cleanups run last first)

	mux := http.NewServeMux()
	mux.Handle("/private/", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprintf(w, "sub=%s|email=%s|name=%s|at=%s|uri=%s", u.Subject, u.Claim("email"), u.Claim("name"), u.AccessToken().Reveal(), r.URL.RequestURI())
	})))
	mux.Handle("GET /tokens", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprintf(w, "%s|%s", u.accessToken.Reveal(), u.refreshToken.Reveal())
	})))
	mux.Handle("GET /callback", a.CallbackHandler())
	mux.Handle("POST /logout", a.LogoutHandler())
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "bye") })
	var h http.Handler = fa.sm.LoadAndSave(mux)
	handler.Store(&h)
	return fa
}

// socketClient serves the engine on a loopback socket listener and returns
// a client using the socket transport, with protection tokens from the
// setup client (the listener checks them).
func socketClient(t *testing.T, srv *oxdtest.Server) *oxdclient.Client {
	t.Helper()
	creds := srv.Protection
	return oxdclient.New(socketTransport(t, srv), oxdclient.Config{Protection: &creds})
}

// socketTransport serves the engine on a loopback socket listener and
// returns a socket transport to it, both closed at the end of the test.
func socketTransport(t *testing.T, srv *oxdtest.Server) *oxdclient.Socket {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss := &oxdserver.SocketServer{Engine: srv.Engine}
	done := make(chan struct{})
	go func() { defer close(done); _ = ss.Serve(ln) }()
	sock, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sock.Close()
		_ = ss.Close()
		<-done
	})
	return sock
}

// testPendingKey is the pending-login key every replica of a test shares.
var testPendingKey = []byte("0123456789abcdef0123456789ABCDEF")

func memStore(*testing.T) scs.Store { return scs.New().Store }

// redisStore starts a private redis-server (internal/redistest: skipped
// without it, a failure under CI) and returns an scs store on it.
func redisStore(t *testing.T) scs.Store {
	t.Helper()
	return goredisstore.New(redistest.Start(t).Client(t))
}

func (fa *flowApp) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport:     fa.app.Client().Transport,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (fa *flowApp) do(c *http.Client, method, target string, hdr map[string]string) resp {
	fa.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = fa.app.URL + target
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		fa.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		fa.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp{status: res.StatusCode, header: res.Header, body: sb.String()}
}

func (fa *flowApp) cookie(c *http.Client) string {
	u, _ := url.Parse(fa.app.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == fa.sm.Cookie.Name {
			return ck.Value
		}
	}
	return ""
}

// login runs a browser login at the OP starting from path and returns the
// callback's answer.
func (fa *flowApp) login(b *http.Client, path, user, pass string) resp {
	fa.t.Helper()
	r := fa.do(b, "GET", path, nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), fa.srv.OP.Issuer()) {
		fa.t.Fatalf("GET %s: %d %q, want a redirect to the OP", path, r.status, r.header.Get("Location"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, r.header.Get("Location"), user, pass)
	if err != nil {
		fa.t.Fatalf("OP login: %v", err)
	}
	if !strings.HasPrefix(cb.String(), fa.app.URL+"/callback?") {
		fa.t.Fatalf("OP redirected to %s", cb)
	}
	return fa.do(b, "GET", cb.String(), nil)
}

func field(body, name string) string {
	for part := range strings.SplitSeq(body, "|") {
		if v, ok := strings.CutPrefix(part, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestFlowAgainstDevOP(t *testing.T) {
	for _, transport := range []string{"inprocess", "socket"} {
		for _, st := range []struct {
			name string
			mk   func(*testing.T) scs.Store
		}{{"memstore", memStore}, {"redis", redisStore}} {
			t.Run(transport+"/"+st.name, func(t *testing.T) {
				runFlowSuite(t, newFlowApp(t, transport, st.mk))
			})
		}
	}
}

// runFlowSuite is one scenario in order (login, claims, refresh, logout,
// the attacks on each step), each step building on the session the
// previous one left; splitting it would hide that order.
func runFlowSuite(t *testing.T, fa *flowApp) {
	b := fa.browser()

	// Login, return-to preserved, session token renewed.
	r := fa.do(b, "GET", "/private/page?x=1&y=two", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("first visit: %d", r.status)
	}
	before := fa.cookie(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, r.header.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	r = fa.do(b, "GET", cb.String(), nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/page?x=1&y=two" {
		t.Fatalf("callback: %d %q (logs:\n%s)", r.status, r.header.Get("Location"), fa.logs.String())
	}
	if after := fa.cookie(b); after == "" || after == before {
		t.Fatal("session token not renewed at login")
	}

	// Claims in context.
	r = fa.do(b, "GET", "/private/page?x=1&y=two", nil)
	if r.status != 200 || field(r.body, "sub") != "alice" || field(r.body, "email") != "alice@example.test" ||
		field(r.body, "name") != "Alice Example" || field(r.body, "uri") != "/private/page?x=1&y=two" {
		t.Fatalf("protected page: %d %q", r.status, r.body)
	}
	at1 := field(r.body, "at")

	// Replaying the callback fails without a token exchange.
	tokenCalls := fa.srv.OP.Calls(oxdtest.EndpointToken)
	if r := fa.do(b, "GET", cb.String(), nil); r.status != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d", r.status)
	}
	if fa.srv.OP.Calls(oxdtest.EndpointToken) != tokenCalls {
		t.Fatal("replayed callback reached the OP")
	}

	// Refresh: the access token lives 2 minutes; past half of it the next
	// requests refresh once, together.
	fa.clockD.Add(int64(61 * time.Second))
	var wg sync.WaitGroup
	ats := make([]string, 6)
	for i := range ats {
		wg.Go(func() {
			r := fa.do(b, "GET", "/private/r", nil)
			if r.status != 200 {
				t.Errorf("refresh request: %d %q", r.status, r.body)
			}
			ats[i] = field(r.body, "at")
		})
	}
	wg.Wait()
	if n := fa.srv.OP.Calls(oxdtest.EndpointToken) - tokenCalls; n != 1 {
		t.Fatalf("token endpoint called %d times for the refresh, want 1", n)
	}
	for _, at := range ats {
		if at == "" || at == at1 || at != ats[0] {
			t.Fatalf("access tokens after refresh: %q (before %q)", ats, at1)
		}
	}
	r = fa.do(b, "GET", "/private/r", nil)
	if field(r.body, "at") != ats[0] {
		t.Fatal("refreshed token not kept in the session")
	}

	// API request without a session: 401, never a redirect.
	r = fa.do(fa.browser(), "GET", "/private/api", map[string]string{"Accept": "application/json"})
	if r.status != http.StatusUnauthorized || r.header.Get("Location") != "" || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("api: %d", r.status)
	}

	// Logout: end_session at the OP with id_token_hint, back to the
	// post-logout page, session gone.
	loggedIn := fa.cookie(b)
	r = fa.do(b, "POST", "/logout", map[string]string{"Origin": fa.app.URL})
	end, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || end == nil || !strings.HasPrefix(end.String(), fa.srv.OP.Issuer()) || end.Query().Get("id_token_hint") == "" {
		t.Fatalf("logout: %d %q", r.status, r.header.Get("Location"))
	}
	if c := fa.cookie(b); c == loggedIn {
		t.Fatal("session cookie survived logout")
	}
	r = fa.do(b, "GET", end.String(), nil)
	if r.status < 300 || r.status > 399 || r.header.Get("Location") != fa.app.URL+"/logged-out" {
		t.Fatalf("end_session: %d %q", r.status, r.header.Get("Location"))
	}
	if r := fa.do(b, "GET", "/private/page", nil); r.status != http.StatusSeeOther {
		t.Fatalf("still logged in after logout: %d", r.status)
	}

	// Log in again as another user in the same browser.
	if r := fa.login(b, "/private/again", "bob", "bob-password"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/again" {
		t.Fatalf("second login: %d %q", r.status, r.header.Get("Location"))
	}
	if r := fa.do(b, "GET", "/private/again", nil); field(r.body, "sub") != "bob" {
		t.Fatalf("second login: %q", r.body)
	}

	// Login CSRF: a callback URL from another browser is refused.
	attacker := fa.browser()
	r = fa.do(attacker, "GET", "/private/x", nil)
	acb, err := oxdtest.BrowserLogin(ctx, attacker, r.header.Get("Location"), "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	victim := fa.browser()
	fa.do(victim, "GET", "/private/y", nil) // the victim has its own pending login
	tokenCalls = fa.srv.OP.Calls(oxdtest.EndpointToken)
	if r := fa.do(victim, "GET", acb.String(), nil); r.status != http.StatusBadRequest {
		t.Fatalf("login CSRF: %d", r.status)
	}
	if fa.srv.OP.Calls(oxdtest.EndpointToken) != tokenCalls {
		t.Fatal("foreign code exchanged")
	}

	// No secret in the logs.
	logs := fa.logs.String()
	for _, s := range []string{at1, ats[0], acb.Query().Get("code"), cb.Query().Get("code"), end.Query().Get("id_token_hint")} {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret (%.6s…) is in the logs", s)
		}
	}
}

// TestFlowTwoReplicasSharedRedis: two application instances share a Redis
// session store (behind a load balancer): a login started on one finishes
// on the other, and the session is then valid on both.
func TestFlowTwoReplicasSharedRedis(t *testing.T) {
	store := redisStore(t)
	a := newFlowApp(t, "inprocess", func(*testing.T) scs.Store { return store })
	// Replica B: its own Auth and session manager on the same store and site.
	smB := scs.New()
	smB.Store = store
	authB, err := New(a.srv.Client, smB, Config{OxdID: a.srv.OxdID, PostLogoutRedirectURI: a.app.URL + "/logged-out", PendingLoginKey: testPendingKey})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/private/", authB.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprintf(w, "sub=%s|replica=B", u.Subject)
	})))
	mux.Handle("GET /callback", authB.CallbackHandler())
	appB := httptest.NewUnstartedServer(smB.LoadAndSave(mux))
	appB.Config.ErrorLog = log.New(io.Discard, "", 0)
	appB.StartTLS()
	defer appB.Close()

	b := a.browser() // host-only cookies for 127.0.0.1 go to both ports
	r := a.do(b, "GET", "/private/shared", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, r.header.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	// The load balancer sends the callback to replica B.
	r = a.do(b, "GET", appB.URL+cb.RequestURI(), nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/shared" {
		t.Fatalf("callback on B: %d %q", r.status, r.header.Get("Location"))
	}
	if r := a.do(b, "GET", appB.URL+"/private/shared", nil); r.status != 200 || field(r.body, "sub") != "alice" {
		t.Fatalf("B: %d %q", r.status, r.body)
	}
	if r := a.do(b, "GET", "/private/shared", nil); r.status != 200 || field(r.body, "sub") != "alice" {
		t.Fatalf("A: %d %q", r.status, r.body)
	}
}
