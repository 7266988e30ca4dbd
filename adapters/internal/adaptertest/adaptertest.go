// Package adaptertest is the common test bench of the router adapters: a
// development OP and an oxd engine with a registered site (package
// oxdtest), an [oxd.Auth] over a counting transport, and the router under
// test served over TLS on loopback, with a browser-like client.
package adaptertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// Env is a running bench.
type Env struct {
	// Server is the development OP, the engine and the site.
	Server *oxdtest.Server
	// Auth is the middleware under test; it talks to Server.Engine through
	// a transport that records the commands.
	Auth *oxd.Auth
	// URL is the base URL of the router under test (https://127.0.0.1:…).
	URL string
	// Client is a browser-like client: a cookie jar, trusts the test
	// server, does not follow redirects.
	Client *http.Client

	rec *recorder
}

// Paths where routers under test mount the login handlers.
const (
	CallbackPath  = "/callback"
	LogoutPath    = "/logout"
	LoginPath     = "/login"
	LoggedOutPath = "/logged-out"
	ClaimsPath    = "/claims-callback"
)

// New starts the bench; router builds the handler under test from the
// middleware (declaring its UMA routes). RegisterUMA runs after router.
// Everything stops when the test ends.
func New(t testing.TB, router func(auth *oxd.Auth) http.Handler) *Env {
	t.Helper()
	var h http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)

	srv := oxdtest.NewServer(t, oxdtest.WithRedirectURIs(ts.URL+CallbackPath, ts.URL+LoggedOutPath, ts.URL+ClaimsPath))
	rec := &recorder{next: srv.Engine}
	sessions := scs.New()
	auth, err := oxd.New(oxdclient.New(rec, oxdclient.Config{}), sessions, oxd.Config{
		Logger:                slog.New(&rec.logs),
		OxdID:                 srv.OxdID,
		RedirectURL:           ts.URL + CallbackPath,
		PostLogoutRedirectURI: ts.URL + LoggedOutPath,
		UMA:                   oxd.UMAConfig{Issuer: srv.OP.Issuer(), ClaimsRedirectURL: ts.URL + ClaimsPath},
	})
	if err != nil {
		t.Fatalf("adaptertest: oxd.New: %v", err)
	}
	handler := router(auth)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := auth.RegisterUMA(ctx); err != nil {
		t.Fatalf("adaptertest: RegisterUMA: %v", err)
	}
	mu.Lock()
	h = handler
	mu.Unlock()

	jar, _ := cookiejar.New(nil)
	c := ts.Client()
	c.Jar = jar
	c.Timeout = 30 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Env{Server: srv, Auth: auth, URL: ts.URL, Client: c, rec: rec}
}

// Response is a response read whole.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request to the router (path relative to URL); header may be
// nil.
func (e *Env) Do(t testing.TB, method, path string, header http.Header) Response {
	t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = e.URL + path
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Navigate is a browser's GET of path.
func (e *Env) Navigate(t testing.TB, path string) Response {
	t.Helper()
	return e.Do(t, http.MethodGet, path, http.Header{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"text/html"}})
}

// Login opens path (guarded by RequireLogin) as a browser, signs in at the
// OP as user, follows the callback, and returns the final answer of path.
func (e *Env) Login(t testing.TB, path, user, password string) Response {
	t.Helper()
	r := e.Navigate(t, path)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, e.Server.OP.Issuer()) {
		t.Fatalf("adaptertest: %s before login: %d %q, want a redirect to the OP", path, r.Status, loc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, e.Client, loc, user, password)
	if err != nil {
		t.Fatalf("adaptertest: login at the OP: %v", err)
	}
	if !strings.HasPrefix(cb.String(), e.URL+CallbackPath+"?") {
		t.Fatalf("adaptertest: the OP redirected to %s", cb.Redacted())
	}
	r = e.Navigate(t, cb.String())
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != path {
		t.Fatalf("adaptertest: callback: %d %q, want a redirect to %s\n%s", r.Status, r.Header.Get("Location"), path, r.Body)
	}
	return e.Navigate(t, path)
}

// Logout posts to LogoutPath as a same-origin form and returns the
// answer (a redirect to the OP's end-session endpoint).
func (e *Env) Logout(t testing.TB) Response {
	t.Helper()
	return e.Do(t, http.MethodPost, LogoutPath, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {e.URL}})
}

// RPT requests path without an RPT, expects the 401 UMA challenge, and
// exchanges its ticket for an RPT at the AS (uma_rp_get_rpt).
func (e *Env) RPT(t testing.TB, path string) string {
	t.Helper()
	r := e.Do(t, http.MethodGet, path, http.Header{"Accept": {"application/json"}})
	ticket, err := challengeTicket(r)
	if err != nil {
		t.Fatalf("adaptertest: GET %s without RPT: %v (status %d, WWW-Authenticate %q)", path, err, r.Status, r.Header.Get("WWW-Authenticate"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rr, err := e.Server.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: e.Server.OxdID, Ticket: ticket})
	if err != nil {
		t.Fatalf("adaptertest: uma_rp_get_rpt: %v", err)
	}
	return rr.AccessToken.Reveal()
}

// WithRPT sends GET path with the RPT as Bearer token.
func (e *Env) WithRPT(t testing.TB, path, rpt string) Response {
	t.Helper()
	return e.Do(t, http.MethodGet, path, http.Header{"Authorization": {"Bearer " + rpt}, "Accept": {"application/json"}})
}

func challengeTicket(r Response) (string, error) {
	if r.Status != http.StatusUnauthorized {
		return "", errors.New("not a 401")
	}
	h := r.Header.Values("WWW-Authenticate")
	if len(h) != 1 || !strings.HasPrefix(h[0], "UMA ") {
		return "", errors.New("no single UMA challenge")
	}
	_, rest, ok := strings.Cut(h[0], `ticket="`)
	if !ok {
		return "", errors.New("challenge without ticket")
	}
	ticket, _, ok := strings.Cut(rest, `"`)
	if !ok || ticket == "" {
		return "", errors.New("malformed ticket")
	}
	return ticket, nil
}

// ProtectedPaths are the resource paths registered with uma_rs_protect.
func (e *Env) ProtectedPaths() []string {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return slices.Clone(e.rec.protected)
}

// CheckedPaths are the paths of every uma_rs_check_access call so far.
func (e *Env) CheckedPaths() []string {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return slices.Clone(e.rec.checked)
}

// Query returns the query of a URL (for asserting redirects).
func Query(raw string) url.Values {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u.Query()
}

// recorder is a transport that records the UMA resource paths that pass.
type recorder struct {
	next oxdclient.Transport

	mu        sync.Mutex
	protected []string
	checked   []string

	logs logHandler
}

func (r *recorder) Do(ctx context.Context, command string, params, result any) error {
	r.mu.Lock()
	switch p := params.(type) {
	case oxdclient.UMARSProtectParams:
		r.recordProtect(&p)
	case *oxdclient.UMARSProtectParams:
		r.recordProtect(p)
	case oxdclient.UMARSCheckAccessParams:
		r.checked = append(r.checked, p.Path)
	case *oxdclient.UMARSCheckAccessParams:
		r.checked = append(r.checked, p.Path)
	}
	r.mu.Unlock()
	return r.next.Do(ctx, command, params, result)
}

func (r *recorder) recordProtect(p *oxdclient.UMARSProtectParams) {
	r.protected = r.protected[:0]
	for _, res := range p.Resources {
		r.protected = append(r.protected, res.Path)
	}
}
