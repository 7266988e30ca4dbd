package oxdserver_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestUpdateSiteGrantTypesFidelity (server hardening, defect 10): over the
// socket, update_site with the grant types a 3.1.x client sends keeps the
// grants the site needs (refresh_token, client_credentials, the UMA
// ticket grant), maps uma_ticket to its registered URI, drops unknown
// names with a warning; the site then refreshes tokens and completes the
// UMA RPT flow against the development OP.
func TestUpdateSiteGrantTypesFidelity(t *testing.T) {
	logs := &syncBuffer{}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Logger: newTestLogger(logs)}))
	l := startListeners(t, srv.Engine, nil)
	tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	call := func(command string, params map[string]any) map[string]any {
		t.Helper()
		m, oe := l.socketCall(t, command, tok, params)
		require.Nil(t, oe, "%s: %v", command, oe)
		return m
	}

	call(oxdclient.CmdUpdateSite, map[string]any{"oxd_id": srv.OxdID,
		"grant_types": []string{"authorization_code", "uma_ticket", "made_up_grant"}})
	node := call(oxdclient.CmdGetRP, map[string]any{"oxd_id": srv.OxdID})["node"].(map[string]any)
	var grants []string
	for _, g := range node["grant_types"].([]any) {
		grants = append(grants, g.(string))
	}
	assert.Subset(t, grants, []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:uma-ticket"})
	assert.NotContains(t, grants, "uma_ticket")
	assert.NotContains(t, grants, "made_up_grant")
	assert.Contains(t, logs.String(), "grant_type=made_up_grant")

	// The OP still issues refresh tokens to the site.
	tokens, err := srv.LoginTokens(testCtx(t), "alice", "alice-password")
	require.NoError(t, err)
	require.False(t, tokens.RefreshToken.IsZero(), "no refresh token after update_site")
	call(oxdclient.CmdGetAccessTokenByRefreshToken, map[string]any{"oxd_id": srv.OxdID, "refresh_token": tokens.RefreshToken.Reveal()})

	// The UMA RPT flow works for the updated site.
	call(oxdclient.CmdUMARSProtect, map[string]any{"oxd_id": srv.OxdID, "resources": umaResources})
	m := call(oxdclient.CmdUMARSCheckAccess, map[string]any{"oxd_id": srv.OxdID, "rpt": "", "path": "/photos", "http_method": "GET"})
	require.Equal(t, "denied", m["access"])
	rpt := call(oxdclient.CmdUMARPGetRPT, map[string]any{"oxd_id": srv.OxdID, "ticket": m["ticket"]})
	require.NotEmpty(t, rpt["access_token"])
	m = call(oxdclient.CmdUMARSCheckAccess, map[string]any{"oxd_id": srv.OxdID, "rpt": rpt["access_token"], "path": "/photos", "http_method": "GET"})
	assert.Equal(t, "granted", m["access"])

	// register_site with a 3.1.x client's short names registers too.
	reg := call(oxdclient.CmdRegisterSite, map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://rp.example.test/cb2",
		"grant_types": []string{"authorization_code", "uma_ticket", "made_up_grant"}})
	assert.NotEmpty(t, reg["oxd_id"])
}
