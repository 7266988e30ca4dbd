package e2e_test

// The RP suite: one sequence of relying-party checks run through the oxd
// engine against both the certified oidc-provider and the oxdtest
// development OP, and through all three ways of reaching the engine:
// in-process (the engine as the client's Transport), the socket listener,
// and the HTTPS-extension handler (protection tokens enforced). That is a
// 2 × 3 matrix of subtests; every step asserts the values it gets back.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// rpSuiteOP is one OP the suite runs against.
type rpSuiteOP struct {
	name   string
	issuer string
	user   string
	pass   string
	email  string
	// login drives the OP's login pages with hc (which has a cookie jar)
	// from authURL and returns the redirect to the relying party.
	login func(ctx context.Context, hc *http.Client, authURL, user, pass string) (*url.URL, error)
	// logout drives RP-initiated logout from the end-session URL and
	// returns the redirect to the post_logout_redirect_uri.
	logout func(ctx context.Context, hc *http.Client, endSessionURL string) (*url.URL, error)
	// authEndpoint and endSessionEndpoint come from the OP's discovery.
	authEndpoint, endSessionEndpoint string
}

// rpSuiteVia is one way of reaching the engine.
type rpSuiteVia struct {
	name    string
	connect func(t *testing.T, engine *oxdserver.Engine) rpConn
}

// rpConn is a connected transport: hasGetRP says whether get_rp is served
// on it, protected whether protection tokens are enforced.
type rpConn struct {
	tr                  oxdclient.Transport
	hasGetRP, protected bool
	socket              bool // the socket answers blank_protection_access_token, not 403
}

func TestRPSuite(t *testing.T) {
	suiteStart := time.Now()
	cert := harness.StartOIDCProvider(t)
	dev := oxdtest.NewTestOP(t, oxdtest.OPConfig{})

	ops := []*rpSuiteOP{
		{
			name: "certified-op", issuer: cert.Issuer(),
			user: "alice", pass: "any-password", email: "alice@example.test",
			login: cert.LoginHTTP, logout: cert.LogoutHTTP,
		},
		{
			name: "dev-op", issuer: dev.Issuer(),
			user: "alice", pass: "alice-password", email: "alice@example.test",
			login: oxdtest.BrowserLogin, logout: rpDevOPLogout,
		},
	}
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		disc, err := rpFetchDiscovery(ctx, op.issuer)
		cancel()
		if err != nil {
			t.Fatalf("%s discovery: %v", op.name, err)
		}
		op.authEndpoint, _ = disc["authorization_endpoint"].(string)
		op.endSessionEndpoint, _ = disc["end_session_endpoint"].(string)
		if op.authEndpoint == "" || op.endSessionEndpoint == "" {
			t.Fatalf("%s discovery lacks authorization_endpoint or end_session_endpoint", op.name)
		}
	}

	vias := []rpSuiteVia{
		{name: "in-process", connect: func(t *testing.T, engine *oxdserver.Engine) rpConn {
			return rpConn{tr: engine, hasGetRP: true}
		}},
		{name: "socket", connect: rpConnectSocket},
		{name: "https", connect: rpConnectHTTPS},
	}

	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, via := range vias {
				t.Run(via.name, func(t *testing.T) {
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")}) // the test OPs are plain http on loopback
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = engine.Close() })
					runRPSuite(ctx, t, op, via.connect(t, engine))
					t.Logf("%s/%s: suite took %v", op.name, via.name, time.Since(start).Round(time.Millisecond))
				})
			}
		})
	}
	t.Logf("RP suite: whole matrix took %v", time.Since(suiteStart).Round(time.Millisecond))
}

// rpConnectSocket serves engine on a loopback socket listener (protection
// on, the default for every listener) and returns a pooled socket client.
func rpConnectSocket(t *testing.T, engine *oxdserver.Engine) rpConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &oxdserver.SocketServer{Engine: engine}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	sock, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{PoolSize: 2, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sock.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("socket shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, oxdserver.ErrServerClosed) {
			t.Errorf("socket Serve returned %v", err)
		}
	})
	return rpConn{tr: sock, hasGetRP: true, protected: true, socket: true}
}

// rpConnectHTTPS serves the HTTPS-extension handler (protection on, the
// default) on a TLS test server and returns a client trusting its
// certificate. The extension has no get_rp path (3.1.x).
func rpConnectHTTPS(t *testing.T, engine *oxdserver.Engine) rpConn {
	t.Helper()
	hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(engine, oxdserver.HTTPSConfig{}))
	t.Cleanup(hs.Close)
	tr, err := oxdclient.NewHTTPS(hs.URL, oxdclient.HTTPSConfig{HTTPClient: hs.Client(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return rpConn{tr: tr, protected: true}
}

func runRPSuite(ctx context.Context, t *testing.T, op *rpSuiteOP, conn rpConn) {
	tr, hasGetRP := conn.tr, conn.hasGetRP
	const (
		redirectURI   = "https://127.0.0.1:9443/cb"
		postLogoutURI = "https://127.0.0.1:9443/logged-out"
	)
	scopes := []string{"openid", "profile", "email"}

	// 1. setup_client, register_site of a second site, get_rp.
	bare := oxdclient.New(tr, oxdclient.Config{})
	setup, err := bare.SetupClient(ctx, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   op.issuer,
			AuthorizationRedirectURI: redirectURI,
			PostLogoutRedirectURI:    postLogoutURI,
			Scope:                    scopes,
			GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
			ClientName:               "rp suite",
		},
		SetupClientName: "rp suite (setup)",
	})
	if err != nil {
		t.Fatalf("setup_client: %v", err)
	}
	if setup.OxdID == "" || setup.SetupClientOxdID == "" || setup.ClientIDOfOxdID == "" || setup.ClientID == "" {
		t.Fatalf("setup_client: missing ids: oxd_id=%q setup_client_oxd_id=%q client_id_of_oxd_id=%q client_id=%q",
			setup.OxdID, setup.SetupClientOxdID, setup.ClientIDOfOxdID, setup.ClientID)
	}
	if setup.ClientSecret.IsZero() {
		t.Fatal("setup_client: no client_secret for the setup client")
	}
	if setup.OxdID == setup.SetupClientOxdID || setup.ClientID == setup.ClientIDOfOxdID {
		t.Fatalf("setup_client: the setup client and the site are not distinct (oxd_id %q, setup %q)", setup.OxdID, setup.SetupClientOxdID)
	}
	if setup.OPHost != op.issuer {
		t.Errorf("setup_client: op_host %q, want %q", setup.OPHost, op.issuer)
	}
	creds := &oxdclient.ProtectionCredentials{
		ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: op.issuer,
		Scope: []string{"openid", "oxd"},
	}
	c := oxdclient.New(tr, oxdclient.Config{Protection: creds})
	oxdID := setup.OxdID

	second, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.issuer,
		AuthorizationRedirectURI: "https://127.0.0.1:9444/cb2",
		Scope:                    scopes,
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ClientName:               "rp suite second site",
	}})
	if err != nil {
		t.Fatalf("register_site: %v", err)
	}
	if second.OxdID == "" || second.OxdID == oxdID || second.OxdID == setup.SetupClientOxdID {
		t.Fatalf("register_site: oxd_id %q is empty or not new", second.OxdID)
	}
	secondAU, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: second.OxdID})
	if err != nil {
		t.Fatalf("get_authorization_url of the second site: %v", err)
	}
	secondQ := rpMustParseURL(t, secondAU.AuthorizationURL).Query()
	if secondQ.Get("redirect_uri") != "https://127.0.0.1:9444/cb2" || secondQ.Get("client_id") == "" || secondQ.Get("client_id") == setup.ClientIDOfOxdID {
		t.Errorf("second site's authorization URL: redirect_uri %q, client_id %q (first site's %q)",
			secondQ.Get("redirect_uri"), secondQ.Get("client_id"), setup.ClientIDOfOxdID)
	}

	if hasGetRP {
		node := rpGetRP(ctx, t, c, oxdID)
		rpWantField(t, node, "oxd_id", oxdID)
		rpWantField(t, node, "op_host", op.issuer)
		rpWantField(t, node, "client_id", setup.ClientIDOfOxdID)
		rpWantField(t, node, "authorization_redirect_uri", redirectURI)
		rpWantField(t, node, "logout_redirect_uri", postLogoutURI)
		rpWantField(t, node, "setup_oxd_id", setup.SetupClientOxdID)
		node2 := rpGetRP(ctx, t, c, second.OxdID)
		rpWantField(t, node2, "oxd_id", second.OxdID)
		rpWantField(t, node2, "client_id", secondQ.Get("client_id"))
		// register_site with the setup client's protection token links the
		// new site to that setup client.
		rpWantField(t, node2, "setup_client_id", setup.ClientID)
	} else {
		// The 3.1.x extension has no /get-rp path: HTTP 404.
		_, err := c.GetRP(ctx, oxdclient.GetRPParams{OxdID: oxdID})
		rpWantCode(t, "get_rp over the HTTPS extension", err, oxdclient.CodeHTTPStatusPrefix+"404")
	}

	// Protection: enforced on every listener. Without a token the
	// extension answers 403 and the socket blank_protection_access_token;
	// a token the OP does not know is inactive.
	_, err = bare.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	if conn.protected {
		want := oxdclient.CodeForbidden
		if conn.socket {
			want = oxdclient.CodeBlankProtectionAccessToken
		}
		rpWantCode(t, "get_authorization_url without a protection token", err, want)
		_, err = bare.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID,
			Protection: oxdclient.Protection{ProtectionAccessToken: "not-a-token-of-this-op"}})
		rpWantCode(t, "get_authorization_url with a forged protection token", err, oxdclient.CodeInactiveProtectionAccessToken)
	} else if err != nil {
		t.Errorf("get_authorization_url without a protection token (protection off): %v", err)
	}

	// 2. get_client_token with the setup client's credentials.
	ct, err := c.GetClientToken(ctx, oxdclient.GetClientTokenParams{
		ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: op.issuer,
		Scope: []string{"openid", "oxd"},
	})
	if err != nil {
		t.Fatalf("get_client_token: %v", err)
	}
	if ct.AccessToken.IsZero() || ct.ExpiresIn <= 0 {
		t.Fatalf("get_client_token: access token present %v, expires_in %d", !ct.AccessToken.IsZero(), ct.ExpiresIn)
	}
	if ct.Scope != "" && !slices.Contains(strings.Fields(ct.Scope), "oxd") {
		t.Errorf("get_client_token: scope %q lacks oxd", ct.Scope)
	}

	// 3. get_authorization_url.
	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	if err != nil {
		t.Fatalf("get_authorization_url: %v", err)
	}
	authURL := rpMustParseURL(t, au.AuthorizationURL)
	if got := authURL.Scheme + "://" + authURL.Host + authURL.Path; got != op.authEndpoint {
		t.Errorf("authorization URL on %q, want the OP's authorization endpoint %q", got, op.authEndpoint)
	}
	q := authURL.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             setup.ClientIDOfOxdID,
		"redirect_uri":          redirectURI,
		"code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, q.Get(k), want)
		}
	}
	for _, s := range scopes {
		if !slices.Contains(strings.Fields(q.Get("scope")), s) {
			t.Errorf("authorization URL: scope %q lacks %q", q.Get("scope"), s)
		}
	}
	state, nonce := q.Get("state"), q.Get("nonce")
	if len(state) < 16 || len(nonce) < 16 || state == nonce {
		t.Errorf("authorization URL: weak or missing state (%d chars) / nonce (%d chars)", len(state), len(nonce))
	}
	if ch := q.Get("code_challenge"); len(ch) != 43 {
		t.Errorf("authorization URL: code_challenge of %d chars, want 43 (S256, base64url)", len(ch))
	}

	// 4. Login at the OP over HTTP with a cookie jar.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	cb, err := op.login(ctx, browser, au.AuthorizationURL, op.user, op.pass)
	if err != nil {
		t.Fatalf("login at the OP: %v", err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != redirectURI {
		t.Fatalf("login ended at %q, want the redirect_uri %q", got, redirectURI)
	}
	cbq := cb.Query()
	if e := cbq.Get("error"); e != "" {
		t.Fatalf("login: the OP answered error=%q (%s)", e, cbq.Get("error_description"))
	}
	code := cbq.Get("code")
	if code == "" {
		t.Fatal("login: no code in the redirect")
	}
	if cbq.Get("state") != state {
		t.Fatalf("login: the redirect's state differs from the authorization URL's")
	}

	// 5. get_tokens_by_code, id_token claims, replay.
	toks, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(code), State: state})
	if err != nil {
		t.Fatalf("get_tokens_by_code: %v", err)
	}
	if toks.AccessToken.IsZero() || toks.IDToken.IsZero() || toks.RefreshToken.IsZero() || toks.ExpiresIn <= 0 {
		t.Fatalf("get_tokens_by_code: access %v id %v refresh %v expires_in %d",
			!toks.AccessToken.IsZero(), !toks.IDToken.IsZero(), !toks.RefreshToken.IsZero(), toks.ExpiresIn)
	}
	if strings.Count(toks.IDToken.Reveal(), ".") != 2 {
		t.Error("get_tokens_by_code: id_token is not a compact JWS")
	}
	cl := toks.IDTokenClaims
	if cl.String("iss") != op.issuer {
		t.Errorf("id_token iss %q, want %q", cl.String("iss"), op.issuer)
	}
	if !slices.Contains(cl.Strings("aud"), setup.ClientIDOfOxdID) {
		t.Errorf("id_token aud %q lacks the client id %q", cl.Strings("aud"), setup.ClientIDOfOxdID)
	}
	sub := cl.String("sub")
	if sub != op.user {
		t.Errorf("id_token sub %q, want %q", sub, op.user)
	}
	if cl.String("nonce") != nonce {
		t.Error("id_token nonce differs from the authorization URL's nonce")
	}
	if exp, ok := cl.Int("exp"); !ok || exp <= time.Now().Unix() {
		t.Errorf("id_token exp %d (present %v) is not in the future", exp, ok)
	}
	_, err = c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(code), State: state})
	rpWantCode(t, "replayed get_tokens_by_code", err, oxdclient.CodeBadRequest)

	// 6. get_user_info.
	ui, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: oxdID, AccessToken: toks.AccessToken})
	if err != nil {
		t.Fatalf("get_user_info: %v", err)
	}
	if ui.Claims.String("sub") != sub {
		t.Errorf("userinfo sub %q, want the id_token's %q", ui.Claims.String("sub"), sub)
	}
	if ui.Claims.String("email") != op.email {
		t.Errorf("userinfo email %q, want %q", ui.Claims.String("email"), op.email)
	}

	// 7. get_access_token_by_refresh_token; the new token works.
	rt, err := c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: oxdID, RefreshToken: toks.RefreshToken})
	if err != nil {
		t.Fatalf("get_access_token_by_refresh_token: %v", err)
	}
	if rt.AccessToken.IsZero() || rt.AccessToken == toks.AccessToken || rt.ExpiresIn <= 0 {
		t.Fatalf("refresh: new access token present %v, differs %v, expires_in %d",
			!rt.AccessToken.IsZero(), rt.AccessToken != toks.AccessToken, rt.ExpiresIn)
	}
	ui2, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: oxdID, AccessToken: rt.AccessToken})
	if err != nil {
		t.Fatalf("get_user_info with the refreshed token: %v", err)
	}
	if ui2.Claims.String("sub") != sub {
		t.Errorf("userinfo (refreshed token) sub %q, want %q", ui2.Claims.String("sub"), sub)
	}

	// 8. get_logout_uri.
	lo, err := c.GetLogoutURI(ctx, oxdclient.GetLogoutURIParams{
		OxdID: oxdID, IDTokenHint: toks.IDToken, PostLogoutRedirectURI: postLogoutURI, State: "rp-suite-logout",
	})
	if err != nil {
		t.Fatalf("get_logout_uri: %v", err)
	}
	lu := rpMustParseURL(t, lo.URI)
	if got := lu.Scheme + "://" + lu.Host + lu.Path; got != op.endSessionEndpoint {
		t.Errorf("logout URL on %q, want the OP's end_session endpoint %q", got, op.endSessionEndpoint)
	}
	lq := lu.Query()
	if lq.Get("id_token_hint") != toks.IDToken.Reveal() {
		t.Error("logout URL: id_token_hint is not the id_token")
	}
	if lq.Get("post_logout_redirect_uri") != postLogoutURI {
		t.Errorf("logout URL: post_logout_redirect_uri %q, want %q", lq.Get("post_logout_redirect_uri"), postLogoutURI)
	}
	if lq.Get("state") != "rp-suite-logout" {
		t.Errorf("logout URL: state %q", lq.Get("state"))
	}

	// 9. introspect_access_token.
	in, err := c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: oxdID, AccessToken: rt.AccessToken})
	if err != nil {
		t.Fatalf("introspect_access_token: %v", err)
	}
	if !in.Active || in.ClientID != setup.ClientIDOfOxdID {
		t.Errorf("introspection of the access token: active %v, client_id %q, want true and %q", in.Active, in.ClientID, setup.ClientIDOfOxdID)
	}
	if in.Sub != "" && in.Sub != sub {
		t.Errorf("introspection sub %q, want %q", in.Sub, sub)
	}
	bad, err := c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: oxdID, AccessToken: "garbage-token-not-issued-by-the-op"})
	if err != nil {
		t.Fatalf("introspect_access_token of a garbage token: %v", err)
	}
	if bad.Active || bad.ClientID != "" {
		t.Errorf("introspection of a garbage token: active %v, client_id %q", bad.Active, bad.ClientID)
	}

	// RP-initiated logout at the OP lands on the post_logout_redirect_uri
	// with the state.
	back, err := op.logout(ctx, browser, lo.URI)
	if err != nil {
		t.Fatalf("logout at the OP: %v", err)
	}
	if got := back.Scheme + "://" + back.Host + back.Path; got != postLogoutURI || back.Query().Get("state") != "rp-suite-logout" {
		t.Errorf("logout ended at %s (state %q), want %s with the state", got, back.Query().Get("state"), postLogoutURI)
	}

	// 10. update_site, remove_site.
	up, err := c.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: oxdID, Contacts: []string{"ops@example.test"}})
	if err != nil {
		t.Fatalf("update_site: %v", err)
	}
	if up.OxdID != oxdID {
		t.Errorf("update_site answered oxd_id %q, want %q", up.OxdID, oxdID)
	}
	if hasGetRP {
		node := rpGetRP(ctx, t, c, oxdID)
		var contacts []string
		_ = json.Unmarshal(node["contacts"], &contacts)
		if !slices.Equal(contacts, []string{"ops@example.test"}) {
			t.Errorf("get_rp after update_site: contacts %v", contacts)
		}
		rpWantField(t, node, "client_id", setup.ClientIDOfOxdID)
	}
	// The site still works after the update.
	if _, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID}); err != nil {
		t.Fatalf("get_authorization_url after update_site: %v", err)
	}
	rm, err := c.RemoveSite(ctx, oxdclient.RemoveSiteParams{OxdID: oxdID})
	if err != nil {
		t.Fatalf("remove_site: %v", err)
	}
	if rm.OxdID != oxdID {
		t.Errorf("remove_site answered oxd_id %q, want %q", rm.OxdID, oxdID)
	}
	_, err = c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	rpWantCode(t, "get_authorization_url after remove_site", err, oxdclient.CodeInvalidOxdID)
	// The second site is untouched.
	if _, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: second.OxdID}); err != nil {
		t.Errorf("get_authorization_url of the second site after removing the first: %v", err)
	}
}

// rpDevOPLogout opens the development OP's end-session URL (with a valid
// id_token_hint it signs out at once) and returns its redirect.
func rpDevOPLogout(ctx context.Context, hc *http.Client, endSessionURL string) (*url.URL, error) {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endSessionURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, fmt.Errorf("end_session answered HTTP %d, not a redirect", resp.StatusCode)
	}
	return resp.Location()
}

func rpFetchDiscovery(ctx context.Context, issuer string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func rpMustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		t.Fatalf("not an absolute URL (%v)", err)
	}
	return u
}

func rpGetRP(ctx context.Context, t *testing.T, c *oxdclient.Client, oxdID string) map[string]json.RawMessage {
	t.Helper()
	r, err := c.GetRP(ctx, oxdclient.GetRPParams{OxdID: oxdID})
	if err != nil {
		t.Fatalf("get_rp: %v", err)
	}
	var node map[string]json.RawMessage
	if err := json.Unmarshal(r.Node, &node); err != nil {
		t.Fatalf("get_rp: node is not an object: %v", err)
	}
	return node
}

func rpWantField(t *testing.T, node map[string]json.RawMessage, key, want string) {
	t.Helper()
	var got string
	_ = json.Unmarshal(node[key], &got)
	if got != want {
		t.Errorf("get_rp: %s = %q, want %q", key, got, want)
	}
}

func rpWantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var oe *oxdclient.Error
	if !errors.As(err, &oe) {
		t.Errorf("%s: got %v, want oxd error %s", what, err, code)
		return
	}
	if oe.Code != code {
		t.Errorf("%s: code %q (%s), want %q", what, oe.Code, oe.Description, code)
	}
}
