package oxdserver_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

const (
	matrixRedirect = "https://rp.example.test/callback"
	matrixLogout   = "https://rp.example.test/bye"
	// A client_secret_jwt secret must be at least 32 bytes (HS256).
	matrixSecret   = "matrix-secret-0123456789abcdefghijklmnop"
	setupClientID  = "matrix-setup"
	setupSecret    = "matrix-setup-secret-0123456789abcdef"
	matrixUsername = "alice"
	matrixPassword = "alice-password"
)

// jwksServer is the jwks_uri of the OP's private_key_jwt client: the
// HTTPS extension's unauthenticated route GET /client-jwks/<oxd_id> of
// the engine that holds the site, for the site set last (the client is
// registered at the OP before any oxd_id exists; pointing its jwks_uri at
// one is the OP administrator's step after setup_client).
type jwksServer struct {
	mu    sync.Mutex
	ext   http.Handler
	oxdID string
}

func (j *jwksServer) set(eng *oxdserver.Engine, oxdID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ext, j.oxdID = oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{}), oxdID
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	ext, id := j.ext, j.oxdID
	j.mu.Unlock()
	if ext == nil {
		http.NotFound(w, r)
		return
	}
	r = r.Clone(r.Context())
	r.URL.Path = oxdserver.ClientJWKSPathPrefix + id
	ext.ServeHTTP(w, r)
}

func clientIDOf(m clientauth.Method) string {
	return "matrix-" + strings.ReplaceAll(string(m), "_", "-")
}

// matrixOP starts a development OP without dynamic registration, with one
// pre-registered client per token endpoint authentication method (each
// bound to exactly its method) and a setup (protection) client.
func matrixOP(t *testing.T, jwks *jwksServer) *oxdtest.OP {
	t.Helper()
	keys := httptest.NewServer(jwks)
	t.Cleanup(keys.Close)
	var clients []oxdtest.StaticClient
	for _, m := range clientauth.Methods() {
		c := oxdtest.StaticClient{
			ClientID:                clientIDOf(m),
			TokenEndpointAuthMethod: string(m),
			RedirectURIs:            []string{matrixRedirect},
			PostLogoutRedirectURIs:  []string{matrixLogout},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
		}
		switch m {
		case clientauth.MethodPrivateKeyJWT:
			c.JWKSURI = keys.URL + "/jwks"
		case clientauth.MethodNone:
		default:
			c.ClientSecret = matrixSecret
		}
		clients = append(clients, c)
	}
	clients = append(clients, oxdtest.StaticClient{
		ClientID: setupClientID, ClientSecret: setupSecret, TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs: []string{matrixRedirect}, GrantTypes: []string{"authorization_code", "client_credentials"},
	})
	return oxdtest.NewTestOP(t, oxdtest.OPConfig{Clients: clients, DisableRegistration: true, StrictClientAuthMethod: true})
}

func matrixEngine(t *testing.T) *oxdserver.Engine {
	t.Helper()
	eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// socketClient serves eng on a loopback socket listener and returns a
// client that presents protection tokens of the setup client.
func socketClient(t *testing.T, eng *oxdserver.Engine, op *oxdtest.OP) *oxdclient.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &oxdserver.SocketServer{Engine: eng}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	tr, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return oxdclient.New(tr, oxdclient.Config{Protection: &oxdclient.ProtectionCredentials{
		ClientID: setupClientID, ClientSecret: setupSecret, OPHost: op.Issuer(), Scope: []string{"openid", "oxd", "uma_protection"},
	}})
}

// siteParams are the parameters of a site of the pre-registered client of
// method m.
func siteParams(op *oxdtest.OP, m clientauth.Method) oxdclient.SiteParams {
	p := oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: matrixRedirect, PostLogoutRedirectURI: matrixLogout,
		Scope: []string{"openid", "profile", "email"}, ClientID: clientIDOf(m), ClientTokenEndpointAuthMethod: string(m),
	}
	if m != clientauth.MethodNone && m != clientauth.MethodPrivateKeyJWT {
		p.ClientSecret = matrixSecret
	}
	return p
}

// runMatrixFlow drives a whole session of one site through c: login in a
// browser, code exchange, userinfo, refresh, introspection, revocation
// (after which the refresh token is refused), logout URL.
func runMatrixFlow(t *testing.T, ctx context.Context, c *oxdclient.Client, issuer, oxdID string, m clientauth.Method) {
	t.Helper()
	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	require.NoError(t, err)
	cb, err := oxdtest.BrowserLogin(ctx, nil, au.AuthorizationURL, matrixUsername, matrixPassword)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cb.String(), matrixRedirect+"?"), cb.String())
	tok, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")})
	require.NoError(t, err)
	require.False(t, tok.AccessToken.IsZero())
	require.False(t, tok.RefreshToken.IsZero(), "the client has the refresh_token grant")
	assert.Contains(t, string(tok.IDTokenClaims["aud"]), clientIDOf(m))

	ui, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: oxdID, AccessToken: tok.AccessToken})
	require.NoError(t, err)
	assert.Contains(t, string(ui.Claims["sub"])+string(ui.Claims["preferred_username"]), matrixUsername)

	ref, err := c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: oxdID, RefreshToken: tok.RefreshToken})
	require.NoError(t, err)
	require.False(t, ref.AccessToken.IsZero())
	rt := ref.RefreshToken
	if rt.IsZero() {
		rt = tok.RefreshToken
	}

	in, err := c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: oxdID, AccessToken: ref.AccessToken})
	if m == clientauth.MethodNone {
		// A public client cannot authenticate at the introspection
		// endpoint (the OP does not list none there): a clear error.
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code)
		assert.Contains(t, oe.Description, "introspection")
	} else {
		require.NoError(t, err)
		assert.True(t, in.Active)
		assert.Equal(t, clientIDOf(m), in.ClientID)
	}

	_, err = c.RevokeToken(ctx, oxdclient.RevokeTokenParams{OxdID: oxdID, Token: rt, TokenTypeHint: "refresh_token"})
	require.NoError(t, err)
	_, err = c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: oxdID, RefreshToken: rt})
	require.Error(t, err, "a revoked refresh token is refused")

	lo, err := c.GetLogoutURI(ctx, oxdclient.GetLogoutURIParams{OxdID: oxdID, IDTokenHint: tok.IDToken, State: "s1"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(lo.URI, issuer+"/"), lo.URI)
	assert.Contains(t, lo.URI, "state=s1")
}

// TestClientAuthMatrixDevOP: one pre-registered client per token endpoint
// authentication method at an OP without dynamic registration, each
// through a whole session, in process (register_site), over the socket
// listener and over the HTTPS extension (TLS), both with protection
// (setup_client with a pre-registered protection client). The OP fetches
// the private_key_jwt site's keys from the HTTPS extension's
// /client-jwks/<oxd_id>.
func TestClientAuthMatrixDevOP(t *testing.T) {
	jwks := &jwksServer{}
	o := matrixOP(t, jwks)
	for _, m := range clientauth.Methods() {
		t.Run(string(m), func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) {
				ctx := testCtx(t)
				eng := matrixEngine(t)
				c := oxdclient.New(eng, oxdclient.Config{})
				reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: siteParams(o, m)})
				require.NoError(t, err)
				jwks.set(eng, reg.OxdID)
				runMatrixFlow(t, ctx, c, o.Issuer(), reg.OxdID, m)
			})
			t.Run("socket", func(t *testing.T) {
				ctx := testCtx(t)
				eng := matrixEngine(t)
				require.True(t, eng.Protected())
				setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
					SiteParams:    siteParams(o, m),
					SetupClientID: setupClientID, SetupClientSecret: setupSecret,
				})
				require.NoError(t, err)
				assert.Equal(t, setupClientID, setup.ClientID)
				assert.Equal(t, clientIDOf(m), setup.ClientIDOfOxdID)
				jwks.set(eng, setup.OxdID)
				runMatrixFlow(t, ctx, socketClient(t, eng, o), o.Issuer(), setup.OxdID, m)
			})
			t.Run("https-extension", func(t *testing.T) {
				ctx := testCtx(t)
				eng := matrixEngine(t)
				setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
					SiteParams:    siteParams(o, m),
					SetupClientID: setupClientID, SetupClientSecret: setupSecret,
				})
				require.NoError(t, err)
				jwks.set(eng, setup.OxdID)
				c := clientOver(t, startListeners(t, eng, nil), true, &oxdclient.ProtectionCredentials{
					ClientID: setupClientID, ClientSecret: setupSecret, OPHost: o.Issuer(), Scope: []string{"openid", "oxd", "uma_protection"},
				})
				runMatrixFlow(t, ctx, c, o.Issuer(), setup.OxdID, m)
			})
		})
	}
}

// loginCode runs get_authorization_url and the browser login of a site.
func loginCode(t *testing.T, ctx context.Context, c *oxdclient.Client, oxdID string) oxdclient.GetTokensByCodeParams {
	t.Helper()
	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	require.NoError(t, err)
	cb, err := oxdtest.BrowserLogin(ctx, nil, au.AuthorizationURL, matrixUsername, matrixPassword)
	require.NoError(t, err)
	return oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")}
}

// TestForgedClientAssertionIsAClearError: client assertions the OP cannot
// verify (signed by keys it does not hold, or with another secret) are
// refused by the OP; the engine's answer names invalid_client and the
// method, and quotes no secret.
func TestForgedClientAssertionIsAClearError(t *testing.T) {
	jwks := &jwksServer{}
	o := matrixOP(t, jwks)
	ctx := testCtx(t)

	t.Run("private_key_jwt signed by unknown keys", func(t *testing.T) {
		eng := matrixEngine(t)
		c := oxdclient.New(eng, oxdclient.Config{})
		reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: siteParams(o, clientauth.MethodPrivateKeyJWT)})
		require.NoError(t, err)
		// The OP holds the keys of another engine's site.
		other := matrixEngine(t)
		oreg, err := oxdclient.New(other, oxdclient.Config{}).RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: siteParams(o, clientauth.MethodPrivateKeyJWT)})
		require.NoError(t, err)
		jwks.set(other, oreg.OxdID)
		_, err = c.GetTokensByCode(ctx, loginCode(t, ctx, c, reg.OxdID))
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		assert.True(t, strings.HasPrefix(oe.Code, oxdclient.CodeHTTPStatusPrefix+"4"), oe.Code)
		assert.Contains(t, oe.Description, "invalid_client")
		assert.Contains(t, string(oe.Details), `"token_endpoint_auth_method":"private_key_jwt"`)
		assert.NotContains(t, oe.Description, "client_assertion=")
	})
	t.Run("client_secret_jwt with another secret", func(t *testing.T) {
		eng := matrixEngine(t)
		c := oxdclient.New(eng, oxdclient.Config{})
		p := siteParams(o, clientauth.MethodSecretJWT)
		forged := "forged-secret-0123456789abcdefghijklmnopq"
		p.ClientSecret = oxdclient.Secret(forged)
		reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: p})
		require.NoError(t, err)
		_, err = c.GetTokensByCode(ctx, loginCode(t, ctx, c, reg.OxdID))
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		assert.Contains(t, oe.Description, "invalid_client")
		assert.Contains(t, string(oe.Details), `"token_endpoint_auth_method":"client_secret_jwt"`)
		assert.NotContains(t, oe.Description, forged)
	})
}

// TestEngineNeverReplaysAJTI: the development OP refuses a client
// assertion whose jti it has seen (replay); many concurrent
// client-authenticated calls of one site all succeed, so every assertion
// the engine produced was new.
func TestEngineNeverReplaysAJTI(t *testing.T) {
	jwks := &jwksServer{}
	o := matrixOP(t, jwks)
	for _, m := range []clientauth.Method{clientauth.MethodSecretJWT, clientauth.MethodPrivateKeyJWT} {
		t.Run(string(m), func(t *testing.T) {
			ctx := testCtx(t)
			eng := matrixEngine(t)
			c := oxdclient.New(eng, oxdclient.Config{})
			reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: siteParams(o, m)})
			require.NoError(t, err)
			jwks.set(eng, reg.OxdID)
			tok, err := c.GetTokensByCode(ctx, loginCode(t, ctx, c, reg.OxdID))
			require.NoError(t, err)
			before := o.Calls(oxdtest.EndpointIntrospection)
			const n = 24
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var in *oxdclient.IntrospectAccessTokenResponse
					in, errs[i] = c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: reg.OxdID, AccessToken: tok.AccessToken})
					if errs[i] == nil && !in.Active {
						errs[i] = errors.New("inactive")
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			assert.Equal(t, before+n, o.Calls(oxdtest.EndpointIntrospection), "one assertion per call, none refused")
		})
	}
}

// TestPreregisteredClientWithoutSecret: a client_id without a secret is a
// pre-registered client (never a dynamic registration): valid for none and
// private_key_jwt, refused with a message naming client_secret otherwise.
func TestPreregisteredClientWithoutSecret(t *testing.T) {
	// An OP with dynamic registration: the engine must not fall back to it.
	o := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := matrixEngine(t)
	c := oxdclient.New(eng, oxdclient.Config{})
	ctx := testCtx(t)
	for _, m := range clientauth.Methods() {
		t.Run(string(m), func(t *testing.T) {
			regs := o.Calls(oxdtest.EndpointRegistration)
			p := siteParams(o, m)
			p.ClientID, p.ClientSecret = "given-"+string(m), ""
			reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: p})
			assert.Equal(t, regs, o.Calls(oxdtest.EndpointRegistration), "no dynamic registration")
			switch m {
			case clientauth.MethodNone, clientauth.MethodPrivateKeyJWT:
				require.NoError(t, err)
				s, err := eng.Store().GetSite(ctx, reg.OxdID)
				require.NoError(t, err)
				assert.True(t, s.Preregistered)
				assert.Equal(t, "given-"+string(m), s.ClientID)
				assert.Equal(t, string(m), s.TokenEndpointAuthMethod)
			default:
				var oe *oxdclient.Error
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code)
				assert.Contains(t, oe.Description, "client_secret")
				assert.Contains(t, oe.Description, string(m))
			}
		})
	}
	t.Run("no method named", func(t *testing.T) {
		p := siteParams(o, clientauth.MethodSecretBasic)
		p.ClientTokenEndpointAuthMethod, p.ClientSecret = "", ""
		_, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: p})
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		assert.Contains(t, oe.Description, "client_secret")
		assert.Contains(t, oe.Description, "none")
	})
}

// TestSetupClientWithoutRegistrationEndpoint: at an OP without dynamic
// registration, setup_client without credentials says which parameters to
// pass; with one pre-registered client it serves both roles, protection
// tokens are minted and protected commands work over the socket.
func TestSetupClientWithoutRegistrationEndpoint(t *testing.T) {
	o := oxdtest.NewTestOP(t, oxdtest.OPConfig{DisableRegistration: true, StrictClientAuthMethod: true, Clients: []oxdtest.StaticClient{{
		ClientID: "both", ClientSecret: matrixSecret, TokenEndpointAuthMethod: "client_secret_post",
		RedirectURIs: []string{matrixRedirect}, GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
	}}})
	ctx := testCtx(t)
	eng := matrixEngine(t)
	local := oxdclient.New(eng, oxdclient.Config{})

	_, err := local.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{OPHost: o.Issuer(), AuthorizationRedirectURI: matrixRedirect}})
	var oe *oxdclient.Error
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code)
	for _, param := range []string{"client_id", "client_secret", "setup_client_id", "setup_client_secret", "setup_client_token_endpoint_auth_method"} {
		assert.Contains(t, oe.Description, param)
	}

	setup, err := local.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: o.Issuer(), AuthorizationRedirectURI: matrixRedirect, ClientID: "both", ClientSecret: matrixSecret,
		ClientTokenEndpointAuthMethod: "client_secret_post",
	}})
	require.NoError(t, err)
	assert.Equal(t, "both", setup.ClientID)
	assert.Equal(t, "both", setup.ClientIDOfOxdID)
	assert.NotEqual(t, setup.OxdID, setup.SetupClientOxdID)

	tok, err := local.GetClientToken(ctx, oxdclient.GetClientTokenParams{OPHost: o.Issuer(), ClientID: "both", ClientSecret: matrixSecret,
		AuthenticationMethod: "client_secret_post", Scope: []string{"openid", "oxd", "uma_protection"}})
	require.NoError(t, err)
	require.False(t, tok.AccessToken.IsZero(), "a protection token is minted")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &oxdserver.SocketServer{Engine: eng}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	tr, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })

	// Without a token the protected socket refuses; with it the login works.
	_, err = oxdclient.New(tr, oxdclient.Config{}).GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeBlankProtectionAccessToken, oe.Code)
	c := oxdclient.New(tr, oxdclient.Config{Protection: &oxdclient.ProtectionCredentials{ClientID: "both", ClientSecret: matrixSecret,
		OPHost: o.Issuer(), Scope: []string{"openid", "oxd", "uma_protection"}, AuthenticationMethod: "client_secret_post"}})
	tokens, err := c.GetTokensByCode(ctx, loginCode(t, ctx, c, setup.OxdID))
	require.NoError(t, err)
	assert.False(t, tokens.AccessToken.IsZero())
}

// TestUpdateSiteRotatesClientKeys: a dynamically registered site without a
// named method gets the strongest method the OP lists (private_key_jwt,
// keys generated by the engine and registered as jwks); update_site
// rotates its keys (RFC 7592 PUT with the new public keys), the new key
// signs at once and the site keeps authenticating.
func TestUpdateSiteRotatesClientKeys(t *testing.T) {
	o := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := matrixEngine(t)
	c := oxdclient.New(eng, oxdclient.Config{})
	ctx := testCtx(t)
	reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: o.Issuer(), AuthorizationRedirectURI: matrixRedirect, Scope: []string{"openid", "profile"},
	}})
	require.NoError(t, err)
	s, err := eng.Store().GetSite(ctx, reg.OxdID)
	require.NoError(t, err)
	require.Equal(t, "private_key_jwt", s.TokenEndpointAuthMethod)
	require.Empty(t, s.ClientSecret)
	before := s.ClientKeys.KIDs()
	require.Len(t, before, 1)

	_, err = c.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: reg.OxdID, Contacts: []string{"ops@example.test"}})
	require.NoError(t, err)
	s, err = eng.Store().GetSite(ctx, reg.OxdID)
	require.NoError(t, err)
	after := s.ClientKeys.KIDs()
	require.Len(t, after, 2, "the old key stays published during its grace period")
	assert.Equal(t, before[0], after[0])
	kid, _ := s.ClientKeys.SigningKID(time.Now())
	assert.Equal(t, after[1], kid, "the new key signs")

	tok, err := c.GetTokensByCode(ctx, loginCode(t, ctx, c, reg.OxdID))
	require.NoError(t, err, "the OP verifies assertions of the rotated key")
	assert.False(t, tok.AccessToken.IsZero())
}
