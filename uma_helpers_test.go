package oxd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// umaClock is a settable clock shared by the OP, the engine and the
// middleware.
type umaClock struct {
	mu sync.Mutex
	t  time.Time
}

func newUMAClock() *umaClock { return &umaClock{t: time.Now()} }

func (c *umaClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *umaClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// umaTransport wraps a transport: it counts commands, records the params
// of check-access calls, can hold a command until released, and can
// rewrite answers.
type umaTransport struct {
	next oxdclient.Transport

	mu      sync.Mutex
	started map[string]int
	checks  []oxdclient.UMARSCheckAccessParams
	gates   map[string]chan struct{}
	after   func(cmd string, params, result any, err error) error
}

func newUMATransport(next oxdclient.Transport) *umaTransport {
	return &umaTransport{next: next, started: map[string]int{}, gates: map[string]chan struct{}{}}
}

func (t *umaTransport) Do(ctx context.Context, cmd string, params, result any) error {
	t.mu.Lock()
	t.started[cmd]++
	if p, ok := params.(oxdclient.UMARSCheckAccessParams); ok {
		t.checks = append(t.checks, p)
	}
	if p, ok := params.(*oxdclient.UMARSCheckAccessParams); ok {
		t.checks = append(t.checks, *p)
	}
	gate := t.gates[cmd]
	after := t.after
	t.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := t.next.Do(ctx, cmd, params, result)
	if after != nil {
		err = after(cmd, params, result, err)
	}
	return err
}

func (t *umaTransport) count(cmd string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started[cmd]
}

func (t *umaTransport) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, v := range t.started {
		n += v
	}
	return n
}

// lastCheck returns the params of the last check-access call.
func (t *umaTransport) lastCheck() oxdclient.UMARSCheckAccessParams {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.checks) == 0 {
		return oxdclient.UMARSCheckAccessParams{}
	}
	return t.checks[len(t.checks)-1]
}

func (t *umaTransport) allChecks() []oxdclient.UMARSCheckAccessParams {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]oxdclient.UMARSCheckAccessParams(nil), t.checks...)
}

// hold makes cmd wait until the returned function is called.
func (t *umaTransport) hold(cmd string) (release func()) {
	ch := make(chan struct{})
	t.mu.Lock()
	t.gates[cmd] = ch
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.gates, cmd)
			t.mu.Unlock()
			close(ch)
		})
	}
}

func (t *umaTransport) setAfter(f func(cmd string, params, result any, err error) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.after = f
}

// umaLogs collects log output safely.
type umaLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *umaLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *umaLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// umaRig is an application on a loopback HTTP server using the
// middleware, with the development OP and the engine behind it.
type umaRig struct {
	t     *testing.T
	srv   *oxdtest.Server
	tr    *umaTransport
	auth  *Auth
	sm    *scs.SessionManager
	app   *httptest.Server
	mux   *http.ServeMux
	clock *umaClock
	logs  *umaLogs

	mu    sync.Mutex
	calls map[string]int // handler calls by name
}

type umaRigOpts struct {
	op        oxdtest.OPConfig
	transport func(t *testing.T, srv *oxdtest.Server) oxdclient.Transport // default: the engine in process
	uma       *UMAConfig
	noConfig  bool
}

func newUMARig(t *testing.T, o umaRigOpts) *umaRig {
	t.Helper()
	rg := &umaRig{t: t, clock: newUMAClock(), logs: &umaLogs{}, mux: http.NewServeMux(), calls: map[string]int{}}
	var handler http.Handler = http.NotFoundHandler()
	var hmu sync.RWMutex
	rg.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		h := handler
		hmu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rg.app.Close)
	opCfg := o.op
	opCfg.Now = rg.clock.Now
	rg.srv = oxdtest.NewServer(t,
		oxdtest.WithOPConfig(opCfg),
		oxdtest.WithEngineConfig(oxdserver.Config{Now: rg.clock.Now}),
		oxdtest.WithRedirectURIs(rg.app.URL+"/callback", rg.app.URL+"/logged-out", rg.app.URL+"/claims-callback"),
	)
	var base oxdclient.Transport = rg.srv.Engine
	if o.transport != nil {
		base = o.transport(t, rg.srv)
	}
	rg.tr = newUMATransport(base)
	rg.sm = scs.New()
	logger := slog.New(slog.NewTextHandler(rg.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(oxdclient.New(rg.tr, oxdclient.Config{Logger: logger}), rg.sm, Config{
		OxdID:                 rg.srv.OxdID,
		PostLogoutRedirectURI: rg.app.URL + "/logged-out",
		RedirectURL:           rg.app.URL + "/callback",
		Logger:                logger,
		InsecureCookies:       true,
	})
	require.NoError(t, err)
	a.now = rg.clock.Now
	rg.auth = a
	if !o.noConfig {
		cfg := UMAConfig{ClaimsRedirectURL: rg.app.URL + "/claims-callback"}
		if o.uma != nil {
			cfg = *o.uma
		}
		require.NoError(t, a.configureUMA(cfg))
	}
	rg.mux.Handle("GET /callback", a.CallbackHandler())
	rg.mux.Handle("GET /claims-callback", a.ClaimsCallbackHandler())
	hmu.Lock()
	handler = rg.mux
	hmu.Unlock()
	return rg
}

// page is a handler that records its calls and writes its name and the
// UMA decision.
func (rg *umaRig) page(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.mu.Lock()
		rg.calls[name]++
		rg.mu.Unlock()
		d, ok := UMAResult(r)
		w.Header().Set("X-UMA-Decision", fmt.Sprintf("ok=%t granted=%t cached=%t session=%t new=%t", ok, d.Granted, d.Cached, d.SessionRPT, d.NewRPT))
		if d.Challenge != "" {
			w.Header().Set("X-UMA-Previous-Challenge", d.Challenge)
		}
		_, _ = io.WriteString(w, "page "+name)
	})
}

func (rg *umaRig) pageCalls(name string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.calls[name]
}

// protect mounts a page at the ServeMux pattern, guarded by UMAProtect
// with the same pattern.
func (rg *umaRig) protect(pattern string, scopes ...string) {
	rg.mux.Handle(pattern, rg.auth.UMAProtect(pattern, scopes...)(rg.page(pattern)))
}

func (rg *umaRig) register() {
	rg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(rg.t, rg.auth.RegisterUMA(ctx))
}

type umaResp struct {
	status int
	header http.Header
	body   string
}

// do sends a request from an API client (no cookies).
func (rg *umaRig) do(method, path string, hdr http.Header) umaResp {
	rg.t.Helper()
	return rg.doWith(http.DefaultClient, method, path, hdr)
}

func (rg *umaRig) doWith(c *http.Client, method, path string, hdr http.Header) umaResp {
	rg.t.Helper()
	req, err := http.NewRequest(method, rg.app.URL+path, nil)
	require.NoError(rg.t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	require.NoError(rg.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return umaResp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func bearer(rpt string) http.Header { return http.Header{"Authorization": {"Bearer " + rpt}} }

// rpt obtains an RPT for method+path the way a UMA client does: the
// request without RPT gives a ticket, uma_rp_get_rpt redeems it.
func (rg *umaRig) rpt(method, path string) string {
	rg.t.Helper()
	res := rg.do(method, path, nil)
	require.Equal(rg.t, http.StatusUnauthorized, res.status, "body %q", res.body)
	ch := parseChallenge(rg.t, res.header.Get("WWW-Authenticate"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := rg.srv.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: rg.srv.OxdID, Ticket: ch["ticket"]})
	require.NoError(rg.t, err)
	require.NotEmpty(rg.t, r.AccessToken.Reveal())
	return r.AccessToken.Reveal()
}

// waitSettled waits until the background introspections of the grant
// cache are done.
func (rg *umaRig) waitSettled() {
	rg.t.Helper()
	g := rg.auth.uma
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.cache.mu.Lock()
		pending := 0
		for _, e := range g.cache.grants {
			if e.until.IsZero() {
				pending++
			}
		}
		g.cache.mu.Unlock()
		if pending == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	rg.t.Fatal("grant cache did not settle")
}

// browser returns a cookie-jar client that does not follow redirects.
func (rg *umaRig) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// login signs username in through the middleware and the OP's login
// form, starting at a page that needs a login (RequireLogin).
func (rg *umaRig) login(c *http.Client, username string) {
	rg.t.Helper()
	res := rg.doWith(c, http.MethodGet, "/whoami", nil)
	require.Equal(rg.t, http.StatusSeeOther, res.status, "body %q", res.body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, c, res.header.Get("Location"), username, username+"-password")
	require.NoError(rg.t, err)
	require.True(rg.t, strings.HasPrefix(cb.String(), rg.app.URL+"/callback?"), "redirect %s", cb)
	res = rg.doWith(c, http.MethodGet, strings.TrimPrefix(cb.String(), rg.app.URL), nil)
	require.Equal(rg.t, http.StatusSeeOther, res.status, "callback: %q", res.body)
	res = rg.doWith(c, http.MethodGet, "/whoami", nil)
	require.Equal(rg.t, http.StatusOK, res.status)
	require.Equal(rg.t, username, res.body)
}

// mountWhoami adds a RequireLogin page answering the subject.
func (rg *umaRig) mountWhoami() {
	rg.mux.Handle("GET /whoami", rg.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		_, _ = io.WriteString(w, u.Subject)
	})))
}

var (
	umaFormAction = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	umaFormField  = regexp.MustCompile(`<input[^>]*name="oxdtest_interaction"[^>]*value="([^"]*)"`)
)

// gatherClaims plays the user on the AS's claims page: opens it, fills
// every asked claim with value and submits. It returns the AS's redirect.
func (rg *umaRig) gatherClaims(c *http.Client, claimsURL string, claims map[string]string) *url.URL {
	rg.t.Helper()
	res, err := c.Get(claimsURL)
	require.NoError(rg.t, err)
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(rg.t, http.StatusOK, res.StatusCode, "claims page: %s", page)
	action := umaFormAction.FindSubmatch(page)
	field := umaFormField.FindSubmatch(page)
	require.NotNil(rg.t, action, "claims form: %s", page)
	require.NotNil(rg.t, field, "claims form: %s", page)
	form := url.Values{"oxdtest_interaction": {html.UnescapeString(string(field[1]))}}
	for k, v := range claims {
		form.Set(k, v)
	}
	res, err = c.PostForm(html.UnescapeString(string(action[1])), form)
	require.NoError(rg.t, err)
	res.Body.Close()
	require.Equal(rg.t, http.StatusSeeOther, res.StatusCode)
	loc, err := res.Location()
	require.NoError(rg.t, err)
	return loc
}

// storedResources reads the resources oxd protects for the site.
func (rg *umaRig) storedResources() []map[string]any {
	rg.t.Helper()
	rp, err := rg.srv.Client.GetRP(context.Background(), oxdclient.GetRPParams{OxdID: rg.srv.OxdID})
	require.NoError(rg.t, err)
	var node struct {
		Resources []map[string]any `json:"uma_protected_resources"`
	}
	require.NoError(rg.t, json.Unmarshal(rp.Node, &node))
	return node.Resources
}

// checkUMA makes the decision of UMAProtect for method on the route
// template with rpt (empty: no RPT), without writing anything; the grant
// cache is used and filled as by UMAProtect.
func (a *Auth) checkUMA(ctx context.Context, method, template string, rpt oxdclient.Secret) UMADecision {
	return *a.uma.decide(ctx, method, template, rpt.Reveal())
}

// configureUMA replaces a's UMA settings, for rigs that configure UMA
// after New.
func (a *Auth) configureUMA(cfg UMAConfig) error {
	s, err := newUMASettings(cfg, a.cfg.Realm)
	if err != nil {
		return err
	}
	a.uma.apply(s)
	return nil
}
