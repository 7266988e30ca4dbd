package oxdtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

func serverCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewServerIsReady(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := serverCtx(t)
	require.NotEmpty(t, srv.OxdID)
	require.NotEmpty(t, srv.ClientID)
	assert.Equal(t, srv.Setup.ClientID, srv.Protection.ClientID)
	assert.Equal(t, srv.OP.Issuer(), srv.Protection.OPHost)

	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
	assert.Equal(t, "alice", tok.IDTokenClaims.String("sub"))
	ui, err := srv.Client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: tok.AccessToken})
	require.NoError(t, err)
	assert.Equal(t, "Alice Example", ui.Claims.String("name"))

	_, _, err = srv.Login(ctx, "alice", "wrong")
	require.ErrorIs(t, err, oxdtest.ErrLoginFailed)
}

func TestNewServerOptions(t *testing.T) {
	srv := oxdtest.NewServer(t,
		oxdtest.WithRedirectURIs("https://app.example.test/cb", "", ""),
		oxdtest.WithScopes("openid", "email"),
		oxdtest.WithProtection(),
		oxdtest.WithOPConfig(oxdtest.OPConfig{Users: []oxdtest.User{{Subject: "s1", Username: "u", Password: "p", Claims: map[string]any{"email": "u@example.test"}}}}),
	)
	ctx := serverCtx(t)
	assert.Equal(t, "https://app.example.test/cb", srv.RedirectURI)
	assert.Equal(t, oxdtest.DefaultPostLogoutRedirectURI, srv.PostLogoutRedirectURI)
	au, err := srv.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	require.NoError(t, err)
	assert.Contains(t, au.AuthorizationURL, "redirect_uri=https%3A%2F%2Fapp.example.test%2Fcb")
	assert.Contains(t, au.AuthorizationURL, "scope=openid+email+uma_protection")
	tok, err := srv.LoginTokens(ctx, "u", "p")
	require.NoError(t, err)
	assert.Equal(t, "s1", tok.IDTokenClaims.String("sub"))

	// Protection is enforced: a client without credentials is refused.
	bare := oxdclient.New(srv.Engine.ProtectedTransport(), oxdclient.Config{})
	_, err = bare.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	require.True(t, oxdclient.IsProtectionTokenError(err), "%v", err)
}

func TestBrowserLogin(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := serverCtx(t)
	au, err := srv.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	require.NoError(t, err)

	_, err = oxdtest.BrowserLogin(ctx, nil, au.AuthorizationURL, "bob", "not-bobs")
	require.True(t, errors.Is(err, oxdtest.ErrLoginFailed), "%v", err)
	_, err = oxdtest.BrowserLogin(ctx, &http.Client{}, au.AuthorizationURL, "bob", "bob-password")
	require.Error(t, err, "a client without a cookie jar is refused")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	cb, err := oxdtest.BrowserLogin(ctx, hc, au.AuthorizationURL, "bob", "bob-password")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(cb.String(), srv.RedirectURI+"?"), cb.String())
	tok, err := srv.Client.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: srv.OxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")})
	require.NoError(t, err)
	assert.Equal(t, "bob", tok.IDTokenClaims.String("sub"))

	// The browser now has an OP session: the next login needs no form.
	au2, err := srv.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	require.NoError(t, err)
	cb2, err := oxdtest.BrowserLogin(ctx, hc, au2.AuthorizationURL, "", "")
	require.NoError(t, err)
	assert.NotEmpty(t, cb2.Query().Get("code"))
}
