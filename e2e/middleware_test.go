package e2e_test

// The login middleware against the certified OP: an application using
// oxd.RequireLogin, CallbackHandler and LogoutHandler, the oxd engine
// pointed at oidc-provider (registered through register_site), and a
// browser driven over HTTP with a cookie jar: login with return-to, claims
// in the context, refresh of a short-lived access token, logout through
// the OP's end-session page.

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

func TestMiddlewareAgainstCertifiedOP(t *testing.T) {
	op := harness.StartOIDCProvider(t, harness.WithOPEnv("OP_TTL_ACCESS_TOKEN", "4"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")}) // the test OPs are plain http on loopback
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	client := oxdclient.New(engine, oxdclient.Config{})

	var handler atomic.Pointer[http.Handler]
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	app.Config.ErrorLog = log.New(io.Discard, "", 0)
	app.StartTLS()
	t.Cleanup(app.Close)

	site, err := client.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: app.URL + "/callback",
		PostLogoutRedirectURI:    app.URL + "/logged-out",
		Scope:                    []string{"openid", "offline_access", "profile", "email"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		ClientName:               "e2e middleware",
	}})
	if err != nil {
		t.Fatalf("register_site at oidc-provider: %v", err)
	}

	sessions := scs.New()
	auth, err := oxd.New(client, sessions, oxd.Config{
		OxdID:                 site.OxdID,
		RedirectURL:           app.URL + "/callback",
		PostLogoutRedirectURI: app.URL + "/logged-out",
		Scopes:                []string{"openid", "offline_access", "profile", "email"},
		Prompt:                "consent", // oidc-provider issues refresh tokens for offline_access with consent
		Logger:                harness.DebugLogger(t, "middleware"),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/private/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxd.UserFrom(r.Context())
		fmt.Fprintf(w, "sub=%s|email=%s|at=%s|uri=%s", u.Subject, u.Claim("email"), u.AccessToken().Reveal(), r.URL.RequestURI())
	})))
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "bye") })
	h := sessions.LoadAndSave(mux)
	handler.Store(&h)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{
		Transport:     app.Client().Transport,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(target string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		if strings.HasPrefix(target, "/") {
			target = app.URL + target
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := browser.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	field := func(body, name string) string {
		for part := range strings.SplitSeq(body, "|") {
			if v, ok := strings.CutPrefix(part, name+"="); ok {
				return v
			}
		}
		return ""
	}

	// Login with the return-to preserved.
	status, hdr, _ := get("/private/page?tab=2")
	if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), op.Issuer()) {
		t.Fatalf("first visit: %d %q", status, hdr.Get("Location"))
	}
	cb, err := op.LoginHTTP(ctx, browser, hdr.Get("Location"), "alice", "any-password")
	if err != nil {
		t.Fatalf("login at oidc-provider: %v", err)
	}
	if !strings.HasPrefix(cb.String(), app.URL+"/callback?") {
		t.Fatalf("OP redirected to %s", cb)
	}
	status, hdr, body := get(cb.String())
	if status != http.StatusSeeOther || hdr.Get("Location") != "/private/page?tab=2" {
		t.Fatalf("callback: %d %q %q", status, hdr.Get("Location"), body)
	}
	status, _, body = get("/private/page?tab=2")
	if status != 200 || field(body, "sub") != "alice" || field(body, "email") != "alice@example.test" || field(body, "uri") != "/private/page?tab=2" {
		t.Fatalf("protected page: %d %q", status, body)
	}
	at1 := field(body, "at")

	// API request without a session: 401.
	anon := &http.Client{Transport: browser.Transport, CheckRedirect: browser.CheckRedirect}
	req, _ := http.NewRequestWithContext(ctx, "GET", app.URL+"/private/api", nil)
	req.Header.Set("Accept", "application/json")
	res, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" {
		t.Fatalf("api: %d", res.StatusCode)
	}

	// Refresh: the access token lives 4 s and is refreshed from half of its
	// lifetime on.
	time.Sleep(2500 * time.Millisecond)
	status, _, body = get("/private/again")
	if status != 200 || field(body, "at") == "" || field(body, "at") == at1 {
		t.Fatalf("after refresh: %d %q (token unchanged: %v)", status, body, field(body, "at") == at1)
	}

	// Logout through the OP's end-session page, back to the landing page.
	lreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, app.URL+"/logout", nil)
	lreq.Header.Set("Origin", app.URL)
	res, err = browser.Do(lreq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	end, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || end == nil || !strings.HasPrefix(end.String(), op.Issuer()) {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if end.Query().Get("id_token_hint") == "" || end.Query().Get("post_logout_redirect_uri") != app.URL+"/logged-out" {
		t.Fatalf("end-session URL lacks id_token_hint or post_logout_redirect_uri: %s", end.Query())
	}
	landing, err := op.LogoutHTTP(ctx, browser, end.String())
	if err != nil {
		t.Fatalf("end-session at oidc-provider: %v", err)
	}
	if landing.Scheme+"://"+landing.Host+landing.Path != app.URL+"/logged-out" {
		t.Fatalf("OP sent the browser to %s", landing)
	}
	if status, _, _ := get("/private/page"); status != http.StatusSeeOther {
		t.Fatalf("still logged in after logout: %d", status)
	}
}
