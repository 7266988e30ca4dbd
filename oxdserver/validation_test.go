package oxdserver_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

const fixtures = "../oxdclient/testdata/socket-3.1"

// fixtureError reads an error fixture of oxd 3.1.4.
func fixtureError(t testing.TB, name string) *oxdclient.Error {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "errors", name+".response.json"))
	require.NoError(t, err)
	var env struct {
		Status string          `json:"status"`
		Data   oxdclient.Error `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, "error", env.Status)
	return &env.Data
}

func requireFixtureError(t testing.TB, got *oxdclient.Error, fixture string) {
	t.Helper()
	want := fixtureError(t, fixture)
	require.NotNil(t, got, "want %s, got success", fixture)
	assert.Equal(t, want.Code, got.Code)
	assert.Equal(t, want.Description, got.Description)
	assert.Nil(t, got.Details)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestUnknownCommandIsUnsupported(t *testing.T) {
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	for _, name := range []string{"update_site_registration", "license_status", "validate", "", "GET_AUTHORIZATION_URLX"} {
		_, oe := exec(t, e, name, map[string]any{"oxd_id": "x"})
		requireFixtureError(t, oe, "unsupported_operation")
	}
}

func TestCommandNamesAreCaseInsensitive(t *testing.T) {
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	_, oe := exec(t, e, "Get_Authorization_URL", map[string]any{"oxd_id": "nope"})
	requireFixtureError(t, oe, "invalid_oxd_id")
}

func TestMalformedParams(t *testing.T) {
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	ctx := testCtx(t)
	for _, raw := range []string{"", "null", "[]", `"x"`, `{"oxd_id": 5}`, `{"oxd_id": "a", "scope": "openid"}`, `{`} {
		_, err := e.Execute(ctx, oxdserver.Request{Command: "get_authorization_url", Params: json.RawMessage(raw)})
		oe, ok := err.(*oxdclient.Error)
		require.True(t, ok, "params %q: %v", raw, err)
		requireFixtureError(t, oe, "internal_error_no_params")
	}
	// The documented 3.1.4 pitfall: client_sector_identifier_uri is a string.
	_, oe := exec(t, e, "register_site", map[string]any{"op_host": "https://op.example", "authorization_redirect_uri": "https://rp/cb", "client_sector_identifier_uri": []string{}})
	requireFixtureError(t, oe, "internal_error_no_params")
	// Unknown keys are ignored (oxd-node sends host, port…).
	_, oe = exec(t, e, "get_authorization_url", map[string]any{"oxd_id": "nope", "host": "localhost", "port": 8099})
	requireFixtureError(t, oe, "invalid_oxd_id")
}

func TestBlankAndUnknownOxdID(t *testing.T) {
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	for _, cmd := range []string{"update_site", "remove_site", "get_authorization_url", "get_tokens_by_code",
		"get_access_token_by_refresh_token", "get_user_info", "get_logout_uri", "introspect_access_token",
		"introspect_rpt", "uma_rs_protect", "uma_rs_check_access", "uma_rp_get_rpt", "uma_rp_get_claims_gathering_url"} {
		_, oe := exec(t, e, cmd, map[string]any{"oxd_id": "  "})
		requireFixtureError(t, oe, "bad_request_no_oxd_id")
		_, oe = exec(t, e, cmd, map[string]any{})
		requireFixtureError(t, oe, "bad_request_no_oxd_id")
		_, oe = exec(t, e, cmd, map[string]any{"oxd_id": "bcad760f-91ba-46e1-a020-05e4281d91b6"})
		requireFixtureError(t, oe, "invalid_oxd_id")
	}
	_, oe := exec(t, e, "get_rp", map[string]any{"oxd_id": "bcad760f-91ba-46e1-a020-05e4281d91b6"})
	requireFixtureError(t, oe, "invalid_oxd_id")
}

func TestRegisterSiteValidation(t *testing.T) {
	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	_, oe := exec(t, e, "register_site", map[string]any{"authorization_redirect_uri": "https://rp/cb"})
	requireFixtureError(t, oe, "invalid_op_host")
	_, oe = exec(t, e, "setup_client", map[string]any{"authorization_redirect_uri": "https://rp/cb"})
	requireFixtureError(t, oe, "invalid_op_host")
	_, oe = exec(t, e, "get_client_token", map[string]any{"client_id": "a", "client_secret": "b"})
	requireFixtureError(t, oe, "invalid_op_host")

	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	for _, redirect := range []string{"", "not a url", "/relative", "https://rp.example/cb#frag"} {
		_, oe = exec(t, e, "register_site", map[string]any{"op_host": op.Issuer(), "authorization_redirect_uri": redirect})
		requireFixtureError(t, oe, "invalid_authorization_redirect_uri")
	}
	_, oe = exec(t, e, "register_site", map[string]any{"op_host": op.Issuer(), "authorization_redirect_uri": "https://rp/cb", "scope": []string{" "}})
	requireCode(t, oe, oxdclient.CodeInvalidScope)
}

// TestGetTokensByCodeChecksInOrder: 'code' first, then 'state', then the
// state must be registered for this very oxd_id (reference §3.2).
func TestGetTokensByCodeChecksInOrder(t *testing.T) {
	srv := oxdtest.NewServer(t)
	e := srv.Engine
	_, oe := exec(t, e, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID})
	requireFixtureError(t, oe, "bad_request_no_code")
	_, oe = exec(t, e, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": " ", "state": "x"})
	requireFixtureError(t, oe, "bad_request_no_code")
	_, oe = exec(t, e, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": "c"})
	requireFixtureError(t, oe, "bad_request_no_state")
	_, oe = exec(t, e, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": "c", "state": "never-issued"})
	requireFixtureError(t, oe, "bad_request_state_not_valid")
}

// TestStateIsBoundToOxdID: a state issued for one site is "not
// registered" for another, and the attempt does not burn it (another
// tenant cannot cancel a login in progress).
func TestStateIsBoundToOxdID(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := testCtx(t)
	other, err := srv.Client.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://other.example/cb",
	}})
	require.NoError(t, err)
	code, state, err := srv.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	_, oe := exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": other.OxdID, "code": code, "state": state})
	requireFixtureError(t, oe, "bad_request_state_not_valid")
	_, oe = exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	require.Nil(t, oe, "%v", oe)
}

func TestStateIsSingleUse(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := testCtx(t)
	code, state, err := srv.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	// The goroutines only call the engine and record its answer; every
	// assertion runs on the test goroutine (require stops the goroutine it
	// runs on, which must be the test's).
	params := map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// The in-process transport (trusted, as exec uses).
			var m map[string]any
			results[i] = srv.Engine.Do(ctx, "get_tokens_by_code", params, &m)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
			continue
		}
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		requireFixtureError(t, oe, "bad_request_state_not_valid")
	}
	assert.Equal(t, 1, ok, "exactly one concurrent use of a state succeeds")
}

func TestStateExpires(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Now: clk.Now, StateTTL: time.Minute, NonceTTL: time.Minute}))
	ctx := testCtx(t)
	code, state, err := srv.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	clk.Advance(61 * time.Second)
	_, oe := exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	requireFixtureError(t, oe, "bad_request_state_not_valid")

	// Within the TTL the same flow works.
	code, state, err = srv.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	clk.Advance(59 * time.Second)
	_, oe = exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	require.Nil(t, oe)
}

// TestNonceExpiresSeparately: the nonce has its own lifetime; an id_token
// whose nonce expired is refused with invalid_nonce.
func TestNonceExpiresSeparately(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Now: clk.Now, StateTTL: 10 * time.Minute, NonceTTL: time.Minute}))
	code, state, err := srv.Login(testCtx(t), "alice", "alice-password")
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)
	_, oe := exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	requireFixtureError(t, oe, "invalid_nonce")
}

func TestInvalidCodeIsBadRequest(t *testing.T) {
	srv := oxdtest.NewServer(t)
	_, state, err := srv.Login(testCtx(t), "alice", "alice-password")
	require.NoError(t, err)
	_, oe := exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": "forged-code", "state": state})
	requireCode(t, oe, oxdclient.CodeBadRequest)
	assert.Equal(t, "'code' is invalid.", oe.Description)
}

// TestClaimsStateCannotFinishALogin: the state of a claims-gathering URL is
// not a login state.
func TestClaimsStateCannotFinishALogin(t *testing.T) {
	srv := oxdtest.NewServer(t)
	m, oe := exec(t, srv.Engine, "uma_rp_get_claims_gathering_url", map[string]any{"oxd_id": srv.OxdID, "ticket": "t", "claims_redirect_uri": srv.ClaimsRedirectURI})
	require.Nil(t, oe)
	_, oe = exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": "c", "state": m["state"]})
	requireFixtureError(t, oe, "bad_request_state_not_valid")
}

func TestAuthorizationURLParameters(t *testing.T) {
	srv := oxdtest.NewServer(t)
	m, oe := exec(t, srv.Engine, "get_authorization_url", map[string]any{
		"oxd_id":     srv.OxdID,
		"scope":      []string{"openid", "email"},
		"acr_values": []string{"basic", "otp"},
		"prompt":     "login consent",
		"hd":         "example.com&x=1",
		"custom_parameters": map[string]string{
			"param1": "value 1&x=y", "ui_locales": "de en", "state": "attacker", "redirect_uri": "https://evil.example",
		},
	})
	require.Nil(t, oe)
	raw := m["authorization_url"].(string)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "openid email", q.Get("scope"))
	assert.Equal(t, "basic otp", q.Get("acr_values"))
	assert.Equal(t, "login consent", q.Get("prompt"))
	assert.Equal(t, "example.com&x=1", q.Get("hd"))
	assert.Equal(t, "value 1&x=y", q.Get("param1"))
	assert.Equal(t, "de en", q.Get("ui_locales"))
	assert.Len(t, q["state"], 1)
	assert.NotEqual(t, "attacker", q.Get("state"), "custom parameters cannot replace the state")
	assert.Equal(t, []string{srv.RedirectURI}, q["redirect_uri"])
	assert.Empty(t, q.Get("custom_response_headers"))
	assert.NotContains(t, raw, " ")

	// Two URLs never share state or nonce.
	m2, oe := exec(t, srv.Engine, "get_authorization_url", map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe)
	u2, _ := url.Parse(m2["authorization_url"].(string))
	assert.NotEqual(t, q.Get("state"), u2.Query().Get("state"))
	assert.NotEqual(t, q.Get("nonce"), u2.Query().Get("nonce"))
	assert.NotEqual(t, q.Get("code_challenge"), u2.Query().Get("code_challenge"))
	assert.Equal(t, "openid profile email uma_protection", u2.Query().Get("scope"), "the site's registered scopes by default")
}

// TestPKCERequiredByOP: an OP that demands PKCE accepts the engine's flow.
func TestPKCERequiredByOP(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithOPConfig(oxdtest.OPConfig{RequirePKCE: true}))
	_, err := srv.LoginTokens(testCtx(t), "bob", "bob-password")
	require.NoError(t, err)
}
