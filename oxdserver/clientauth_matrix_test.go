package oxdserver_test

import (
	"context"
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

// jwksServer serves the public keys of one engine site (the OP fetches a
// private_key_jwt client's keys from its jwks_uri at each authentication).
type jwksServer struct {
	mu    sync.Mutex
	eng   *oxdserver.Engine
	oxdID string
}

func (j *jwksServer) set(eng *oxdserver.Engine, oxdID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.eng, j.oxdID = eng, oxdID
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	eng, id := j.eng, j.oxdID
	j.mu.Unlock()
	if eng == nil {
		http.NotFound(w, r)
		return
	}
	b, err := eng.ClientJWKS(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func clientIDOf(m clientauth.Method) string { return "matrix-" + strings.ReplaceAll(string(m), "_", "-") }

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
// through a whole session, in process (register_site) and over the socket
// listener with protection (setup_client with a pre-registered protection
// client).
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
		})
	}
}
