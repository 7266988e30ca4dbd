package oxdserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// listeners serves e on a loopback socket listener and an HTTPS-extension
// handler on a loopback TLS server.
type listeners struct {
	sock     *oxdclient.Socket
	sockAddr string
	https    *httptest.Server
}

func startListeners(t *testing.T, e *oxdserver.Engine, log *slog.Logger) *listeners {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &oxdserver.SocketServer{Engine: e, Logger: log}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	sock, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{Timeout: 20 * time.Second})
	require.NoError(t, err)
	hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(e, oxdserver.HTTPSConfig{Logger: log}))
	t.Cleanup(func() {
		hs.Close()
		_ = sock.Close()
		_ = srv.Close()
		if err := <-served; !errors.Is(err, oxdserver.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &listeners{sock: sock, sockAddr: ln.Addr().String(), https: hs}
}

// socketCall runs command over the socket with the token in params (when
// not empty); it returns the answer's data or the oxd error.
func (l *listeners) socketCall(t *testing.T, command, token string, params map[string]any) (map[string]any, *oxdclient.Error) {
	t.Helper()
	p := map[string]any{}
	for k, v := range params {
		p[k] = v
	}
	if token != "" {
		p["protection_access_token"] = token
	}
	var out map[string]any
	err := l.sock.Do(testCtx(t), command, p, &out)
	if err == nil {
		return out, nil
	}
	var oe *oxdclient.Error
	require.True(t, errors.As(err, &oe), "%s over the socket: %v", command, err)
	return nil, oe
}

// httpsCall posts params to the command's path, the token in the
// Authorization header (when not empty); it returns the HTTP status and
// the body.
func (l *listeners) httpsCall(t *testing.T, command, token string, params map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(params)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, l.https.URL+"/"+strings.ReplaceAll(command, "_", "-"), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := l.https.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestCrossTenantIsolation (server hardening, defects 1 and 2): with the
// default configuration, no command over the socket or the HTTPS extension
// reads or changes tenant A's site with tenant B's protection token or with
// none; A's own token works.
func TestCrossTenantIsolation(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Logger: log}))
	require.True(t, srv.Engine.Protected(), "protection must be on by default")
	l := startListeners(t, srv.Engine, log)
	ctx := testCtx(t)

	// Tenant B: its own setup_client over the socket (setup_client is open).
	bSetup, oe := l.socketCall(t, "setup_client", "", map[string]any{"op_host": srv.OP.Issuer(),
		"authorization_redirect_uri": "https://b.example/cb", "scope": []string{"openid"}})
	require.Nil(t, oe, "%v", oe)
	tokB := clientToken(t, srv, bSetup["client_id"].(string), oxdclient.Secret(bSetup["client_secret"].(string)), "oxd")
	tokA := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	aSetupID := srv.Setup.SetupClientOxdID

	before, err := srv.Client.GetRP(ctx, oxdclient.GetRPParams{OxdID: srv.OxdID})
	require.NoError(t, err)

	// Every command, with parameters that would succeed for the right
	// caller, aimed at A's site (and at A's setup site).
	attack := func(oxdID string) map[string]map[string]any {
		return map[string]map[string]any{
			oxdclient.CmdUpdateSite: {"oxd_id": oxdID, "authorization_redirect_uri": "https://attacker.example/cb",
				"contacts": []string{"attacker@example.test"}},
			oxdclient.CmdRemoveSite:                   {"oxd_id": oxdID},
			oxdclient.CmdGetRP:                        {"oxd_id": oxdID},
			oxdclient.CmdGetAuthorizationURL:          {"oxd_id": oxdID},
			oxdclient.CmdGetTokensByCode:              {"oxd_id": oxdID, "code": "c", "state": "s"},
			oxdclient.CmdGetAccessTokenByRefreshToken: {"oxd_id": oxdID, "refresh_token": "r"},
			oxdclient.CmdGetUserInfo:                  {"oxd_id": oxdID, "access_token": "a"},
			oxdclient.CmdGetLogoutURI:                 {"oxd_id": oxdID},
			oxdclient.CmdIntrospectAccessToken:        {"oxd_id": oxdID, "access_token": "a"},
			oxdclient.CmdIntrospectRPT:                {"oxd_id": oxdID, "rpt": "r"},
			oxdclient.CmdUMARSProtect: {"oxd_id": oxdID, "overwrite": true, "resources": []any{map[string]any{"path": "/x",
				"conditions": []any{map[string]any{"httpMethods": []string{"GET"}, "scopes": []string{"read"}}}}}},
			oxdclient.CmdUMARSCheckAccess:           {"oxd_id": oxdID, "rpt": "", "path": "/x", "http_method": "GET"},
			oxdclient.CmdUMARPGetRPT:                {"oxd_id": oxdID, "ticket": "t"},
			oxdclient.CmdRevokeToken:                {"oxd_id": oxdID, "token": "t"},
			oxdclient.CmdGetClientJWKS:              {"oxd_id": oxdID},
			oxdclient.CmdUMARPGetClaimsGatheringURL: {"oxd_id": oxdID, "ticket": "t", "claims_redirect_uri": srv.ClaimsRedirectURI},
		}
	}
	denied := []string{oxdclient.CodeBlankProtectionAccessToken, oxdclient.CodeInvalidProtectionAccessToken}
	covered := map[string]bool{}
	for _, target := range []string{srv.OxdID, aSetupID} {
		for command, params := range attack(target) {
			covered[command] = true
			for _, tok := range []string{"", tokB} {
				who := "no token"
				if tok != "" {
					who = "B's token"
				}
				_, oe := l.socketCall(t, command, tok, params)
				if assert.NotNil(t, oe, "socket %s on %s with %s succeeded", command, target, who) {
					assert.Contains(t, denied, oe.Code, "socket %s with %s", command, who)
				}
				if command == oxdclient.CmdGetRP {
					continue // no HTTPS path (3.1.x)
				}
				status, body := l.httpsCall(t, command, tok, params)
				if tok == "" {
					assert.Equal(t, http.StatusForbidden, status, "https %s without a token: %s", command, body)
					continue
				}
				assert.Equal(t, http.StatusOK, status, "https %s: %s", command, body)
				assert.Contains(t, body, `"error":"invalid_protection_access_token"`, "https %s with B's token", command)
			}
		}
	}
	// register_site needs a token; get_rp's list needs one and shows only
	// the caller's own tenant.
	reg := map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://x.example/cb"}
	_, oe = l.socketCall(t, oxdclient.CmdRegisterSite, "", reg)
	require.NotNil(t, oe)
	assert.Equal(t, oxdclient.CodeBlankProtectionAccessToken, oe.Code)
	status, _ := l.httpsCall(t, oxdclient.CmdRegisterSite, "", reg)
	assert.Equal(t, http.StatusForbidden, status)
	_, oe = l.socketCall(t, oxdclient.CmdGetRP, "", map[string]any{"list": true})
	require.NotNil(t, oe)
	assert.Equal(t, oxdclient.CodeBlankProtectionAccessToken, oe.Code)
	list, oe := l.socketCall(t, oxdclient.CmdGetRP, tokB, map[string]any{"list": true})
	require.Nil(t, oe, "%v", oe)
	for _, n := range list["node"].([]any) {
		id := n.(map[string]any)["oxd_id"]
		assert.NotContains(t, []any{srv.OxdID, aSetupID}, id, "B's list shows A's site")
	}
	assert.Len(t, list["node"], 2, "B's list holds B's setup and regular sites")
	for _, c := range oxdserver.Commands() {
		if !covered[c] && !slices.Contains([]string{oxdclient.CmdSetupClient, oxdclient.CmdRegisterSite, oxdclient.CmdGetClientToken}, c) {
			t.Errorf("command %s not tried", c)
		}
	}

	// A's site is unchanged and still there.
	after, err := srv.Client.GetRP(ctx, oxdclient.GetRPParams{OxdID: srv.OxdID})
	require.NoError(t, err)
	assert.JSONEq(t, string(mustJSON(t, before)), string(mustJSON(t, after)))

	// A's own token works over both listeners.
	_, oe = l.socketCall(t, oxdclient.CmdGetAuthorizationURL, tokA, map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe, "%v", oe)
	rp, oe := l.socketCall(t, oxdclient.CmdGetRP, tokA, map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe, "%v", oe)
	assert.Equal(t, srv.ClientID, rp["node"].(map[string]any)["client_id"])
	status, body := l.httpsCall(t, oxdclient.CmdGetAuthorizationURL, tokA, map[string]any{"oxd_id": srv.OxdID})
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"status":"ok"`)

	// No secret or token reached the logs.
	out := logs.String()
	require.NotEmpty(t, out)
	for _, secret := range []string{srv.Setup.ClientSecret.Reveal(), bSetup["client_secret"].(string), tokA, tokB} {
		assert.NotContains(t, out, secret)
	}
}

// newTestLogger logs everything (debug and up) as text to w.
func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
