package e2e_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
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
// index). Alice has two browser sessions of one OP session, signed in
// through replica A and replica B; Bob has his own. Alice signs out at the
// OP: the OP's logout token reaches the replicas' back-channel endpoint,
// and within one second both of Alice's sessions are anonymous on both
// replicas, while Bob's session is untouched.
func TestBackChannelLogoutCertifiedOP(t *testing.T) {
	op := harness.StartOIDCProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
		mux.Handle("GET /callback", a.CallbackHandler())
		handlers[i] = sm.LoadAndSave(mux)
	}
	backH = auths[1].BackChannelLogoutHandler()

	transport := apps[0].Client().Transport
	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Transport: transport, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	who := func(b *http.Client, i int) string {
		res, err := b.Get(apps[i].URL + "/private/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return ""
		}
		s, _, _ := strings.Cut(strings.TrimPrefix(string(body), "sub="), "|")
		return s
	}
	login := func(b *http.Client, i int, user string) {
		t.Helper()
		res, err := b.Get(apps[i].URL + "/private/x")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		cb, err := op.LoginHTTP(ctx, b, res.Header.Get("Location"), user, "any-password")
		if err != nil {
			t.Fatalf("login at oidc-provider: %v", err)
		}
		res, err = b.Get(cb.String())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback on replica %d: %d", i, res.StatusCode)
		}
		if got := who(b, i); got != user {
			t.Fatalf("replica %d: signed in as %q, want %q", i, got, user)
		}
	}

	alice1 := newBrowser()
	login(alice1, 0, "alice")
	// A second browser session of the same OP session: the OP's cookies
	// only (host-only cookies on 127.0.0.1 are shared across ports, so
	// the application's session cookie is left behind).
	alice2 := newBrowser()
	opURL, _ := url.Parse(op.Issuer())
	var opCookies []*http.Cookie
	for _, c := range alice1.Jar.Cookies(opURL) {
		if c.Name != "session" {
			opCookies = append(opCookies, c)
		}
	}
	alice2.Jar.SetCookies(opURL, opCookies)
	login(alice2, 1, "alice")
	bob := newBrowser()
	login(bob, 1, "bob")
	for i := range apps {
		for _, b := range []*http.Client{alice1, alice2} {
			if who(b, i) != "alice" {
				t.Fatalf("before logout: alice not signed in on replica %d", i)
			}
		}
	}

	disc, err := op.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := disc["end_session_endpoint"].(string)
	start := time.Now()
	if _, err := op.LogoutHTTP(ctx, alice1, end); err != nil {
		t.Fatalf("sign out at oidc-provider: %v", err)
	}
	confirmed := time.Since(start)
	for {
		anon := true
		for i := range apps {
			for _, b := range []*http.Client{alice1, alice2} {
				anon = anon && who(b, i) == ""
			}
		}
		if anon {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("alice still signed in one second after signing out at the OP\n%s", op.Process().Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("e2e: sign-out confirmed at the OP after %v; both of alice's sessions anonymous on both replicas after %v", confirmed, time.Since(start))
	for i := range apps {
		if who(bob, i) != "bob" {
			t.Fatalf("bob's session ended on replica %d", i)
		}
	}
}
