package oxdserver_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// execProtected runs a command with protection enforced (as the HTTPS
// extension does), the token given out of band like an Authorization
// header.
func execProtected(t testing.TB, e *oxdserver.Engine, command, token string, params any) (map[string]any, *oxdclient.Error) {
	t.Helper()
	raw, err := json.Marshal(params)
	require.NoError(t, err)
	data, err := e.Execute(testCtx(t), oxdserver.Request{Command: command, Params: raw, ProtectionToken: token})
	if err != nil {
		oe, ok := err.(*oxdclient.Error)
		require.True(t, ok, "%T", err)
		return nil, oe
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(mustJSON(t, data), &m))
	return m, nil
}

func clientToken(t testing.TB, srv *oxdtest.Server, clientID string, secret oxdclient.Secret, scope ...string) string {
	t.Helper()
	tok, err := srv.Client.GetClientToken(testCtx(t), oxdclient.GetClientTokenParams{OPHost: srv.OP.Issuer(), ClientID: clientID, ClientSecret: secret, Scope: scope})
	require.NoError(t, err)
	return tok.AccessToken.Reveal()
}

// TestProtectionTokenRules covers each row of reference §4.
func TestProtectionTokenRules(t *testing.T) {
	srv := oxdtest.NewServer(t)
	e := srv.Engine
	good := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "openid", "oxd")
	params := map[string]any{"oxd_id": srv.OxdID}

	t.Run("blank token", func(t *testing.T) {
		_, oe := execProtected(t, e, "get_authorization_url", "", params)
		requireFixtureError(t, oe, "blank_protection_access_token")
		_, oe = execProtected(t, e, "get_authorization_url", "", map[string]any{"oxd_id": srv.OxdID, "protection_access_token": "  "})
		requireFixtureError(t, oe, "blank_protection_access_token")
	})
	t.Run("valid token in params or out of band", func(t *testing.T) {
		m, oe := execProtected(t, e, "get_authorization_url", good, params)
		require.Nil(t, oe, "%v", oe)
		assert.NotEmpty(t, m["authorization_url"])
		_, oe = execProtected(t, e, "get_authorization_url", "", map[string]any{"oxd_id": srv.OxdID, "protection_access_token": good})
		require.Nil(t, oe, "%v", oe)
		// The out-of-band token wins over the one in params.
		_, oe = execProtected(t, e, "get_authorization_url", "", map[string]any{"oxd_id": srv.OxdID, "protection_access_token": "bogus"})
		requireFixtureError(t, oe, "inactive_protection_access_token")
		_, oe = execProtected(t, e, "get_authorization_url", good, map[string]any{"oxd_id": srv.OxdID, "protection_access_token": "bogus"})
		require.Nil(t, oe, "%v", oe)
	})
	t.Run("no oxd scope", func(t *testing.T) {
		noOxd := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "openid", "uma_protection")
		_, oe := execProtected(t, e, "get_authorization_url", noOxd, params)
		requireFixtureError(t, oe, "protection_access_token_insufficient_scope")
	})
	t.Run("inactive token", func(t *testing.T) {
		tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
		require.True(t, srv.OP.Revoke(tok))
		_, oe := execProtected(t, e, "get_authorization_url", tok, params)
		requireFixtureError(t, oe, "inactive_protection_access_token")
	})
	t.Run("token of another setup client", func(t *testing.T) {
		other, err := srv.Client.SetupClient(testCtx(t), oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
			OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://other.example/cb"}})
		require.NoError(t, err)
		tok := clientToken(t, srv, other.ClientID, other.ClientSecret, "oxd")
		_, oe := execProtected(t, e, "get_authorization_url", tok, params)
		requireFixtureError(t, oe, "invalid_protection_access_token")
		// …but it protects its own site.
		_, oe = execProtected(t, e, "get_authorization_url", tok, map[string]any{"oxd_id": other.OxdID})
		require.Nil(t, oe, "%v", oe)
	})
	t.Run("site without setup client", func(t *testing.T) {
		plain, err := srv.Client.RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
			OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://plain.example/cb"}})
		require.NoError(t, err)
		_, oe := execProtected(t, e, "get_authorization_url", good, map[string]any{"oxd_id": plain.OxdID})
		requireFixtureError(t, oe, "no_setup_client_for_oxd_id")
	})
	t.Run("blank oxd_id and unknown oxd_id come first", func(t *testing.T) {
		_, oe := execProtected(t, e, "get_user_info", "", map[string]any{})
		requireFixtureError(t, oe, "bad_request_no_oxd_id")
		_, oe = execProtected(t, e, "get_user_info", "", map[string]any{"oxd_id": "nope"})
		requireFixtureError(t, oe, "invalid_oxd_id")
	})
	t.Run("get_rp needs the tenant's token", func(t *testing.T) {
		_, oe := execProtected(t, e, "get_rp", "", map[string]any{"list": true})
		requireFixtureError(t, oe, "blank_protection_access_token")
		l, oe := execProtected(t, e, "get_rp", good, map[string]any{"list": true})
		require.Nil(t, oe, "%v", oe)
		ids := map[string]bool{}
		for _, n := range l["node"].([]any) {
			ids[n.(map[string]any)["oxd_id"].(string)] = true
		}
		assert.True(t, ids[srv.OxdID] && ids[srv.Setup.SetupClientOxdID], "%v", ids)
		_, oe = execProtected(t, e, "get_rp", "", map[string]any{"oxd_id": srv.OxdID})
		requireFixtureError(t, oe, "blank_protection_access_token")
		rp, oe := execProtected(t, e, "get_rp", good, map[string]any{"oxd_id": srv.OxdID})
		require.Nil(t, oe, "%v", oe)
		assert.Equal(t, srv.ClientID, rp["node"].(map[string]any)["client_id"])
		// get_client_token (credentials are the proof) and setup_client
		// stay open.
		_, oe = execProtected(t, e, "get_client_token", "", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID, "client_secret": srv.Setup.ClientSecret.Reveal(), "scope": []string{"oxd"}})
		require.Nil(t, oe)
		_, oe = execProtected(t, e, "setup_client", "", map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://x.example/cb"})
		require.Nil(t, oe)
	})
	t.Run("update_site of the setup site itself needs its token", func(t *testing.T) {
		_, oe := execProtected(t, e, "update_site", "", map[string]any{"oxd_id": srv.Setup.SetupClientOxdID, "contacts": []string{"ops@example.test"}})
		requireFixtureError(t, oe, "blank_protection_access_token")
		_, oe = execProtected(t, e, "update_site", good, map[string]any{"oxd_id": srv.Setup.SetupClientOxdID, "contacts": []string{"ops@example.test"}})
		require.Nil(t, oe, "%v", oe)
		_, oe = execProtected(t, e, "update_site", "", map[string]any{"oxd_id": srv.OxdID, "contacts": []string{"ops@example.test"}})
		requireFixtureError(t, oe, "blank_protection_access_token")
	})
	t.Run("register_site with a token links the new site", func(t *testing.T) {
		reg := map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://linked.example/cb"}
		_, oe := execProtected(t, e, "register_site", "", reg)
		requireFixtureError(t, oe, "blank_protection_access_token")
		m, oe := execProtected(t, e, "register_site", good, reg)
		require.Nil(t, oe, "%v", oe)
		_, oe = execProtected(t, e, "get_authorization_url", good, map[string]any{"oxd_id": m["oxd_id"]})
		require.Nil(t, oe, "%v", oe)
		rp, oe := exec(t, e, "get_rp", map[string]any{"oxd_id": m["oxd_id"]})
		require.Nil(t, oe)
		assert.Equal(t, srv.Setup.ClientID, rp["node"].(map[string]any)["setup_client_id"])
	})
}

// TestProtectionTokenPastItsExp: the OP still says the token is active (its
// clock lags), but the token's exp has passed by the engine's clock: the
// token is refused as inactive, and accepted again by no later call.
func TestProtectionTokenPastItsExp(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Now: clk.Now}))
	tok, err := srv.Client.GetClientToken(testCtx(t), oxdclient.GetClientTokenParams{OPHost: srv.OP.Issuer(),
		ClientID: srv.Setup.ClientID, ClientSecret: srv.Setup.ClientSecret, Scope: []string{"openid", "oxd"}})
	require.NoError(t, err)
	require.Positive(t, tok.ExpiresIn)
	// The OP dates exp from its own (real) clock when it issues the token:
	// start the engine's clock there, however long the setup took on a
	// loaded machine (else exp may still be ahead after the advance below).
	clk.Advance(time.Since(clk.Now()))
	params := map[string]any{"oxd_id": srv.OxdID}
	_, oe := execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
	require.Nil(t, oe, "%v", oe)

	// The OP's clock is the real one: catch up with it first (the setup
	// can take seconds on a loaded machine), then pass the token's exp.
	clk.Advance(time.Since(clk.Now()) + time.Duration(tok.ExpiresIn)*time.Second + time.Second)
	_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
	requireFixtureError(t, oe, "inactive_protection_access_token")
}

// TestProtectedInProcessClient: with WithProtection the in-process client
// mints protection tokens by itself and a whole login works.
func TestProtectedInProcessClient(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithProtection())
	ctx := testCtx(t)
	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
	_, err = srv.Client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: tok.AccessToken})
	require.NoError(t, err)
	// A client without credentials is refused.
	bare := oxdclient.New(srv.Engine.ProtectedTransport(), oxdclient.Config{})
	_, err = bare.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	requireOxdCode(t, err, oxdclient.CodeBlankProtectionAccessToken)
}
