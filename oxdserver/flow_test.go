package oxdserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exec runs a command on the engine with raw JSON params and returns the
// answer as generic JSON (what a socket client would see).
func exec(t testing.TB, e *oxdserver.Engine, command string, params any) (map[string]any, *oxdclient.Error) {
	t.Helper()
	// The in-process transport: trusted, no protection token checks.
	var m map[string]any
	if err := e.Do(testCtx(t), command, params, &m); err != nil {
		oe, ok := err.(*oxdclient.Error)
		require.True(t, ok, "Do returned %T, want *oxdclient.Error", err)
		return nil, oe
	}
	return m, nil
}

func requireCode(t testing.TB, oe *oxdclient.Error, code string) {
	t.Helper()
	require.NotNil(t, oe, "want error %s, got success", code)
	require.Equal(t, code, oe.Code, "description: %s", oe.Description)
}

// TestFullCodeFlowOverHTTP drives the whole login as a browser would, over
// HTTP with a cookie jar: authorization URL (PKCE, state, nonce), the OP's
// login form, code exchange with id_token validation, userinfo, refresh,
// introspection and the logout URL.
func TestFullCodeFlowOverHTTP(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := testCtx(t)
	c := srv.Client

	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID, Prompt: "login"})
	require.NoError(t, err)
	u, err := url.Parse(au.AuthorizationURL)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, srv.OP.Issuer()+"/authorize", u.Scheme+"://"+u.Host+u.Path)
	assert.Equal(t, "code", q.Get("response_type"))
	assert.Equal(t, srv.ClientID, q.Get("client_id"))
	assert.Equal(t, srv.RedirectURI, q.Get("redirect_uri"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Len(t, q.Get("code_challenge"), 43)
	assert.NotEmpty(t, q.Get("state"))
	assert.NotEmpty(t, q.Get("nonce"))
	assert.NotEqual(t, q.Get("state"), q.Get("nonce"))
	assert.Contains(t, strings.Fields(q.Get("scope")), "openid")
	assert.Equal(t, "login", q.Get("prompt"))

	jar, _ := cookiejar.New(nil)
	cb, err := oxdtest.BrowserLogin(ctx, &http.Client{Jar: jar}, au.AuthorizationURL, "alice", "alice-password")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(cb.String(), srv.RedirectURI+"?"), cb.String())
	require.Equal(t, q.Get("state"), cb.Query().Get("state"))

	tokens, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{
		OxdID: srv.OxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state"),
	})
	require.NoError(t, err)
	assert.NotEmpty(t, tokens.AccessToken.Reveal())
	assert.NotEmpty(t, tokens.IDToken.Reveal())
	assert.NotEmpty(t, tokens.RefreshToken.Reveal())
	assert.Greater(t, tokens.ExpiresIn, int64(0))
	assert.Equal(t, "alice", tokens.IDTokenClaims.String("sub"))
	assert.Equal(t, q.Get("nonce"), tokens.IDTokenClaims.String("nonce"))
	assert.Equal(t, []string{srv.ClientID}, tokens.IDTokenClaims.Strings("aud"))
	// 3.x shape: every claim is an array of strings, numbers included.
	var rawClaims map[string][]string
	require.NoError(t, json.Unmarshal(mustJSON(t, tokens.IDTokenClaims), &rawClaims))
	require.NotEmpty(t, rawClaims["exp"])
	_, ok := tokens.IDTokenClaims.Int("exp")
	assert.True(t, ok)

	ui, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: tokens.AccessToken})
	require.NoError(t, err)
	assert.Equal(t, "alice", ui.Claims.String("sub"))
	assert.Equal(t, "alice@example.test", ui.Claims.String("email"))
	assert.Equal(t, []string{"true"}, ui.Claims.Strings("email_verified"))

	ref, err := c.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: srv.OxdID, RefreshToken: tokens.RefreshToken})
	require.NoError(t, err)
	assert.NotEmpty(t, ref.AccessToken.Reveal())
	assert.NotEqual(t, tokens.AccessToken.Reveal(), ref.AccessToken.Reveal())
	assert.Greater(t, ref.ExpiresIn, int64(0))

	// The refreshed token still reads the user's claims.
	ui2, err := c.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: ref.AccessToken})
	require.NoError(t, err)
	assert.Equal(t, "alice@example.test", ui2.Claims.String("email"))

	in, err := c.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: srv.OxdID, AccessToken: ref.AccessToken})
	require.NoError(t, err)
	assert.True(t, in.Active)
	assert.Equal(t, srv.ClientID, in.ClientID)
	assert.Equal(t, "alice", in.Sub)
	assert.Contains(t, []string(in.Scope), "openid")

	lo, err := c.GetLogoutURI(ctx, oxdclient.GetLogoutURIParams{OxdID: srv.OxdID, IDTokenHint: tokens.IDToken, State: "s t&1"})
	require.NoError(t, err)
	lu, err := url.Parse(lo.URI)
	require.NoError(t, err)
	assert.Equal(t, srv.OP.Issuer()+"/end_session", lu.Scheme+"://"+lu.Host+lu.Path)
	assert.Equal(t, tokens.IDToken.Reveal(), lu.Query().Get("id_token_hint"))
	assert.Equal(t, srv.PostLogoutRedirectURI, lu.Query().Get("post_logout_redirect_uri"))
	assert.Equal(t, "s t&1", lu.Query().Get("state"))

	// The OP accepts the logout URL and sends the browser back.
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(lo.URI)
	require.NoError(t, err)
	res.Body.Close()
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, res.StatusCode)
	loc, err := res.Location()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc.String(), srv.PostLogoutRedirectURI), loc.String())
	assert.Equal(t, "s t&1", loc.Query().Get("state"))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
