package oxd

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

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
// when the user logs out; a token planted before login grants nothing. A
// login creates no session before the callback; the browser here has one
// from the application's own use of the session.
func TestSessionFixation(t *testing.T) {
	rg := newRig(t, rigOpts{})
	victim := rg.browser()
	rg.get(victim, "/visit")
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
