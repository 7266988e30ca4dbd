package e2e_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/scsredis"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

// TestBackChannelLogoutCertifiedOP: oidc-provider with backchannelLogout
// on; two application replicas share Redis (scs sessions and the session
// index). In Chromium, alice has two browser sessions (two browser
// contexts, each with its own cookies) of one OP session: the first signs
// in at the OP's login page through replica A, the second carries the same
// OP session (the OP's cookies) and signs in starting at replica B without
// a password; each application session is valid on both replicas. Bob
// signs in in a third browser session. Alice signs out on the OP's own
// end-session page: the OP's logout token reaches the replicas'
// back-channel endpoint, and within one second both of alice's sessions
// are anonymous on both replicas, while bob's session is untouched.
func TestBackChannelLogoutCertifiedOP(t *testing.T) {
	op := harness.StartOIDCProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	client := oxdclient.New(engine, oxdclient.Config{})
	rdb := redis.NewClient(&redis.Options{Addr: harness.StartRedis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	store := scsredis.New(rdb)
	idx, err := redisindex.New(rdb, redisindex.Options{})
	if err != nil {
		t.Fatal(err)
	}

	var apps [2]*httptest.Server
	var handlers [2]http.Handler
	for i := range apps {
		apps[i] = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlers[i].ServeHTTP(w, r) }))
		apps[i].Config.ErrorLog = log.New(io.Discard, "", 0)
		apps[i].StartTLS()
		t.Cleanup(apps[i].Close)
	}
	// The OP (a Node process) calls the back-channel endpoint server to
	// server: plain http on loopback, served by replica B's Auth.
	var backH http.Handler
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { backH.ServeHTTP(w, r) }))
	t.Cleanup(back.Close)

	site, err := client.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                     op.Issuer(),
		AuthorizationRedirectURI:   apps[0].URL + "/callback",
		RedirectURIs:               []string{apps[1].URL + "/callback"},
		PostLogoutRedirectURI:      apps[0].URL + "/logged-out",
		Scope:                      []string{"openid", "profile", "email"},
		ResponseTypes:              []string{"code"},
		ClientName:                 "e2e back-channel logout",
		ClientBackchannelLogoutURI: back.URL + "/logout/backchannel",
	}})
	if err != nil {
		t.Fatalf("register_site at oidc-provider: %v", err)
	}
	var auths [2]*oxd.Auth
	// Both replicas open each other's pending-login cookies: one key.
	pendingKey := make([]byte, 32)
	if _, err := rand.Read(pendingKey); err != nil {
		t.Fatal(err)
	}
	for i := range apps {
		sm := scs.New()
		sm.Store = store
		a, err := oxd.New(client, sm, oxd.Config{
			OxdID:           site.OxdID,
			RedirectURL:     apps[i].URL + "/callback",
			SessionIndex:    idx,
			PendingLoginKey: pendingKey,
			Logger:          harness.DebugLogger(t, fmt.Sprintf("middleware-%d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		auths[i] = a
		mux := http.NewServeMux()
		mux.Handle("/private/", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := oxd.UserFrom(r.Context())
			fmt.Fprintf(w, "sub=%s|replica=%d", u.Subject, i)
		})))
		// Who the session is, without sending anybody to the OP.
		mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
			if u, ok := a.Authenticated(r); ok {
				fmt.Fprintf(w, "sub=%s|replica=%d", u.Subject, i)
				return
			}
			fmt.Fprintf(w, "anonymous|replica=%d", i)
		})
		mux.Handle("GET /callback", a.CallbackHandler())
		handlers[i] = sm.LoadAndSave(mux)
	}
	backH = auths[1].BackChannelLogoutHandler()

	root := demoBrowser(t)
	newSession := func(name string) *pageDriver {
		bctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		if err := chromedp.Do(bctx); err != nil {
			t.Fatalf("e2e: browser session %s: %v", name, err)
		}
		return &pageDriver{t: t, ctx: bctx}
	}
	// whoIn reads /whoami of replica i in the browser session p.
	whoIn := func(p *pageDriver, i int) string {
		t.Helper()
		p.do(fmt.Sprintf("open /whoami on replica %d", i), chromedp.Navigate(apps[i].URL+"/whoami"), chromedp.WaitReady(chromedp.CSS("body")))
		s, _, _ := strings.Cut(p.text("body"), "|")
		return strings.TrimPrefix(s, "sub=")
	}
	// signIn opens replica i's protected page in p and goes through the
	// OP's pages (login form, consent) as they come, until the page
	// shows the signed-in user.
	signIn := func(p *pageDriver, i int, user string) {
		t.Helper()
		p.do(fmt.Sprintf("open the protected page of replica %d", i), chromedp.Navigate(apps[i].URL+"/private/x"))
		deadline := time.Now().Add(45 * time.Second)
		for {
			state, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(() => {
				const b = document.body ? document.body.innerText : "";
				if (b.startsWith("sub=")) return b;
				if (document.querySelector('input[name="login"]')) return "login";
				if (document.querySelector('input[name="prompt"][value="consent"]')) return "consent";
				return "";
			})()`))
			switch {
			case err != nil:
			case strings.HasPrefix(state, "sub="):
				// The OP sends the browser back to the site's registered
				// callback (replica A's); the session is both replicas'.
				if want := "sub=" + user + "|"; !strings.HasPrefix(state, want) {
					t.Fatalf("e2e: signing in through replica %d shows %q, want %s…", i, state, want)
				}
				return
			case state == "login":
				p.do("sign in at oidc-provider",
					chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), user),
					chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), user+"-password"),
					chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
					chromedp.WaitNotPresent(chromedp.CSS(`input[name="login"]`)))
				continue
			case state == "consent":
				p.do("consent at oidc-provider",
					chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
					chromedp.WaitNotPresent(chromedp.CSS(`input[name="prompt"][value="consent"]`)))
				continue
			}
			if time.Now().After(deadline) {
				p.screenshot("sign-in-stuck")
				t.Fatalf("e2e: signing %s in through replica %d did not finish (at %s)", user, i, p.location())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// sessionCookie is the application's session cookie of p (host-only
	// on 127.0.0.1: the same for both replicas).
	sessionCookie := func(p *pageDriver) *http.Cookie {
		t.Helper()
		res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{apps[0].URL + "/"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cookies {
			if c.Name == "session" {
				return &http.Cookie{Name: c.Name, Value: c.Value}
			}
		}
		t.Fatal("e2e: the browser session has no application session cookie")
		return nil
	}

	alice1 := newSession("alice-1")
	signIn(alice1, 0, "alice")
	// The second browser session of alice's OP session: the OP's cookies
	// only (the application's cookie on 127.0.0.1 is left behind).
	alice2 := newSession("alice-2")
	opCookies, err := chromedp.Call(alice1.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{op.Issuer() + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var copied []*network.CookieParam
	for _, c := range opCookies.Cookies {
		if c.Name == "session" {
			continue
		}
		copied = append(copied, &network.CookieParam{Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path,
			Secure: c.Secure, HTTPOnly: c.HTTPOnly, SameSite: c.SameSite})
	}
	if len(copied) == 0 {
		t.Fatal("e2e: the OP set no cookie in the first browser session")
	}
	if _, err := chromedp.Call(alice2.ctx, network.SetCookies, network.SetCookiesParams{Cookies: copied}); err != nil {
		t.Fatal(err)
	}
	signIn(alice2, 1, "alice")
	bob := newSession("bob")
	signIn(bob, 1, "bob")

	c1, c2, cb := sessionCookie(alice1), sessionCookie(alice2), sessionCookie(bob)
	if c1.Value == c2.Value {
		t.Fatal("e2e: alice's two browser sessions share one application session")
	}
	for i := range apps {
		for name, p := range map[string]*pageDriver{"alice-1": alice1, "alice-2": alice2} {
			if got := whoIn(p, i); got != "alice" {
				t.Fatalf("e2e: before the logout, browser session %s is %q on replica %d", name, got, i)
			}
		}
		if got := whoIn(bob, i); got != "bob" {
			t.Fatalf("e2e: before the logout, bob's session is %q on replica %d", got, i)
		}
	}

	// who asks replica i for the session with cookie c over HTTP (fast
	// enough to time the logout; the browsers check again afterwards).
	hc := &http.Client{Transport: apps[0].Client().Transport, Timeout: 10 * time.Second}
	who := func(c *http.Cookie, i int) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apps[i].URL+"/whoami", nil)
		req.AddCookie(c)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		s, _, _ := strings.Cut(string(body), "|")
		return strings.TrimPrefix(s, "sub=")
	}

	disc, err := op.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := disc["end_session_endpoint"].(string)
	alice1.do("open the OP's end-session page",
		chromedp.Navigate(end),
		chromedp.WaitVisible(chromedp.CSS(`button[name="logout"][value="yes"]`)))
	alice1.screenshot("op-end-session")
	start := time.Now()
	alice1.do("sign out at the OP", chromedp.Click(chromedp.CSS(`button[name="logout"][value="yes"]`)))
	for {
		anon := true
		for i := range apps {
			for _, c := range []*http.Cookie{c1, c2} {
				anon = anon && who(c, i) == "anonymous"
			}
		}
		if anon {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("e2e: alice still signed in one second after signing out at the OP\n%s", op.Process().Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	alice1.do("the OP's signed-out page", chromedp.WaitNotPresent(chromedp.CSS(`button[name="logout"]`)))
	alice1.screenshot("op-signed-out")
	// In the browsers: both of alice's sessions anonymous on both
	// replicas, bob's untouched.
	for i := range apps {
		for name, p := range map[string]*pageDriver{"alice-1": alice1, "alice-2": alice2} {
			if got := whoIn(p, i); got != "anonymous" {
				t.Fatalf("e2e: after the logout, browser session %s is %q on replica %d", name, got, i)
			}
		}
		if got := whoIn(bob, i); got != "bob" {
			t.Fatalf("e2e: bob's session ended on replica %d (%q)", i, got)
		}
		if got := who(cb, i); got != "bob" {
			t.Fatalf("e2e: bob's session cookie is %q on replica %d", got, i)
		}
	}
	t.Logf("e2e: both of alice's browser sessions anonymous on both replicas %v after she confirmed the sign-out at the OP; bob still signed in", took.Round(time.Millisecond))
}
