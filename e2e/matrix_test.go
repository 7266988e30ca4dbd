package e2e_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// TestCertifiedOPEngineMatrix: the engine with one pre-registered client
// per token endpoint authentication method at the certified OP's static
// profile (no registration endpoint), each through login, code exchange,
// userinfo, refresh, introspection, revocation and the logout URL, in
// process (register_site), over the socket listener and over the HTTPS
// extension (TLS; revoke_token through /revoke-token), both with
// protection (setup_client with the pre-registered client_secret_basic
// client as the protection client).
func TestCertifiedOPEngineMatrix(t *testing.T) {
	op := harness.StartOIDCProvider(t, harness.WithStaticProfile())
	setupClient := op.StaticClient(t, clientauth.MethodSecretBasic)
	for _, sc := range op.StaticClients() {
		t.Run(string(sc.Method), func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) {
				ctx := testCtx(t)
				eng := matrixEngine(t)
				c := oxdclient.New(eng, oxdclient.Config{})
				reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: matrixSite(op, sc)})
				if err != nil {
					t.Fatal(err)
				}
				loadKeys(t, ctx, eng, reg.OxdID, sc)
				matrixFlow(t, ctx, op, c, reg.OxdID, sc)
			})
			// The listeners: setup_client in process, then every call
			// through the listener with protection tokens.
			for _, listener := range []string{"socket", "https-extension"} {
				t.Run(listener, func(t *testing.T) {
					ctx := testCtx(t)
					eng := matrixEngine(t)
					if !eng.Protected() {
						t.Fatal("the engine is not protected by default")
					}
					setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
						SiteParams:    matrixSite(op, sc),
						SetupClientID: setupClient.ID, SetupClientSecret: oxdclient.Secret(setupClient.Secret),
						SetupClientTokenEndpointAuthMethod: string(clientauth.MethodSecretBasic),
					})
					if err != nil {
						t.Fatal(err)
					}
					loadKeys(t, ctx, eng, setup.OxdID, sc)
					c := oxdclient.New(listenerTransport(t, eng, listener), oxdclient.Config{Protection: &oxdclient.ProtectionCredentials{
						ClientID: setupClient.ID, ClientSecret: oxdclient.Secret(setupClient.Secret), OPHost: op.Issuer(),
						Scope: []string{"openid", "oxd", "uma_protection"},
					}})
					matrixFlow(t, ctx, op, c, setup.OxdID, sc)
				})
			}
		})
	}
}

// listenerTransport serves eng on a loopback socket listener or an HTTPS
// extension (TLS) and returns a transport to it.
func listenerTransport(t *testing.T, eng *oxdserver.Engine, listener string) oxdclient.Transport {
	t.Helper()
	if listener == "https-extension" {
		ext := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{Logger: harness.DebugLogger(t, "oxd-https")}))
		t.Cleanup(ext.Close)
		tr, err := oxdclient.NewHTTPS(ext.URL, oxdclient.HTTPSConfig{HTTPClient: ext.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tr, err := oxdclient.NewSocket(serveSocket(t, eng), oxdclient.SocketConfig{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func matrixEngine(t *testing.T) *oxdserver.Engine {
	t.Helper()
	eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

func matrixSite(op *harness.OIDCProvider, sc harness.StaticClient) oxdclient.SiteParams {
	return oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: sc.RedirectURIs[0], PostLogoutRedirectURI: sc.PostLogoutRedirectURIs[0],
		Scope: []string{"openid", "profile", "offline_access"}, ClientID: sc.ID, ClientSecret: oxdclient.Secret(sc.Secret),
		ClientTokenEndpointAuthMethod: string(sc.Method),
	}
}

// loadKeys puts the private key the provider knows (registered as the
// static client's jwks) into the site: the operator's step for a
// pre-registered private_key_jwt client whose keys were made elsewhere
// (register_site generated a fresh set, whose public part the OP does not
// know).
func loadKeys(t *testing.T, ctx context.Context, eng *oxdserver.Engine, oxdID string, sc harness.StaticClient) {
	t.Helper()
	if sc.Keys == nil {
		return
	}
	s, err := eng.Store().GetSite(ctx, oxdID)
	if err != nil {
		t.Fatal(err)
	}
	s.ClientKeys, s.TokenEndpointAuthSigningAlg = sc.Keys.Clone(), ""
	if err := eng.Store().PutSite(ctx, s); err != nil {
		t.Fatal(err)
	}
}

func matrixFlow(t *testing.T, ctx context.Context, op *harness.OIDCProvider, c *oxdclient.Client, oxdID string, sc harness.StaticClient) {
	t.Helper()
	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID, Prompt: "consent"})
	if err != nil {
		t.Fatal(err)
	}
	back, err := op.LoginHTTP(ctx, newJarClient(t), au.AuthorizationURL, "alice", "any-password")
	if err != nil {
		t.Fatal(err)
	}
	q := back.Query()
	tok, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(q.Get("code")), State: q.Get("state")})
	if err != nil {
		t.Fatalf("get_tokens_by_code: %v", err)
	}
	if _, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: oxdID, AccessToken: tok.AccessToken}); err != nil {
		t.Fatalf("get_user_info: %v", err)
	}
	if tok.RefreshToken.IsZero() {
		t.Fatal("no refresh token (offline_access with prompt=consent)")
	}
	ref, err := c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: oxdID, RefreshToken: tok.RefreshToken})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	rt := ref.RefreshToken
	if rt.IsZero() {
		rt = tok.RefreshToken
	}
	in, err := c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: oxdID, AccessToken: ref.AccessToken})
	switch {
	case err != nil && sc.Method == clientauth.MethodNone:
		// A public client may not be accepted at introspection: the
		// answer must then be a clear invalid_request.
		oe, ok := err.(*oxdclient.Error)
		if !ok || oe.Code != oxdclient.CodeInvalidRequest {
			t.Fatalf("introspect (public client): %v", err)
		}
		t.Logf("introspection refused for the public client: %s", oe.Description)
	case err != nil:
		t.Fatalf("introspect: %v", err)
	case !in.Active:
		t.Fatal("introspect: the fresh access token is not active")
	}
	if _, err := c.RevokeToken(ctx, oxdclient.RevokeTokenParams{OxdID: oxdID, Token: rt, TokenTypeHint: "refresh_token"}); err != nil {
		t.Fatalf("revoke_token: %v", err)
	}
	if _, err := c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: oxdID, RefreshToken: rt}); err == nil {
		t.Fatal("a revoked refresh token still works")
	}
	lo, err := c.GetLogoutURI(ctx, oxdclient.GetLogoutURIParams{OxdID: oxdID, IDTokenHint: tok.IDToken, State: "matrix"})
	if err != nil {
		t.Fatalf("get_logout_uri: %v", err)
	}
	if !strings.HasPrefix(lo.URI, op.Issuer()) || !strings.Contains(lo.URI, "id_token_hint=") {
		t.Errorf("logout URI %s", lo.URI)
	}
}
