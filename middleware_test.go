package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/internal/leakcheck"
	"github.com/oxdgo/oxd/oxdclient"
)

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestAuthenticatedIsSideEffectFree: the check neither redirects, nor calls
// oxd, nor writes the session.
func TestAuthenticatedIsSideEffectFree(t *testing.T) {
	for _, wrapped := range []bool{true, false} {
		rg := newRig(t, rigOpts{noLoadAndSave: !wrapped})
		b := rg.browser()
		r := rg.get(b, "/public")
		if r.status != 200 || r.body != "hello stranger" || r.header.Get("Set-Cookie") != "" || rg.fake.total() != 0 {
			t.Fatalf("anonymous: %d %q cookie %q calls %d", r.status, r.body, r.header.Get("Set-Cookie"), rg.fake.total())
		}
		rg.login(b, "/private/", "bob")
		calls := rg.fake.total()
		r = rg.get(b, "/public")
		if r.status != 200 || r.body != "hello bob" || r.header.Get("Set-Cookie") != "" || rg.fake.total() != calls {
			t.Fatalf("logged in: %d %q cookie %q", r.status, r.body, r.header.Get("Set-Cookie"))
		}
		// Even when the token is due for refresh.
		rg.advance(2 * time.Hour)
		r = rg.get(b, "/public")
		if r.body != "hello bob" || rg.fake.total() != calls {
			t.Fatal("Authenticated refreshed or failed")
		}
	}
}

// TestAPIRequestsNeverRedirected: API-style requests without a session get
// 401 with WWW-Authenticate, never a redirect, and cause no oxd call.
func TestAPIRequestsNeverRedirected(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.RedirectURL = "https://app.example/callback" }})
	cases := []struct {
		name, method string
		hdr          map[string]string
	}{
		{"accept json", "GET", map[string]string{"Accept": "application/json"}},
		{"xhr", "GET", map[string]string{"X-Requested-With": "XMLHttpRequest"}},
		{"fetch", "GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "*/*"}},
		{"POST", "POST", nil},
		{"DELETE", "DELETE", map[string]string{"Accept": "text/html"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rg.do(rg.browser(), c.method, "/private/api", c.hdr)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d", r.status)
			}
			if r.header.Get("Location") != "" {
				t.Fatalf("redirected to %q", r.header.Get("Location"))
			}
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="app.example"` {
				t.Fatalf("WWW-Authenticate %q", got)
			}
			var body struct{ Error string }
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error != "login_required" {
				t.Fatalf("body %q", r.body)
			}
			if !errors.Is(rg.lastErr(), ErrLoginRequired) {
				t.Fatalf("reason %v", rg.lastErr())
			}
		})
	}
	if rg.fake.total() != 0 {
		t.Fatalf("oxd calls: %v", rg.fake.calls)
	}
}

// TestAPIRequestHookOverrides: Config.APIRequest decides instead of the
// default.
func TestAPIRequestHookOverrides(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) {
		c.APIRequest = func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/private/api/") }
	}})
	// JSON accept, but not under /private/api/: redirected.
	r := rg.do(rg.browser(), "GET", "/private/page", map[string]string{"Accept": "application/json"})
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d", r.status)
	}
	// Plain navigation under /private/api/: 401.
	r = rg.get(rg.browser(), "/private/api/x")
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("status %d", r.status)
	}
}

// TestOxdFailures: oxd down, slow, or answering errors gives 503/502 within
// the configured timeout, never a hang or a panic, and recovers.
func TestOxdFailures(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.CallTimeout = 200 * time.Millisecond }})
	b := rg.browser()

	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, &oxdclient.TransportError{Command: "get_authorization_url", Kind: oxdclient.ErrUnavailable, Err: errors.New("dial tcp 127.0.0.1:8099: connection refused")})
	r := rg.get(b, "/private/")
	if r.status != http.StatusServiceUnavailable || !errors.Is(rg.lastErr(), ErrUnavailable) || !strings.Contains(r.body, "unavailable") {
		t.Fatalf("unavailable: %d %v", r.status, rg.lastErr())
	}
	if strings.Contains(r.body, "8099") {
		t.Fatal("internal address shown to the user")
	}
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, &oxdclient.Error{Code: oxdclient.CodeInvalidOxdID, Description: "Invalid oxd id."})
	if r := rg.get(b, "/private/"); r.status != http.StatusBadGateway || !errors.Is(rg.lastErr(), ErrCommand) || !oxdclient.IsInvalidOxdID(rg.lastErr()) {
		t.Fatalf("oxd error: %d %v", r.status, rg.lastErr())
	}
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, nil)

	// Slow: the hook blocks until the call's context ends.
	rg.fake.setHook(oxdclient.CmdGetAuthorizationURL, func(ctx context.Context) error {
		<-ctx.Done()
		return &oxdclient.TransportError{Command: "get_authorization_url", Kind: oxdclient.ErrTimeout, Err: ctx.Err()}
	})
	start := time.Now()
	r = rg.get(b, "/private/")
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
	if r.status != http.StatusServiceUnavailable || !errors.Is(rg.lastErr(), ErrTimeout) {
		t.Fatalf("slow: %d %v", r.status, rg.lastErr())
	}
	rg.fake.setHook(oxdclient.CmdGetAuthorizationURL, nil)

	// Garbage: an authorization URL oxd answers without a single usable
	// state (or not an absolute http(s) URL) is a 502, not a redirect to a
	// login that can never complete.
	for _, u := range []string{
		"https://op.example/authorize?client_id=c1",
		"https://op.example/authorize?client_id=c1&state=",
		"https://op.example/authorize?state=a&state=b",
		"https://op.example/authorize?state=" + strings.Repeat("s", 513),
		"/authorize?state=abc",
		"javascript:alert(1)//?state=abc",
		"https:///authorize?state=abc",
	} {
		rg.fake.setAuthURL(u)
		r := rg.get(b, "/private/")
		if r.status != http.StatusBadGateway || r.header.Get("Location") != "" || !errors.Is(rg.lastErr(), ErrCommand) {
			t.Fatalf("garbage %q: %d %q %v", u, r.status, r.header.Get("Location"), rg.lastErr())
		}
	}
	rg.fake.setAuthURL("")
	// Recovers by itself.
	st := rg.startLogin(b, "/private/")
	rg.fake.setFail(oxdclient.CmdGetTokensByCode, &oxdclient.TransportError{Command: "get_tokens_by_code", Kind: oxdclient.ErrProtocol})
	if r := rg.finish(b, st, "alice"); r.status != http.StatusBadGateway || !errors.Is(rg.lastErr(), ErrCommand) {
		t.Fatalf("protocol: %d %v", r.status, rg.lastErr())
	}
	rg.fake.setFail(oxdclient.CmdGetTokensByCode, nil)
	st = rg.startLogin(b, "/private/")
	rg.fake.setFail(oxdclient.CmdGetUserInfo, &oxdclient.TransportError{Command: "get_user_info", Kind: oxdclient.ErrUnavailable})
	if r := rg.finish(b, st, "alice"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("userinfo down: %d %v", r.status, rg.lastErr())
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("a failed login left a user in the session")
	}
	rg.fake.setFail(oxdclient.CmdGetUserInfo, nil)
	if r := rg.login(b, "/private/", "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("no recovery: %d", r.status)
	}
}

// TestNoGoroutineLeakWhenOxdHangs: requests and refreshes against an oxd
// that never answers all end at the timeout and leave no goroutine behind.
func TestNoGoroutineLeakWhenOxdHangs(t *testing.T) {
	defer leakcheck.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup")) // scs.New's store
	fake := newFakeOxd()
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		return &oxdclient.TransportError{Command: "x", Kind: oxdclient.ErrTimeout, Err: ctx.Err()}
	}
	sm := scs.New()
	a, err := New(oxdclient.New(fake, oxdclient.Config{}), sm, Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye", CallTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A session whose token is due for refresh.
	ctx, _ := sm.Load(context.Background(), "")
	u := &User{Subject: "alice", refreshToken: "RT-1", accessToken: "AT-1"}
	u.setExpiry(time.Now().Add(-time.Hour), 60, time.Minute)
	sm.Put(ctx, sessionKeyUser, u)
	tok, _, err := sm.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fake.setHook(oxdclient.CmdGetAuthorizationURL, hang)
	fake.setHook(oxdclient.CmdGetAccessTokenByRefreshToken, hang)
	h := a.RequireLogin(http.NotFoundHandler())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "https://app.example/private", nil)
			if i%2 == 0 {
				req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: tok})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d", w.Code)
			}
		})
	}
	wg.Wait()
}
