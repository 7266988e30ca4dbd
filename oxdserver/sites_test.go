package oxdserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/internal/leakcheck"
	"github.com/oxdgo/oxd/internal/syncbuf"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

func TestUpdateSite(t *testing.T) {
	srv := oxdtest.NewServer(t)
	e := srv.Engine
	_, oe := exec(t, e, "update_site", map[string]any{"oxd_id": srv.OxdID, "grant_types": []string{"authorization_code", "refresh_token"},
		"scope": []string{"openid", "email"}, "redirect_uris": []string{"https://rp.example.test/second"}, "contacts": []string{"a@example.test"}})
	require.Nil(t, oe, "%v", oe)
	// 3.1.4 lost the grant types here and failed on the next update (#242).
	for range 2 {
		m, oe := exec(t, e, "update_site", map[string]any{"oxd_id": srv.OxdID, "post_logout_redirect_uri": "https://rp.example.test/bye"})
		require.Nil(t, oe, "%v", oe)
		assert.Equal(t, map[string]any{"oxd_id": srv.OxdID}, m)
	}
	node, _ := exec(t, e, "get_rp", map[string]any{"oxd_id": srv.OxdID})
	site := node["node"].(map[string]any)
	assert.Equal(t, []any{"openid", "email"}, site["scope"])
	assert.Equal(t, []any{srv.RedirectURI, "https://rp.example.test/second"}, site["redirect_uris"])
	assert.Equal(t, "https://rp.example.test/bye", site["logout_redirect_uri"])
	assert.Contains(t, site["grant_types"], "client_credentials", "setup_client's site keeps client_credentials")

	// The OP has the new registration: the new scope set and redirect URI are used.
	au, err := srv.Client.GetAuthorizationURL(testCtx(t), oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	require.NoError(t, err)
	assert.Contains(t, au.AuthorizationURL, "scope=openid+email&")
	cb, err := srv.OP.Login(testCtx(t), au.AuthorizationURL, "alice", "alice-password")
	require.NoError(t, err)
	assert.NotEmpty(t, cb.Query().Get("code"))
	lo, err := srv.Client.GetLogoutURI(testCtx(t), oxdclient.GetLogoutURIParams{OxdID: srv.OxdID})
	require.NoError(t, err)
	assert.Contains(t, lo.URI, "post_logout_redirect_uri=https%3A%2F%2Frp.example.test%2Fbye")

	_, oe = exec(t, e, "update_site", map[string]any{"oxd_id": srv.OxdID, "authorization_redirect_uri": "nope"})
	requireFixtureError(t, oe, "invalid_authorization_redirect_uri")
}

func TestRemoveSiteAndGetRP(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithClientName("my site"))
	e := srv.Engine
	list, oe := exec(t, e, "get_rp", map[string]any{"list": true})
	require.Nil(t, oe)
	nodes := list["node"].([]any)
	require.Len(t, nodes, 2)
	var names []string
	for _, n := range nodes {
		m := n.(map[string]any)
		assert.Len(t, m, 2)
		names = append(names, m["client_name"].(string))
	}
	sort.Strings(names)
	assert.Equal(t, []string{"my site", "my site (setup)"}, names)

	setupNode, oe := exec(t, e, "get_rp", map[string]any{"oxd_id": srv.Setup.SetupClientOxdID})
	require.Nil(t, oe)
	s := setupNode["node"].(map[string]any)
	assert.Equal(t, true, s["is_setup_client"])
	assert.Contains(t, s["scope"], "oxd")
	assert.Contains(t, s["grant_types"], "client_credentials")
	assert.Equal(t, srv.Setup.ClientID, s["client_id"])

	m, oe := exec(t, e, "remove_site", map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe)
	assert.Equal(t, map[string]any{"oxd_id": srv.OxdID}, m)
	_, oe = exec(t, e, "get_authorization_url", map[string]any{"oxd_id": srv.OxdID})
	requireFixtureError(t, oe, "invalid_oxd_id")
	_, oe = exec(t, e, "remove_site", map[string]any{"oxd_id": srv.OxdID})
	requireFixtureError(t, oe, "invalid_oxd_id")
	list, _ = exec(t, e, "get_rp", map[string]any{"list": true})
	assert.Len(t, list["node"], 1)
	_, oe = exec(t, e, "get_rp", map[string]any{})
	requireFixtureError(t, oe, "bad_request_no_oxd_id")
}

// TestPreregisteredClient: register_site with client_id and client_secret
// does no dynamic registration; the login works with those credentials.
func TestPreregisteredClient(t *testing.T) {
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	// Register a client out of band, as an administrator would.
	body := `{"redirect_uris":["https://pre.example/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"openid profile email"}`
	res, err := http.Post(op.Issuer()+"/register", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	var reg map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&reg))
	res.Body.Close()

	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	before := op.Calls(oxdtest.EndpointRegistration)
	m, oe := exec(t, e, "register_site", map[string]any{"op_host": op.Issuer(), "authorization_redirect_uri": "https://pre.example/cb",
		"client_id": reg["client_id"], "client_secret": reg["client_secret"], "scope": []string{"openid", "email"}})
	require.Nil(t, oe, "%v", oe)
	assert.Equal(t, before, op.Calls(oxdtest.EndpointRegistration), "no dynamic registration")
	assert.Equal(t, op.Issuer(), m["op_host"])
	id := m["oxd_id"].(string)

	c := oxdclient.New(e, oxdclient.Config{})
	au, err := c.GetAuthorizationURL(testCtx(t), oxdclient.GetAuthorizationURLParams{OxdID: id})
	require.NoError(t, err)
	cb, err := op.Login(testCtx(t), au.AuthorizationURL, "bob", "bob-password")
	require.NoError(t, err)
	tok, err := c.GetTokensByCode(testCtx(t), oxdclient.GetTokensByCodeParams{OxdID: id, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")})
	require.NoError(t, err)
	assert.Equal(t, "bob", tok.IDTokenClaims.String("sub"))

	// update_site needs a registration the engine made.
	_, oe = exec(t, e, "update_site", map[string]any{"oxd_id": id, "contacts": []string{"x@example.test"}})
	requireCode(t, oe, oxdclient.CodeInvalidRegistrationClientURL)
}

// TestDiscoveryPathIsHonoured: an OP whose issuer has a path is found with
// op_discovery_path; without it discovery fails cleanly.
func TestDiscoveryPathIsHonoured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := "http://" + ln.Addr().String()
	op, err := oxdtest.NewOP(host+"/oxauth", oxdtest.OPConfig{})
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(op)
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); op.Close() })

	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	_, oe := exec(t, e, "register_site", map[string]any{"op_host": host, "authorization_redirect_uri": "https://rp.example/cb"})
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)
	assert.True(t, strings.HasPrefix(oe.Description, "Unable to fetch Connect discovery response /.well-known/openid-configuration"))
	for _, path := range []string{"/oxauth", "oxauth", "/oxauth/"} {
		m, oe := exec(t, e, "register_site", map[string]any{"op_host": host + "/", "op_discovery_path": path, "authorization_redirect_uri": "https://rp.example/cb"})
		require.Nil(t, oe, "path %q: %v", path, oe)
		au, oe := exec(t, e, "get_authorization_url", map[string]any{"oxd_id": m["oxd_id"]})
		require.Nil(t, oe)
		assert.True(t, strings.HasPrefix(au["authorization_url"].(string), host+"/oxauth/authorize?"))
	}
	_, oe = exec(t, e, "get_client_token", map[string]any{"op_host": host, "op_discovery_path": "/oxauth", "client_id": "x", "client_secret": "y"})
	requireCode(t, oe, "http_status_401")
}

func TestDiscoveryIssuerMismatchAndCaching(t *testing.T) {
	f := newFakeOP(t)
	clk := &clock{t: time.Now()}
	e, id := fakeSite(t, f, oxdserver.Config{Now: clk.Now, DiscoveryTTL: time.Minute})
	require.Equal(t, 1, f.count("discovery"))
	for range 3 {
		_, oe := exec(t, e, "get_authorization_url", map[string]any{"oxd_id": id})
		require.Nil(t, oe)
	}
	assert.Equal(t, 1, f.count("discovery"), "discovery is cached")

	clk.Advance(2 * time.Minute)
	_, oe := exec(t, e, "get_authorization_url", map[string]any{"oxd_id": id})
	require.Nil(t, oe)
	assert.Equal(t, 2, f.count("discovery"), "refetched after the TTL")

	// A failed refetch keeps the stale document.
	f.mu.Lock()
	f.discFail = true
	f.mu.Unlock()
	clk.Advance(2 * time.Minute)
	_, oe = exec(t, e, "get_authorization_url", map[string]any{"oxd_id": id})
	require.Nil(t, oe)
	assert.Equal(t, 3, f.count("discovery"))

	// A fresh engine without a cached document gets the specific error.
	e2, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	_, oe = exec(t, e2, "register_site", map[string]any{"op_host": f.issuer(), "authorization_redirect_uri": "https://rp.example/cb"})
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)
	assert.NotContains(t, oe.Description, "500", "no HTTP status passed on (no probing through the engine)")

	// An OP claiming another issuer is refused.
	f.mu.Lock()
	f.discFail = false
	f.discovery = func(doc map[string]any) { doc["issuer"] = "https://impostor.example" }
	f.mu.Unlock()
	_, oe = exec(t, e2, "register_site", map[string]any{"op_host": f.issuer(), "authorization_redirect_uri": "https://rp.example/cb"})
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)
	assert.Contains(t, oe.Description, "not a valid discovery document")
	// Unreachable OP.
	_, oe = exec(t, e2, "register_site", map[string]any{"op_host": "http://127.0.0.1:1", "authorization_redirect_uri": "https://rp.example/cb"})
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)
}

// TestOPFaultsGiveSpecificErrors uses the development OP's fault injection:
// garbage, a hanging endpoint and an unknown signing key give specific
// errors quickly and never the generic internal error.
func TestOPFaultsGiveSpecificErrors(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := testCtx(t)

	srv.OP.SetFault(oxdtest.EndpointToken, oxdtest.FaultUnknownKey)
	_, err := srv.LoginTokens(ctx, "alice", "alice-password")
	requireOxdCode(t, err, oxdclient.CodeInvalidIDTokenBadSignature)

	srv.OP.SetFault(oxdtest.EndpointToken, oxdtest.FaultGarbage)
	_, err = srv.LoginTokens(ctx, "alice", "alice-password")
	requireOxdCode(t, err, oxdclient.CodeInternalError)
	assert.False(t, oxdclient.IsGenericInternalError(err))

	// A hanging endpoint: the engine gives up after OPTimeout.
	slow := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{OPTimeout: time.Second}))
	slow.OP.SetFault(oxdtest.EndpointToken, oxdtest.FaultSlow)
	start := time.Now()
	_, err = slow.LoginTokens(ctx, "alice", "alice-password")
	oe := requireOxdCode(t, err, oxdclient.CodeInternalError)
	assert.Contains(t, oe.Description, "did not answer in time")
	assert.False(t, oxdclient.IsGenericInternalError(err))
	assert.Less(t, time.Since(start), 10*time.Second)

	srv.OP.SetFault(oxdtest.EndpointToken, oxdtest.FaultNone)
	srv.OP.SetFault(oxdtest.EndpointUserinfo, oxdtest.FaultHTTP500)
	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
	_, err = srv.Client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: tok.AccessToken})
	requireOxdCode(t, err, "http_status_500")

	// The OP rotates its keys: the next login still validates.
	srv.OP.SetFault(oxdtest.EndpointUserinfo, oxdtest.FaultNone)
	srv.OP.RotateKeys()
	_, err = srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
}

func TestGetClientToken(t *testing.T) {
	srv := oxdtest.NewServer(t)
	e := srv.Engine
	m, oe := exec(t, e, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID,
		"client_secret": srv.Setup.ClientSecret.Reveal(), "scope": []string{"oxd", "uma_protection"}})
	require.Nil(t, oe)
	assert.NotEmpty(t, m["access_token"])
	assert.Greater(t, m["expires_in"], float64(0))
	assert.Equal(t, "oxd uma_protection", m["scope"])
	assert.Contains(t, m, "refresh_token")

	_, oe = exec(t, e, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID, "client_secret": "wrong"})
	requireCode(t, oe, "http_status_401")
	assert.NotContains(t, oe.Description, "wrong")
	_, oe = exec(t, e, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID,
		"authentication_method": "private_key_jwt", "algorithm": "RS256", "key_id": "k"})
	requireCode(t, oe, oxdclient.CodeInvalidAlgorithm)
	_, oe = exec(t, e, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID})
	requireCode(t, oe, oxdclient.CodeInvalidRequest)
}

// TestAnswersHaveTheShapesOf314 runs every command against the development
// OP and compares the keys of each answer with the 3.1.4 fixture: every
// field present (null when unset), nothing else.
func TestAnswersHaveTheShapesOf314(t *testing.T) {
	srv := oxdtest.NewServer(t)
	e := srv.Engine
	ctx := testCtx(t)
	keysOf := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		sort.Strings(k)
		return k
	}
	fixtureKeys := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(fixtures, name+".response.json"))
		require.NoError(t, err)
		var env struct{ Data map[string]any }
		require.NoError(t, json.Unmarshal(b, &env))
		return keysOf(env.Data)
	}
	check := func(fixture string, m map[string]any, oe *oxdclient.Error) {
		t.Helper()
		require.Nil(t, oe, "%s: %v", fixture, oe)
		assert.Equal(t, fixtureKeys(fixture), keysOf(m), fixture)
	}

	m, oe := exec(t, e, "setup_client", map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://rp.example/cb"})
	check("setup_client", m, oe)
	m, oe = exec(t, e, "register_site", map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://rp.example/cb"})
	check("register_site", m, oe)
	m, oe = exec(t, e, "update_site", map[string]any{"oxd_id": srv.OxdID, "contacts": []string{"a@example.test"}})
	check("update_site", m, oe)
	m, oe = exec(t, e, "get_authorization_url", map[string]any{"oxd_id": srv.OxdID})
	check("get_authorization_url", m, oe)

	code, state, err := srv.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	m, oe = exec(t, e, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	check("get_tokens_by_code", m, oe)
	for k, v := range m["id_token_claims"].(map[string]any) {
		arr, ok := v.([]any)
		require.True(t, ok, "claim %s is not an array", k)
		for _, x := range arr {
			_, ok := x.(string)
			require.True(t, ok, "claim %s has a non-string element", k)
		}
	}
	at, rt := m["access_token"], m["refresh_token"]
	m, oe = exec(t, e, "get_access_token_by_refresh_token", map[string]any{"oxd_id": srv.OxdID, "refresh_token": rt})
	check("get_access_token_by_refresh_token", m, oe)
	m, oe = exec(t, e, "get_user_info", map[string]any{"oxd_id": srv.OxdID, "access_token": at})
	check("get_user_info", m, oe)
	m, oe = exec(t, e, "get_logout_uri", map[string]any{"oxd_id": srv.OxdID, "state": "s"})
	check("get_logout_uri", m, oe)
	m, oe = exec(t, e, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID, "client_secret": srv.Setup.ClientSecret.Reveal(), "scope": []string{"oxd"}})
	check("get_client_token", m, oe)
	m, oe = exec(t, e, "introspect_access_token", map[string]any{"oxd_id": srv.OxdID, "access_token": at})
	check("introspect_access_token", m, oe)
	m, oe = exec(t, e, "introspect_access_token", map[string]any{"oxd_id": srv.OxdID, "access_token": "forged"})
	check("introspect_access_token", m, oe)
	assert.Equal(t, false, m["active"])

	m, oe = exec(t, e, "uma_rs_protect", map[string]any{"oxd_id": srv.OxdID, "resources": umaResources})
	check("uma_rs_protect", m, oe)
	m, oe = checkAccess(t, srv, "", "/photos", "GET")
	check("uma_rs_check_access.denied", m, oe)
	m, oe = exec(t, e, "uma_rp_get_rpt", map[string]any{"oxd_id": srv.OxdID, "ticket": m["ticket"]})
	check("uma_rp_get_rpt", m, oe)
	rpt := m["access_token"]
	m, oe = checkAccess(t, srv, rpt.(string), "/photos", "GET")
	check("uma_rs_check_access.granted", m, oe)
	m, oe = exec(t, e, "introspect_rpt", map[string]any{"oxd_id": srv.OxdID, "rpt": rpt})
	check("introspect_rpt", m, oe)
	perm := m["permissions"].([]any)[0].(map[string]any)
	assert.ElementsMatch(t, []string{"resource_id", "resource_scopes", "exp"}, keysOf(perm))
	m, oe = exec(t, e, "uma_rp_get_claims_gathering_url", map[string]any{"oxd_id": srv.OxdID, "ticket": "t", "claims_redirect_uri": srv.ClaimsRedirectURI})
	check("uma_rp_get_claims_gathering_url", m, oe)

	m, oe = exec(t, e, "get_rp", map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe)
	b, err := os.ReadFile(filepath.Join(fixtures, "get_rp.response.json"))
	require.NoError(t, err)
	var rpFixture struct{ Data struct{ Node map[string]any } }
	require.NoError(t, json.Unmarshal(b, &rpFixture))
	assert.Equal(t, keysOf(rpFixture.Data.Node), keysOf(m["node"].(map[string]any)))

	m, oe = exec(t, e, "remove_site", map[string]any{"oxd_id": srv.OxdID})
	check("remove_site", m, oe)
}

// TestSecretsNeverLogged runs flows with a debug logger and searches the
// log for every secret that went by.
func TestSecretsNeverLogged(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Logger: logger}), oxdtest.WithClientAuthMethod(""))
	ctx := testCtx(t)
	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
	ref, err := srv.Client.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: srv.OxdID, RefreshToken: tok.RefreshToken})
	require.NoError(t, err)
	protect(t, srv)
	m, oe := checkAccess(t, srv, "", "/photos", "GET")
	require.Nil(t, oe)
	rpt, err := srv.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: m["ticket"].(string)})
	require.NoError(t, err)
	_, _ = checkAccess(t, srv, rpt.AccessToken.Reveal(), "/photos", "GET")
	// Failures are logged too.
	_, _ = exec(t, srv.Engine, "get_client_token", map[string]any{"op_host": srv.OP.Issuer(), "client_id": srv.Setup.ClientID, "client_secret": "wrong-secret-value"})
	srv.OP.SetFault(oxdtest.EndpointUserinfo, oxdtest.FaultGarbage)
	_, _ = srv.Client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: ref.AccessToken})

	node, _ := exec(t, srv.Engine, "get_rp", map[string]any{"oxd_id": srv.OxdID})
	site := node["node"].(map[string]any)
	log := buf.String()
	require.NotEmpty(t, log)
	assert.Contains(t, log, "command=get_tokens_by_code")
	secrets := map[string]string{
		"access token": tok.AccessToken.Reveal(), "id token": tok.IDToken.Reveal(), "refresh token": tok.RefreshToken.Reveal(),
		"refreshed token": ref.AccessToken.Reveal(), "rpt": rpt.AccessToken.Reveal(), "setup secret": srv.Setup.ClientSecret.Reveal(),
		"registration token": site["client_registration_access_token"].(string),
		"wrong secret":       "wrong-secret-value",
	}
	// The engine chose the strongest method the development OP lists
	// (private_key_jwt): its private key never reaches the log either.
	stored, err := srv.Engine.Store().GetSite(ctx, srv.OxdID)
	require.NoError(t, err)
	assert.Equal(t, "private_key_jwt", stored.TokenEndpointAuthMethod)
	assert.Nil(t, site["client_secret"])
	{
		require.NotNil(t, stored.ClientKeys)
		b, err := json.Marshal(stored.ClientKeys)
		require.NoError(t, err)
		d := regexp.MustCompile(`"d":"([^"]+)"`).FindSubmatch(b)
		require.NotNil(t, d, "the stored key set holds its private key")
		secrets["client private key"] = string(d[1])
		assert.NotContains(t, fmt.Sprint(site), string(d[1]), "get_rp does not show the keys")
		pub, err := srv.Engine.ClientJWKS(ctx, srv.OxdID)
		require.NoError(t, err)
		assert.Contains(t, string(pub), `"kty"`)
		assert.NotContains(t, string(pub), string(d[1]), "ClientJWKS shows the public keys only")
		assert.NotContains(t, string(pub), `"d":`)
	}
	for name, secret := range secrets {
		require.NotEmpty(t, secret, name)
		assert.NotContains(t, log, secret, "%s leaked into the log", name)
	}
	// A Site never prints its secrets.
	s, err := srv.Engine.Store().GetSite(ctx, srv.OxdID)
	require.NoError(t, err)
	for _, out := range []string{s.String(), s.GoString(), slogLine(s)} {
		for _, secret := range secrets {
			assert.NotContains(t, out, secret)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = syncbuf.Buffer

func slogLine(v any) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "site", v)
	return b.String()
}

// TestNoGoroutineLeak: after a login, UMA calls, OP faults and Close, no
// goroutine of the engine is left.
func TestNoGoroutineLeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Run("work", func(t *testing.T) {
		srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{OPTimeout: time.Second}))
		_, err := srv.LoginTokens(testCtx(t), "alice", "alice-password")
		require.NoError(t, err)
		protect(t, srv)
		srv.OP.SetFault(oxdtest.EndpointPermission, oxdtest.FaultSlow)
		_, oe := checkAccess(t, srv, "", "/photos", "GET")
		requireCode(t, oe, oxdclient.CodeInternalError)
	})
	leakcheck.VerifyNone(t, opt)
}

// TestTLSVerifiedByDefault: an OP with a certificate the system does not
// trust is refused; an injected client that trusts it works.
func TestTLSVerifiedByDefault(t *testing.T) {
	var op *oxdtest.OP
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.ServeHTTP(w, r) }))
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	hs.StartTLS()
	t.Cleanup(hs.Close)
	op, err := oxdtest.NewOP(hs.URL, oxdtest.OPConfig{})
	require.NoError(t, err)
	t.Cleanup(op.Close)
	params := map[string]any{"op_host": hs.URL, "authorization_redirect_uri": "https://rp.example/cb"}

	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	_, oe := exec(t, e, "register_site", params)
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)

	trusted, err := oxdserver.New(oxdserver.Config{HTTPClient: hs.Client()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = trusted.Close() })
	m, oe := exec(t, trusted, "register_site", params)
	require.Nil(t, oe, "%v", oe)
	// op_host without a scheme means https, as in oxd.
	_, oe = exec(t, trusted, "register_site", map[string]any{"op_host": strings.TrimPrefix(hs.URL, "https://"), "authorization_redirect_uri": "https://rp.example/cb"})
	require.Nil(t, oe, "%v", oe)
	_, oe = exec(t, trusted, "get_authorization_url", map[string]any{"oxd_id": m["oxd_id"]})
	require.Nil(t, oe)
}

func TestLogoutWithoutEndSessionEndpoint(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	_, oe := exec(t, e, "get_logout_uri", map[string]any{"oxd_id": id})
	requireCode(t, oe, oxdclient.CodeNoEndSessionEndpoint)
	assert.Equal(t, "OP does not provide end_session_endpoint at /.well-known/openid-configuration.", oe.Description)
}

func TestLogoutURIRules(t *testing.T) {
	srv := oxdtest.NewServer(t)
	m, oe := exec(t, srv.Engine, "get_logout_uri", map[string]any{"oxd_id": srv.OxdID, "post_logout_redirect_uri": "https://evil.example/"})
	requireCode(t, oe, oxdclient.CodeBadRequest)
	assert.Nil(t, m)
	m, oe = exec(t, srv.Engine, "get_logout_uri", map[string]any{"oxd_id": srv.OxdID, "post_logout_redirect_uri": srv.PostLogoutRedirectURI, "session_state": "a b", "state": "x&y"})
	require.Nil(t, oe)
	u, err := url.Parse(m["uri"].(string))
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, srv.PostLogoutRedirectURI, q.Get("post_logout_redirect_uri"))
	assert.Equal(t, "a b", q.Get("session_state"))
	assert.Equal(t, "x&y", q.Get("state"))
	assert.Equal(t, srv.ClientID, q.Get("client_id"), "client_id identifies the client when there is no id_token_hint")
	assert.Empty(t, q.Get("id_token_hint"))
}

// TestPlainHTTPOnlyOnLoopback: plain http is refused for an OP that is not
// on loopback, unless InsecureAllowHTTP is set.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	// An OP whose issuer is http://op.example.test, reached through a
	// transport that dials the loopback listener whatever the host.
	op, err := oxdtest.NewOP("http://op.example.test", oxdtest.OPConfig{})
	require.NoError(t, err)
	hs := httptest.NewServer(op)
	t.Cleanup(hs.Close)
	t.Cleanup(op.Close)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, hs.Listener.Addr().String())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	params := map[string]any{"op_host": "http://op.example.test", "authorization_redirect_uri": "https://rp.example/cb"}

	strict, err := oxdserver.New(oxdserver.Config{HTTPClient: hc})
	require.NoError(t, err)
	before := op.Calls(oxdtest.EndpointDiscovery)
	_, oe := exec(t, strict, "register_site", params)
	requireCode(t, oe, oxdclient.CodeNoConnectDiscoveryResponse)
	assert.Contains(t, oe.Description, "plain http")
	assert.Equal(t, before, op.Calls(oxdtest.EndpointDiscovery), "nothing was sent")

	lax, err := oxdserver.New(oxdserver.Config{HTTPClient: hc, InsecureAllowHTTP: true})
	require.NoError(t, err)
	m, oe := exec(t, lax, "register_site", params)
	require.Nil(t, oe, "%v", oe)
	_, oe = exec(t, lax, "get_authorization_url", map[string]any{"oxd_id": m["oxd_id"]})
	require.Nil(t, oe)
}

// TestOPRedirectNotFollowed: a back-channel endpoint that redirects does not
// make the engine resend the client's credentials elsewhere.
func TestOPRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer elsewhere.Close()
	f := newFakeOP(t)
	f.tokenResp = func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
		return true
	}
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	defer e.Close()
	_, oe := exec(t, e, "get_client_token", map[string]any{"op_host": f.issuer(), "client_id": "x", "client_secret": "s3cret"})
	require.NotNil(t, oe, "a redirect is not a token answer")
	assert.Equal(t, int32(0), hits.Load(), "the redirect target was contacted")
}

// TestLogoutURIsRegistered: client_backchannel_logout_uri (an extension)
// and client_frontchannel_logout_uris must be absolute URLs without
// fragment, at register_site and update_site; valid ones are kept with the
// site, and get_logout_uri without id_token_hint and without
// post_logout_redirect_uri still names the client.
func TestLogoutURIsRegistered(t *testing.T) {
	srv := oxdtest.NewServer(t)
	base := map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://rp.example.test/cb", "scope": []string{"openid"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	for _, bad := range []map[string]any{
		with("client_backchannel_logout_uri", "/relative"),
		with("client_backchannel_logout_uri", "https://rp.example.test/bc#frag"),
		with("client_frontchannel_logout_uris", []string{"javascript:alert(1)"}),
	} {
		_, oe := exec(t, srv.Engine, "register_site", bad)
		requireCode(t, oe, oxdclient.CodeInvalidRequest)
	}
	ok := with("client_backchannel_logout_uri", "https://rp.example.test/logout/backchannel")
	ok["client_frontchannel_logout_uris"] = []string{"https://rp.example.test/logout/frontchannel"}
	m, oe := exec(t, srv.Engine, "register_site", ok)
	require.Nil(t, oe)
	id := m["oxd_id"].(string)
	_, oe = exec(t, srv.Engine, "update_site", map[string]any{"oxd_id": id, "client_backchannel_logout_uri": "ftp://x"})
	requireCode(t, oe, oxdclient.CodeInvalidRequest)
	_, oe = exec(t, srv.Engine, "update_site", map[string]any{"oxd_id": id, "client_backchannel_logout_uri": "https://rp.example.test/bc2"})
	require.Nil(t, oe)
	lo, oe := exec(t, srv.Engine, "get_logout_uri", map[string]any{"oxd_id": id})
	require.Nil(t, oe)
	u, err := url.Parse(lo["uri"].(string))
	require.NoError(t, err)
	assert.False(t, u.Query().Has("post_logout_redirect_uri"))
	assert.NotEmpty(t, u.Query().Get("client_id"), "client_id names the client without id_token_hint and post_logout_redirect_uri")
}
