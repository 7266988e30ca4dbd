package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/oxdclient"
)

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestNewValidation(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	good := func() Config {
		return Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"}
	}
	cases := []struct {
		name string
		mod  func(*Config)
		sm   func(*scs.SessionManager)
	}{
		{"no site", func(c *Config) { c.OxdID = "" }, nil},
		{"both site and file", func(c *Config) { c.SiteFile = "x.json" }, nil},
		{"missing site file", func(c *Config) { c.OxdID = ""; c.SiteFile = filepath.Join(t.TempDir(), "none.json") }, nil},
		{"no post-logout URI", func(c *Config) { c.PostLogoutRedirectURI = "" }, nil},
		{"relative post-logout URI", func(c *Config) { c.PostLogoutRedirectURI = "/bye" }, nil},
		{"javascript post-logout URI", func(c *Config) { c.PostLogoutRedirectURI = "javascript:alert(1)" }, nil},
		{"relative redirect URL", func(c *Config) { c.RedirectURL = "/callback" }, nil},
		{"plain-http redirect URL with Secure cookies", func(c *Config) { c.RedirectURL = "http://app.example/callback" }, nil},
		{"scopes without openid", func(c *Config) { c.Scopes = []string{"profile"} }, nil},
		{"scope with space", func(c *Config) { c.Scopes = []string{"openid", "a b"} }, nil},
		{"acr with quote", func(c *Config) { c.AcrValues = []string{`a"`} }, nil},
		{"unknown prompt", func(c *Config) { c.Prompt = "maybe" }, nil},
		{"reserved custom parameter", func(c *Config) { c.CustomParameters = map[string]string{"state": "x"} }, nil},
		{"reserved custom parameter case", func(c *Config) { c.CustomParameters = map[string]string{"Redirect_URI": "x"} }, nil},
		{"off-site default return-to", func(c *Config) { c.DefaultReturnTo = "//evil.example" }, nil},
		{"negative timeout", func(c *Config) { c.CallTimeout = -1 }, nil},
		{"logout method PUT", func(c *Config) { c.LogoutMethods = []string{"PUT"} }, nil},
		{"bad trusted origin", func(c *Config) { c.TrustedOrigins = []string{"not an origin"} }, nil},
		{"realm with quote", func(c *Config) { c.Realm = `a"b` }, nil},
		{"SameSite Strict", nil, func(sm *scs.SessionManager) { sm.Cookie.SameSite = http.SameSiteStrictMode }},
		{"SameSite None insecure", func(c *Config) { c.InsecureCookies = true }, func(sm *scs.SessionManager) { sm.Cookie.SameSite = http.SameSiteNoneMode }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good()
			if c.mod != nil {
				c.mod(&cfg)
			}
			sm := scs.New()
			if c.sm != nil {
				c.sm(sm)
			}
			if _, err := New(client, sm, cfg); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
	t.Run("nil client", func(t *testing.T) {
		if _, err := New(nil, scs.New(), good()); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("nil sessions", func(t *testing.T) {
		if _, err := New(client, nil, good()); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("valid with everything", func(t *testing.T) {
		cfg := good()
		cfg.RedirectURL = "http://localhost:8080/callback"
		cfg.Scopes = []string{"openid", "email"}
		cfg.AcrValues = []string{"basic"}
		cfg.Prompt = "login consent"
		cfg.CustomParameters = map[string]string{"ui_locales": "de"}
		cfg.LogoutMethods = []string{"POST", "GET"}
		cfg.TrustedOrigins = []string{"https://app.example"}
		a, err := New(client, scs.New(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a.wwwAuth != `Bearer realm="localhost:8080"` {
			t.Fatalf("realm: %s", a.wwwAuth)
		}
		if a.oxdID != "id" || a.client != client {
			t.Fatal("accessors")
		}
	})
}

func TestNewDefaults(t *testing.T) {
	a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"})
	if err != nil {
		t.Fatal(err)
	}
	c := a.cfg
	if c.CallTimeout != DefaultCallTimeout || c.RefreshBefore != DefaultRefreshBefore || c.PendingLoginTTL != DefaultPendingLoginTTL ||
		c.PendingLoginLimit != DefaultPendingLoginLimit || c.DefaultReturnTo != "/" || strings.Join(c.Scopes, " ") != "openid profile email" ||
		!a.logoutPOST || a.logoutGET || a.wwwAuth != `Bearer realm="oxd"` {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestSessionCookieSecureByDefault: New makes the session cookie Secure,
// HttpOnly and SameSite=Lax; InsecureCookies drops only Secure.
func TestSessionCookieSecureByDefault(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	sm := scs.New()
	sm.Cookie.HttpOnly = false
	sm.Cookie.SameSite = 0
	if _, err := New(client, sm, Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"}); err != nil {
		t.Fatal(err)
	}
	if !sm.Cookie.Secure || !sm.Cookie.HttpOnly || sm.Cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie: %+v", sm.Cookie)
	}
	sm2 := scs.New()
	sm2.Cookie.Secure = true
	if _, err := New(client, sm2, Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye", InsecureCookies: true}); err != nil {
		t.Fatal(err)
	}
	if sm2.Cookie.Secure || !sm2.Cookie.HttpOnly {
		t.Fatalf("insecure cookie: %+v", sm2.Cookie)
	}

	// Over the wire: the Set-Cookie of a login carries the attributes.
	rg := newRig(t, rigOpts{})
	r := rg.get(rg.browser(), "/private/x")
	sc := r.header.Get("Set-Cookie")
	for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
}

func TestNewSiteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.json")
	if err := os.WriteFile(p, []byte(`{"oxd_id":"from-file","client_secret":"s3cr3t"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{SiteFile: p, PostLogoutRedirectURI: "https://app.example/bye"})
	if err != nil {
		t.Fatal(err)
	}
	if a.oxdID != "from-file" {
		t.Fatalf("oxd_id %q", a.oxdID)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"client_secret":"s3cr3t"}`), 0o600)
	_, err = New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{SiteFile: bad, PostLogoutRedirectURI: "https://app.example/bye"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err %v", err)
	}
}

// TestLoginFlowReturnToAndClaims: a browser asking for a protected page is
// sent to the OP, comes back through the callback and lands on the page it
// asked for, with the user in the request context.
func TestLoginFlowReturnToAndClaims(t *testing.T) {
	for _, wrapped := range []bool{true, false} {
		name := "LoadAndSave"
		if !wrapped {
			name = "self-loading"
		}
		t.Run(name, func(t *testing.T) {
			rg := newRig(t, rigOpts{noLoadAndSave: !wrapped})
			b := rg.browser()
			r := rg.login(b, "/private/page?x=1&y=%2F", "alice")
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/page?x=1&y=%2F" {
				t.Fatalf("callback: %d %q", r.status, r.header.Get("Location"))
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("callback Cache-Control %q", r.header.Get("Cache-Control"))
			}
			r = rg.get(b, "/private/page?x=1&y=%2F")
			if r.status != 200 || !strings.Contains(r.body, "sub=alice email=alice@example.test name=User alice at=AT-") {
				t.Fatalf("protected page: %d %q", r.status, r.body)
			}
			if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "oxd_id"); got != "oxd-id-1" {
				t.Fatalf("oxd_id sent %v", got)
			}
			if n := rg.fake.count(oxdclient.CmdGetTokensByCode); n != 1 {
				t.Fatalf("get_tokens_by_code calls %d", n)
			}
			// Logged-in requests make no oxd call.
			before := rg.fake.total()
			for range 5 {
				rg.get(b, "/private/other")
			}
			if rg.fake.total() != before {
				t.Fatal("oxd called on a logged-in request")
			}
		})
	}
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

// TestLoginCSRFStateFromAnotherBrowser: an attacker starts a login in his
// own browser, signs in at the OP and sends the callback URL (his state and
// code) to the victim. The victim's browser must not be logged in as the
// attacker and the code must not be exchanged.
func TestLoginCSRFStateFromAnotherBrowser(t *testing.T) {
	rg := newRig(t, rigOpts{})
	attacker, victim := rg.browser(), rg.browser()
	st := rg.startLogin(attacker, "/private/")
	code := rg.fake.issueCode(st, "mallory")

	for _, withPending := range []bool{false, true} {
		if withPending {
			rg.startLogin(victim, "/private/mine") // the victim has a login of its own in progress
		} else {
			rg.get(victim, "/public") // the victim has no session at all
		}
		r := rg.get(victim, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(st))
		if r.status != http.StatusBadRequest {
			t.Fatalf("pending=%v: status %d", withPending, r.status)
		}
		if withPending && !errors.Is(rg.lastErr(), ErrStateMismatch) {
			t.Fatalf("reason %v", rg.lastErr())
		}
		if !withPending && !errors.Is(rg.lastErr(), ErrSessionCookieMissing) && !errors.Is(rg.lastErr(), ErrStateMismatch) {
			t.Fatalf("reason %v", rg.lastErr())
		}
		if n := rg.fake.count(oxdclient.CmdGetTokensByCode); n != 0 {
			t.Fatalf("code exchanged %d times", n)
		}
		if r := rg.get(victim, "/private/"); r.status != http.StatusSeeOther {
			t.Fatalf("victim logged in: %d", r.status)
		}
	}
}

// TestStateReplay: a used callback URL cannot be used again.
func TestStateReplay(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/")
	code := rg.fake.issueCode(st, "alice")
	cb := "/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(st)
	if r := rg.get(b, cb); r.status != http.StatusSeeOther {
		t.Fatalf("first: %d", r.status)
	}
	calls := rg.fake.total()
	r := rg.get(b, cb)
	if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrStateMismatch) {
		t.Fatalf("replay: %d %v", r.status, rg.lastErr())
	}
	if rg.fake.total() != calls {
		t.Fatal("replayed callback called oxd")
	}
	// The replay in another browser fails the same way.
	r = rg.get(rg.browser(), cb)
	if r.status != http.StatusBadRequest || rg.fake.total() != calls {
		t.Fatalf("replay elsewhere: %d", r.status)
	}
}

// TestCodeReplay: a code that was already exchanged, presented with a fresh
// and valid state of another login, is refused by oxd/the OP; nobody is
// logged in with it.
func TestCodeReplay(t *testing.T) {
	rg := newRig(t, rigOpts{})
	victim, attacker := rg.browser(), rg.browser()
	st := rg.startLogin(victim, "/private/")
	code := rg.fake.issueCode(st, "alice")
	if r := rg.get(victim, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(st)); r.status != http.StatusSeeOther {
		t.Fatalf("victim login: %d", r.status)
	}
	ast := rg.startLogin(attacker, "/private/")
	r := rg.get(attacker, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(ast))
	if r.status != http.StatusBadGateway || !errors.Is(rg.lastErr(), ErrCommand) {
		t.Fatalf("replayed code: %d %v", r.status, rg.lastErr())
	}
	if r := rg.get(attacker, "/private/"); r.status != http.StatusSeeOther {
		t.Fatalf("attacker logged in: %d", r.status)
	}
	// The state was spent with the failed attempt.
	r = rg.get(attacker, "/callback?code=x&state="+url.QueryEscape(ast))
	if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrStateMismatch) {
		t.Fatalf("second try: %d %v", r.status, rg.lastErr())
	}
}

// TestMissingState: a callback without state is refused without an oxd
// call, even with a pending login.
func TestMissingState(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.startLogin(b, "/private/")
	calls := rg.fake.total()
	for _, q := range []string{"?code=abc", "?code=abc&state=", ""} {
		r := rg.get(b, "/callback"+q)
		if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrStateMissing) {
			t.Fatalf("%q: %d %v", q, r.status, rg.lastErr())
		}
	}
	if rg.fake.total() != calls {
		t.Fatal("oxd called")
	}
}

// TestCodeMissing: a valid state without code is refused; the pending
// login is spent.
func TestCodeMissing(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/")
	r := rg.get(b, "/callback?state="+url.QueryEscape(st))
	if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrCodeMissing) {
		t.Fatalf("%d %v", r.status, rg.lastErr())
	}
	if rg.fake.count(oxdclient.CmdGetTokensByCode) != 0 {
		t.Fatal("oxd called")
	}
}

// TestOPErrorParams: the OP's error parameters give a clear 400 whose page
// escapes what the OP (or an attacker crafting the URL) sent, and no oxd
// call.
func TestOPErrorParams(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/")
	calls := rg.fake.total()
	r := rg.get(b, "/callback?error=access_denied&error_description="+url.QueryEscape(`<script>alert("x")</script> &amp; user said no`)+"&state="+url.QueryEscape(st))
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d", r.status)
	}
	var ope *OPError
	if !errors.As(rg.lastErr(), &ope) || ope.Code != "access_denied" || !errors.Is(rg.lastErr(), ErrOPError) {
		t.Fatalf("reason %v", rg.lastErr())
	}
	if strings.Contains(r.body, "<script>") || !strings.Contains(r.body, "&lt;script&gt;") || !strings.Contains(r.body, "access_denied") {
		t.Fatalf("page not escaped: %q", r.body)
	}
	if !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatal("no CSP on the error page")
	}
	if rg.fake.total() != calls {
		t.Fatal("oxd called")
	}
	// The attempt is over: the same state is now unknown.
	rg.get(b, "/callback?code=x&state="+url.QueryEscape(st))
	if !errors.Is(rg.lastErr(), ErrStateMismatch) {
		t.Fatalf("pending login survived the OP error: %v", rg.lastErr())
	}
	// A code with markup is not reflected.
	r = rg.get(b, "/callback?error="+url.QueryEscape(`<img src=x>`))
	if !errors.As(rg.lastErr(), &ope) || ope.Code != "invalid_error_code" || strings.Contains(r.body, "<img") {
		t.Fatalf("code reflected: %v %q", rg.lastErr(), r.body)
	}
	// JSON for API clients.
	r = rg.do(b, "GET", "/callback?error=login_required", map[string]string{"Accept": "application/json"})
	if !strings.Contains(r.body, `"error":"op_error"`) || !strings.Contains(r.header.Get("Content-Type"), "json") {
		t.Fatalf("json: %q", r.body)
	}
}

// TestOPErrorDescriptionOnlyForOwnLogin: a crafted callback link without a
// login started in this browser cannot put its text on the error page.
func TestOPErrorDescriptionOnlyForOwnLogin(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	const bait = "Your account is locked, call 555-0100"
	r := rg.get(b, "/callback?error=access_denied&state=forged&error_description="+url.QueryEscape(bait))
	if r.status != http.StatusBadRequest || strings.Contains(r.body, "555-0100") || !strings.Contains(r.body, "access_denied") {
		t.Fatalf("crafted description shown: %d %q", r.status, r.body)
	}
	st := rg.startLogin(b, "/private/")
	r = rg.get(b, "/callback?error=access_denied&state="+url.QueryEscape(st)+"&error_description="+url.QueryEscape(bait))
	if !strings.Contains(r.body, "555-0100") {
		t.Fatalf("the OP's description of this browser's login is not shown: %q", r.body)
	}
}

// TestCallbackOversizedParams: oversized or repeated parameters are
// refused with 400 before anything else happens.
func TestCallbackOversizedParams(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/")
	calls := rg.fake.total()
	long := strings.Repeat("a", 5000)
	for name, q := range map[string]string{
		"long state":       "code=x&state=" + strings.Repeat("s", 600),
		"long code":        "code=" + long + "&state=" + st,
		"long query":       "code=x&state=" + st + "&junk=" + strings.Repeat("j", 9000),
		"repeated state":   "code=x&state=" + st + "&state=" + st,
		"repeated code":    "code=x&code=y&state=" + st,
		"long error":       "error=" + strings.Repeat("e", 200),
		"long description": "error=x&error_description=" + strings.Repeat("d", 2000),
		"bad escape":       "code=x&state=%zz",
	} {
		r := rg.get(b, "/callback?"+q)
		if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrBadCallback) {
			t.Errorf("%s: %d %v", name, r.status, rg.lastErr())
		}
	}
	if rg.fake.total() != calls {
		t.Fatal("oxd called")
	}
	// The pending login is intact: the real callback still works.
	if r := rg.finish(b, st, "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("real callback: %d", r.status)
	}
	// Methods other than GET.
	r := rg.do(b, "POST", "/callback?state=x&code=y", nil)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET" {
		t.Fatalf("POST: %d", r.status)
	}
}

// TestSessionFixation: the session token changes when the user logs in and
// when the user logs out; a token planted before login grants nothing.
func TestSessionFixation(t *testing.T) {
	rg := newRig(t, rigOpts{})
	victim := rg.browser()
	st := rg.startLogin(victim, "/private/")
	planted := rg.sessionCookie(victim)
	if planted == "" {
		t.Fatal("no session before login")
	}
	if r := rg.finish(victim, st, "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	after := rg.sessionCookie(victim)
	if after == "" || after == planted {
		t.Fatalf("session token not renewed at login (%q → %q)", planted, after)
	}
	// An attacker who knew the pre-login token is not logged in.
	attacker := rg.browser()
	u, _ := url.Parse(rg.srv.URL)
	attacker.Jar.SetCookies(u, []*http.Cookie{{Name: rg.sm.Cookie.Name, Value: planted, Path: "/"}})
	if r := rg.get(attacker, "/private/"); r.status != http.StatusSeeOther {
		t.Fatalf("planted token grants access: %d", r.status)
	}
	// Logout: the session is destroyed and the old token is worthless.
	r := rg.do(victim, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if c := rg.sessionCookie(victim); c == after {
		t.Fatal("session cookie unchanged by logout")
	}
	replay := rg.browser()
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: rg.sm.Cookie.Name, Value: after, Path: "/"}})
	if r := rg.get(replay, "/private/"); r.status != http.StatusSeeOther {
		t.Fatalf("logged-out token still valid: %d", r.status)
	}
	// A new login after logout gets yet another token.
	rg.login(victim, "/private/", "alice")
	if c := rg.sessionCookie(victim); c == "" || c == after || c == planted {
		t.Fatal("token reused after logout")
	}
}

// TestSeveralTabsLogInAtOnce: logins started in several tabs of one browser
// complete in any order, each to its own return-to.
func TestSeveralTabsLogInAtOnce(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	s1 := rg.startLogin(b, "/private/one")
	s2 := rg.startLogin(b, "/private/two")
	s3 := rg.startLogin(b, "/private/three")
	for _, c := range []struct{ st, want string }{{s2, "/private/two"}, {s1, "/private/one"}, {s3, "/private/three"}} {
		r := rg.finish(b, c.st, "alice")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != c.want {
			t.Fatalf("%s: %d %q (%v)", c.want, r.status, r.header.Get("Location"), rg.lastErr())
		}
	}
}

// TestPendingLoginLimit: beyond the limit the oldest pending login is
// dropped.
func TestPendingLoginLimit(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.PendingLoginLimit = 3 }})
	b := rg.browser()
	var states []string
	for i := range 5 {
		states = append(states, rg.startLogin(b, "/private/"+string(rune('a'+i))))
	}
	r := rg.finish(b, states[0], "alice")
	if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrStateMismatch) {
		t.Fatalf("oldest: %d %v", r.status, rg.lastErr())
	}
	r = rg.finish(b, states[4], "alice")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/e" {
		t.Fatalf("newest: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestPendingLoginExpiredRestartsLogin: a callback for a login older than
// PendingLoginTTL restarts the login for the same return-to, without
// exchanging the code.
func TestPendingLoginExpiredRestartsLogin(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/deep?a=b")
	rg.advance(DefaultPendingLoginTTL + time.Second)
	r := rg.finish(b, st, "alice")
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || loc == nil || loc.Host != "op.example" {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	if rg.fake.count(oxdclient.CmdGetTokensByCode) != 0 {
		t.Fatal("expired login exchanged its code")
	}
	r = rg.finish(b, loc.Query().Get("state"), "alice")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/deep?a=b" {
		t.Fatalf("restarted login: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestStateNotRegisteredRestartsLogin: when oxd no longer knows the state
// (it expired on oxd's side), the callback restarts the login instead of
// failing with a 5xx, and the return-to survives.
func TestStateNotRegisteredRestartsLogin(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/kept")
	rg.fake.mu.Lock()
	delete(rg.fake.states, st) // oxd forgot it
	rg.fake.mu.Unlock()
	r := rg.finish(b, st, "alice")
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || loc.Host != "op.example" {
		t.Fatalf("%d %q %v", r.status, r.header.Get("Location"), rg.lastErr())
	}
	r = rg.finish(b, loc.Query().Get("state"), "alice")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/kept" {
		t.Fatalf("restarted: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestStateNotRegisteredNoRedirectLoop: when oxd keeps losing states
// (several oxd instances without a shared store), the restarts stop after
// a few rounds with an error page instead of an endless redirect loop.
func TestStateNotRegisteredNoRedirectLoop(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	st := rg.startLogin(b, "/private/x")
	for round := 0; ; round++ {
		if round > maxLoginRestarts+1 {
			t.Fatal("redirect loop")
		}
		rg.fake.mu.Lock()
		clear(rg.fake.states)
		rg.fake.mu.Unlock()
		r := rg.finish(b, st, "alice")
		if r.status == http.StatusSeeOther {
			loc, _ := url.Parse(r.header.Get("Location"))
			st = loc.Query().Get("state")
			continue
		}
		if r.status != http.StatusBadGateway || !oxdclient.IsStateNotRegistered(rg.lastErr()) || round != maxLoginRestarts {
			t.Fatalf("round %d: %d %v", round, r.status, rg.lastErr())
		}
		break
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
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

// TestAuthorizationURLWithoutState: an oxd answer without a usable state is
// a 502, not a login that can never complete.
func TestAuthorizationURLWithoutState(t *testing.T) {
	rg := newRig(t, rigOpts{})
	for _, u := range []string{"https://op.example/authorize?client_id=x", "/relative?state=x", "https://op.example/a?state=1&state=2", "javascript:alert(1)//?state=x"} {
		a, err := New(oxdclient.New(&fixedAuthURL{u}, oxdclient.Config{}), rg.sm, Config{OxdID: "x", PostLogoutRedirectURI: "https://app.example/"})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "https://app.example/private/", nil)
		rg.sm.LoadAndSave(a.RequireLogin(http.NotFoundHandler())).ServeHTTP(w, req)
		if w.Code != http.StatusBadGateway || w.Header().Get("Location") != "" {
			t.Fatalf("%q: %d %q", u, w.Code, w.Header().Get("Location"))
		}
	}
}

type fixedAuthURL struct{ u string }

func (f *fixedAuthURL) Do(_ context.Context, _ string, _, result any) error {
	b, _ := json.Marshal(map[string]string{"authorization_url": f.u})
	return json.Unmarshal(b, result)
}

// TestSubjectMismatch: userinfo for another subject than the ID token is
// refused.
func TestSubjectMismatch(t *testing.T) {
	rg := newRig(t, rigOpts{})
	rg.fake.uiSub = "mallory"
	b := rg.browser()
	r := rg.login(b, "/private/", "alice")
	if r.status != http.StatusBadGateway || !errors.Is(rg.lastErr(), ErrSubjectMismatch) {
		t.Fatalf("%d %v", r.status, rg.lastErr())
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("logged in")
	}
}

// TestACRCheck: with AcrValues, an ID token with another acr is refused
// (acr_values can be edited in the address bar).
func TestACRCheck(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.AcrValues = []string{"otp"} }})
	rg.fake.acr = "basic"
	if r := rg.login(rg.browser(), "/private/", "alice"); r.status != http.StatusForbidden || !errors.Is(rg.lastErr(), ErrACRMismatch) {
		t.Fatalf("%d %v", r.status, rg.lastErr())
	}
	if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "acr_values"); got == nil {
		t.Fatal("acr_values not sent")
	}
	rg.fake.acr = "otp"
	if r := rg.login(rg.browser(), "/private/", "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("%d %v", r.status, rg.lastErr())
	}
	rg2 := newRig(t, rigOpts{cfg: func(c *Config) { c.AcrValues = []string{"otp"}; c.InsecureSkipACRCheck = true }})
	if r := rg2.login(rg2.browser(), "/private/", "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("skip: %d %v", r.status, rg2.lastErr())
	}
}

// TestRefreshBeforeExpiry: a token close to expiry is refreshed once, even
// by many parallel requests of the session, and the handler sees the new
// token.
func TestRefreshBeforeExpiry(t *testing.T) {
	rg := newRig(t, rigOpts{})
	rg.fake.expiresIn = 600
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	r := rg.get(b, "/private/")
	oldAT := r.body[strings.Index(r.body, "at=")+3 : strings.Index(r.body, " uri=")]
	rg.advance(9*time.Minute + 30*time.Second) // 30s left, RefreshBefore is 1m

	// Slow the refresh down so that all requests overlap.
	release := make(chan struct{})
	rg.fake.setHook(oxdclient.CmdGetAccessTokenByRefreshToken, func(ctx context.Context) error {
		<-release
		return nil
	})
	var wg sync.WaitGroup
	bodies := make([]string, 8)
	for i := range bodies {
		wg.Go(func() { bodies[i] = rg.get(b, "/private/").body })
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken); n != 1 {
		t.Fatalf("refresh calls %d, want 1", n)
	}
	newAT := ""
	for _, body := range bodies {
		at := body[strings.Index(body, "at=")+3 : strings.Index(body, " uri=")]
		if at == oldAT {
			t.Fatal("a request saw the old token")
		}
		if newAT != "" && at != newAT {
			t.Fatal("requests saw different new tokens")
		}
		newAT = at
	}
	// Later requests use the stored new token without refreshing.
	r = rg.get(b, "/private/")
	if !strings.Contains(r.body, "at="+newAT) || rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken) != 1 {
		t.Fatalf("after refresh: %q", r.body)
	}
}

// TestRefreshLateRequestWithOldToken: a request that loaded the session
// before the refreshed tokens were saved (it still has the spent refresh
// token) gets the same refresh result, not a second refresh that a
// rotating OP would refuse.
func TestRefreshLateRequestWithOldToken(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.advance(59*time.Minute + 30*time.Second)
	ctx, err := rg.sm.Load(context.Background(), rg.sessionCookie(b))
	if err != nil {
		t.Fatal(err)
	}
	old := rg.auth.sessionUser(ctx)
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	u1, st1, err1 := rg.auth.refreshUser(req, old)
	ctx2, _ := rg.sm.Load(context.Background(), rg.sessionCookie(b))
	u2, st2, err2 := rg.auth.refreshUser(req.WithContext(ctx2), old)
	if err1 != nil || err2 != nil || st1 != 0 || st2 != 0 {
		t.Fatal(err1, err2)
	}
	if u1.accessToken != u2.accessToken || u1.refreshToken != u2.refreshToken {
		t.Fatal("late request got a different refresh")
	}
	if n := rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken); n != 1 {
		t.Fatalf("refresh calls %d", n)
	}
}

// TestRefreshFailureEndsSession: when the OP refuses the refresh, the
// session ends: a browser is sent to log in again, an API request gets 401.
func TestRefreshFailureEndsSession(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b, api := rg.browser(), rg.browser()
	rg.login(b, "/private/", "alice")
	rg.login(api, "/private/", "bob")
	rg.fake.mu.Lock()
	clear(rg.fake.refresh) // every refresh token revoked
	rg.fake.mu.Unlock()
	rg.advance(time.Hour)

	r := rg.get(b, "/private/page")
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || loc.Host != "op.example" {
		t.Fatalf("browser: %d %q", r.status, r.header.Get("Location"))
	}
	r = rg.do(api, "GET", "/private/api", map[string]string{"Accept": "application/json"})
	if r.status != http.StatusUnauthorized || !errors.Is(rg.lastErr(), ErrRefreshFailed) || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("api: %d %v", r.status, rg.lastErr())
	}
	// The session is gone: no second refresh attempt.
	calls := rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken)
	rg.do(api, "GET", "/private/api", map[string]string{"Accept": "application/json"})
	if !errors.Is(rg.lastErr(), ErrLoginRequired) || rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken) != calls {
		t.Fatalf("session not ended: %v", rg.lastErr())
	}
}

// TestRefreshOxdDownKeepsSession: oxd unreachable during a refresh keeps
// the session: the still-valid token is used; once expired, 503.
func TestRefreshOxdDownKeepsSession(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.fake.setFail(oxdclient.CmdGetAccessTokenByRefreshToken, &oxdclient.TransportError{Command: "x", Kind: oxdclient.ErrUnavailable})
	rg.advance(59*time.Minute + 30*time.Second)
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatalf("still valid: %d", r.status)
	}
	rg.advance(time.Minute)
	if r := rg.get(b, "/private/"); r.status != http.StatusServiceUnavailable || !errors.Is(rg.lastErr(), ErrUnavailable) {
		t.Fatalf("expired: %d %v", r.status, rg.lastErr())
	}
	rg.fake.setFail(oxdclient.CmdGetAccessTokenByRefreshToken, nil)
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatalf("recovered: %d %v", r.status, rg.lastErr())
	}
}

// TestNoRefreshToken: without a refresh token nothing is refreshed; the
// session lives on (its lifetime is scs's).
func TestNoRefreshToken(t *testing.T) {
	rg := newRig(t, rigOpts{})
	rg.fake.noRefresh = true
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.advance(2 * time.Hour)
	if r := rg.get(b, "/private/"); r.status != 200 || rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken) != 0 {
		t.Fatalf("%d", r.status)
	}
}

// TestLogout: POST /logout asks oxd for the OP's end-session URL with
// id_token_hint and post_logout_redirect_uri, destroys the session and
// redirects there.
func TestLogout(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	r := rg.do(b, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "https://op.example/end_session?") {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	if h, _ := rg.fake.param(oxdclient.CmdGetLogoutURI, "id_token_hint").(string); !strings.HasPrefix(h, "IDT-") {
		t.Fatalf("id_token_hint %q", h)
	}
	if p := rg.fake.param(oxdclient.CmdGetLogoutURI, "post_logout_redirect_uri"); p != "https://app.example/logged-out" {
		t.Fatalf("post_logout_redirect_uri %v", p)
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("still logged in")
	}
	// Logging out without a session: no oxd call, straight to the landing.
	calls := rg.fake.count(oxdclient.CmdGetLogoutURI)
	r = rg.do(rg.browser(), "POST", "/logout", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "https://app.example/logged-out" || rg.fake.count(oxdclient.CmdGetLogoutURI) != calls {
		t.Fatalf("anonymous logout: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestLogoutCrossOriginRefused: a cross-site POST (logout CSRF) is refused
// and the user stays logged in.
func TestLogoutCrossOriginRefused(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		r := rg.do(b, "POST", "/logout", h)
		if r.status != http.StatusForbidden || !errors.Is(rg.lastErr(), ErrCrossOrigin) {
			t.Fatalf("%v: %d", h, r.status)
		}
	}
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatal("logged out by a cross-site request")
	}
	if rg.fake.count(oxdclient.CmdGetLogoutURI) != 0 {
		t.Fatal("oxd called")
	}
}

// TestLogoutMethods: GET is refused unless configured.
func TestLogoutMethods(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	if r := rg.get(b, "/logout"); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", r.status)
	}
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatal("logged out by GET")
	}
	rg2 := newRig(t, rigOpts{cfg: func(c *Config) { c.LogoutMethods = []string{"GET", "POST"} }})
	b2 := rg2.browser()
	rg2.login(b2, "/private/", "alice")
	if r := rg2.get(b2, "/logout"); r.status != http.StatusSeeOther {
		t.Fatalf("configured GET: %d", r.status)
	}
	if r := rg2.get(b2, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("still logged in")
	}
}

// TestLogoutOxdDown: when oxd cannot give the end-session URL, the local
// session is still destroyed and the browser goes to the landing page.
func TestLogoutOxdDown(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.fake.setFail(oxdclient.CmdGetLogoutURI, &oxdclient.Error{Code: oxdclient.CodeNoEndSessionEndpoint})
	r := rg.do(b, "POST", "/logout", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "https://app.example/logged-out" {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("still logged in")
	}
}

// TestSecretsAbsentFromLogsAndErrors runs logins, refreshes, failures and
// logouts with debug logging and checks that no token or code the fake
// oxd issued appears in the logs, in an error string or in a response
// body other than the test page that prints the access token on purpose.
func TestSecretsAbsentFromLogsAndErrors(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.advance(59*time.Minute + 30*time.Second)
	rg.get(b, "/private/")
	// Failures with secrets around: replayed code, refused refresh, oxd down.
	st := rg.startLogin(rg.browser(), "/private/")
	_ = st
	victim := rg.browser()
	vst := rg.startLogin(victim, "/private/")
	code := rg.fake.issueCode(vst, "alice")
	rg.get(victim, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(vst))
	attacker := rg.browser()
	ast := rg.startLogin(attacker, "/private/")
	var bodies []string
	bodies = append(bodies, rg.get(attacker, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(ast)).body)
	bodies = append(bodies, rg.get(attacker, "/callback?code="+url.QueryEscape(code)+"&state=forged").body)
	rg.fake.mu.Lock()
	clear(rg.fake.refresh)
	rg.fake.mu.Unlock()
	rg.advance(2 * time.Hour)
	bodies = append(bodies, rg.do(victim, "GET", "/private/", map[string]string{"Accept": "application/json"}).body)
	rg.login(b, "/private/", "alice")
	rg.fake.setFail(oxdclient.CmdGetLogoutURI, &oxdclient.TransportError{Command: "get_logout_uri", Kind: oxdclient.ErrTimeout})
	bodies = append(bodies, rg.do(b, "POST", "/logout", nil).body)

	secrets := rg.fake.allSecrets()
	if len(secrets) < 6 {
		t.Fatalf("only %d secrets issued", len(secrets))
	}
	logs := rg.logs.String()
	if !strings.Contains(logs, "login completed") || !strings.Contains(logs, "refreshed") {
		t.Fatalf("logs do not cover the flows:\n%s", logs)
	}
	rg.mu.Lock()
	var errs []string
	for _, e := range rg.errs {
		errs = append(errs, e.Error())
	}
	rg.mu.Unlock()
	if len(errs) < 3 {
		t.Fatalf("only %d errors", len(errs))
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("secret %s… in logs", s[:6])
		}
		for _, e := range errs {
			if strings.Contains(e, s) {
				t.Errorf("secret %s… in error %q", s[:6], e)
			}
		}
		for _, body := range bodies {
			if strings.Contains(body, s) {
				t.Errorf("secret %s… in a response", s[:6])
			}
		}
	}
}

// TestErrorHandlerCustom: a custom handler gets the status and a typed
// reason, and its response is what the client sees.
func TestErrorHandlerCustom(t *testing.T) {
	var got []error
	var mu sync.Mutex
	rg := newRig(t, rigOpts{cfg: func(c *Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, status int, err error) {
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "custom")
		}
	}})
	r := rg.get(rg.browser(), "/callback?code=x")
	if r.status != 400 || r.body != "custom" {
		t.Fatalf("%d %q", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !errors.Is(got[0], ErrStateMissing) {
		t.Fatalf("%v", got)
	}
}

// TestReasonsAreDistinct: every sentinel maps to its own code in the
// default error page.
func TestReasonsAreDistinct(t *testing.T) {
	seen := map[string]error{}
	for _, e := range []error{ErrLoginRequired, ErrStateMissing, ErrStateMismatch, ErrSessionCookieMissing, ErrCodeMissing,
		ErrBadCallback, &OPError{Code: "x"}, ErrACRMismatch, ErrSubjectMismatch, ErrUnavailable, ErrTimeout,
		ErrCommand, ErrRefreshFailed, ErrCrossOrigin, ErrMethodNotAllowed, ErrSession,
		ErrUMAChallenge, ErrUMAUnreachable, ErrUMAConfig, ErrUMADenied, ErrUMAClaims, ErrUMASharedRPT} {
		code, msg := reason(e)
		if code == "error" || msg == "" {
			t.Errorf("%v: no reason", e)
		}
		if prev, ok := seen[code]; ok {
			t.Errorf("%v and %v share %s", prev, e, code)
		}
		seen[code] = e
	}
}

// TestLoginHandler: a logged-in browser goes straight to the (validated)
// return-to; methods other than GET/HEAD are refused.
func TestLoginHandler(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	r := rg.login(b, "/login?return_to="+url.QueryEscape("/private/from-link"), "alice")
	if r.header.Get("Location") != "/private/from-link" {
		t.Fatalf("return_to: %q", r.header.Get("Location"))
	}
	calls := rg.fake.total()
	for q, want := range map[string]string{"/private/x": "/private/x", "//evil.example": "/", "": "/"} {
		r := rg.get(b, "/login?return_to="+url.QueryEscape(q))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Fatalf("%q: %d %q", q, r.status, r.header.Get("Location"))
		}
	}
	if rg.fake.total() != calls {
		t.Fatal("oxd called for a logged-in browser")
	}
	if r := rg.do(b, "POST", "/login", nil); r.status != http.StatusMethodNotAllowed || !errors.Is(rg.lastErr(), ErrMethodNotAllowed) {
		t.Fatalf("POST: %d", r.status)
	}
}

// TestRefreshMemoryBounded: remembered refresh results never exceed the
// bound, and expired ones go first.
func TestRefreshMemoryBounded(t *testing.T) {
	var f refresher
	f.init()
	now := time.Now()
	for i := range maxRecentRefreshes + 100 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		at := now
		if i < 50 {
			at = now.Add(-time.Hour) // already expired
		}
		f.remember(k, refreshResult{access: "a"}, at)
		if len(f.recent) > maxRecentRefreshes {
			t.Fatalf("%d entries", len(f.recent))
		}
	}
	var last [32]byte
	i := maxRecentRefreshes + 99
	last[0], last[1], last[2] = byte(i), byte(i>>8), byte(i>>16)
	if _, ok := f.lookup(last, now); !ok {
		t.Fatal("newest result forgotten")
	}
	if _, ok := f.lookup(last, now.Add(refreshGrace+time.Second)); ok {
		t.Fatal("result kept past the grace period")
	}
}
