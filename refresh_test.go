package oxd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

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
// session lives while the access token does.
func TestNoRefreshToken(t *testing.T) {
	rg := newRig(t, rigOpts{})
	rg.fake.noRefresh = true
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.advance(59 * time.Minute)
	if r := rg.get(b, "/private/"); r.status != 200 || rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken) != 0 {
		t.Fatalf("%d", r.status)
	}
}

// TestExpiredTokenWithoutRefreshReauthenticates (token lifetime): once the
// access token has expired and there is no refresh token, the session
// ends: a browser navigation goes through the OP again (and comes back to
// the page it asked for), an API request gets 401; neither sees the
// expired token. InsecureKeepSessionPastTokenExpiry restores the old
// behaviour.
func TestExpiredTokenWithoutRefreshReauthenticates(t *testing.T) {
	t.Run("browser", func(t *testing.T) {
		rg := newRig(t, rigOpts{})
		rg.fake.noRefresh = true
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		rg.advance(time.Hour + time.Second)
		st := rg.startLogin(b, "/private/page?x=1")
		if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "prompt"); got != nil {
			t.Fatalf("prompt %v sent without SilentReauthentication", got)
		}
		if r := rg.get(b, "/public"); r.body != "hello stranger" {
			t.Fatalf("the session outlived its access token: %q", r.body)
		}
		if r := rg.finish(b, st, "alice"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/page?x=1" {
			t.Fatalf("re-authentication: %d %q", r.status, r.header.Get("Location"))
		}
		if r := rg.get(b, "/private/page?x=1"); r.status != 200 {
			t.Fatalf("after re-authentication: %d", r.status)
		}
	})
	t.Run("api", func(t *testing.T) {
		rg := newRig(t, rigOpts{})
		rg.fake.noRefresh = true
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		rg.advance(time.Hour + time.Second)
		r := rg.do(b, "GET", "/private/api", map[string]string{"Accept": "application/json"})
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" || r.header.Get("Location") != "" ||
			!errors.Is(rg.lastErr(), ErrLoginRequired) || strings.Contains(r.body, "AT-") {
			t.Fatalf("%d %q %v", r.status, r.body, rg.lastErr())
		}
		if r := rg.get(b, "/public"); r.body != "hello stranger" {
			t.Fatal("the session survived")
		}
	})
	t.Run("insecure-keep", func(t *testing.T) {
		rg := newRig(t, rigOpts{cfg: func(c *Config) { c.InsecureKeepSessionPastTokenExpiry = true }})
		rg.fake.noRefresh = true
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		rg.advance(2 * time.Hour)
		if r := rg.get(b, "/private/"); r.status != 200 {
			t.Fatalf("%d", r.status)
		}
	})
	t.Run("refresh-refused", func(t *testing.T) {
		rg := newRig(t, rigOpts{})
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		rg.fake.mu.Lock()
		clear(rg.fake.refresh) // the OP revoked the grant: invalid_grant
		rg.fake.mu.Unlock()
		rg.advance(59*time.Minute + 30*time.Second)
		st := rg.startLogin(b, "/private/again")
		if n := rg.fake.count(oxdclient.CmdGetAccessTokenByRefreshToken); n != 1 {
			t.Fatalf("%d refresh attempts", n)
		}
		if r := rg.finish(b, st, "alice"); r.header.Get("Location") != "/private/again" {
			t.Fatalf("%d %q", r.status, r.header.Get("Location"))
		}
	})
}

// TestSilentReauthentication: with SilentReauthentication the
// re-authentication after an expired token asks prompt=none first; an OP
// answer needing interaction restarts the login with the usual prompt for
// the same page, and other errors are shown.
func TestSilentReauthentication(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.SilentReauthentication = true; c.Prompt = "select_account" }})
	rg.fake.noRefresh = true
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "prompt"); got != "select_account" {
		t.Fatalf("first login prompt %v", got)
	}
	rg.advance(time.Hour + time.Second)
	st := rg.startLogin(b, "/private/deep")
	if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "prompt"); got != "none" {
		t.Fatalf("silent prompt %v", got)
	}
	r := rg.get(b, "/callback?error=login_required&state="+url.QueryEscape(st))
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || loc == nil || loc.Host != "op.example" {
		t.Fatalf("after login_required: %d %q", r.status, r.header.Get("Location"))
	}
	if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "prompt"); got != "select_account" {
		t.Fatalf("restart prompt %v", got)
	}
	if r := rg.finish(b, loc.Query().Get("state"), "alice"); r.header.Get("Location") != "/private/deep" {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	// A crafted error for a normal (non-silent) login is shown, not retried.
	r = rg.get(b, "/callback?error=login_required&state=forged")
	if r.status != http.StatusBadRequest {
		t.Fatalf("forged: %d", r.status)
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
