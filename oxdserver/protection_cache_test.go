package oxdserver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// introspections is the number of introspection requests the OP has seen.
func introspections(srv *oxdtest.Server) int { return srv.OP.Calls(oxdtest.EndpointIntrospection) }

// TestProtectionCacheOneIntrospectionForManyCommands: many protected
// commands with one protection token cost one introspection at the OP; with
// the cache switched off every command introspects.
func TestProtectionCacheOneIntrospectionForManyCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want int
	}{{"default", 0, 1}, {"disabled", -1, 20}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{ProtectionCacheTTL: tc.ttl}))
			tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "openid", "oxd")
			before := introspections(srv)
			for i := range 20 {
				cmd := []string{"get_authorization_url", "get_rp", "get_logout_uri"}[i%3]
				_, oe := execProtected(t, srv.Engine, cmd, tok, map[string]any{"oxd_id": srv.OxdID})
				require.Nil(t, oe, "%s: %v", cmd, oe)
			}
			assert.Equal(t, tc.want, introspections(srv)-before)
		})
	}
}

// TestProtectionCacheCrossTenant: a token whose check is cached for tenant A
// is still refused for the sites of tenant B (and the reverse), every time.
func TestProtectionCacheCrossTenant(t *testing.T) {
	srv := oxdtest.NewServer(t)
	ctx := testCtx(t)
	other, err := srv.Client.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://other.example/cb"}})
	require.NoError(t, err)
	tokA := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	tokB := clientToken(t, srv, other.ClientID, other.ClientSecret, "oxd")
	siteA := map[string]any{"oxd_id": srv.OxdID}
	siteB := map[string]any{"oxd_id": other.OxdID}
	setupB := map[string]any{"oxd_id": other.SetupClientOxdID}
	for range 3 {
		_, oe := execProtected(t, srv.Engine, "get_authorization_url", tokA, siteA)
		require.Nil(t, oe, "%v", oe)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tokB, siteB)
		require.Nil(t, oe, "%v", oe)
		for _, p := range []map[string]any{siteB, setupB} {
			_, oe = execProtected(t, srv.Engine, "get_rp", tokA, p)
			requireFixtureError(t, oe, "invalid_protection_access_token")
		}
		_, oe = execProtected(t, srv.Engine, "get_rp", tokB, siteA)
		requireFixtureError(t, oe, "invalid_protection_access_token")
		// The list of get_rp finds the tenant by the token: each its own.
		l, oe := execProtected(t, srv.Engine, "get_rp", tokB, map[string]any{"list": true})
		require.Nil(t, oe, "%v", oe)
		for _, n := range l["node"].([]any) {
			assert.NotEqual(t, srv.OxdID, n.(map[string]any)["oxd_id"], "tenant B listed a site of tenant A")
		}
	}
	// Removing tenant A's setup site ends its tokens at once, cache or not.
	_, oe := execProtected(t, srv.Engine, "remove_site", tokA, map[string]any{"oxd_id": srv.Setup.SetupClientOxdID})
	require.Nil(t, oe, "%v", oe)
	_, oe = execProtected(t, srv.Engine, "get_authorization_url", tokA, siteA)
	requireFixtureError(t, oe, "no_setup_client_for_oxd_id")
}

// TestProtectionCacheHonoursExpiry: a cached check ends after
// ProtectionCacheTTL (a revoked token then fails) and never outlives the
// token's exp.
func TestProtectionCacheHonoursExpiry(t *testing.T) {
	t.Run("ttl", func(t *testing.T) {
		clk := &clock{t: time.Now()}
		srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Now: clk.Now, ProtectionCacheTTL: 30 * time.Second}))
		tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
		params := map[string]any{"oxd_id": srv.OxdID}
		before := introspections(srv)
		_, oe := execProtected(t, srv.Engine, "get_authorization_url", tok, params)
		require.Nil(t, oe, "%v", oe)
		require.Equal(t, 1, introspections(srv)-before)
		// Revoked at the OP: the documented trade-off, it keeps working
		// until the cached check ends…
		require.True(t, srv.OP.Revoke(tok))
		clk.Advance(29 * time.Second)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok, params)
		require.Nil(t, oe, "%v", oe)
		require.Equal(t, 1, introspections(srv)-before)
		// …and not a moment longer.
		clk.Advance(time.Second)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok, params)
		requireFixtureError(t, oe, "inactive_protection_access_token")
		require.Equal(t, 2, introspections(srv)-before)
		// Failed checks are not cached.
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok, params)
		requireFixtureError(t, oe, "inactive_protection_access_token")
		require.Equal(t, 3, introspections(srv)-before)
	})
	t.Run("token exp", func(t *testing.T) {
		clk := &clock{t: time.Now()}
		srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Now: clk.Now, ProtectionCacheTTL: 24 * time.Hour}))
		tok, err := srv.Client.GetClientToken(testCtx(t), oxdclient.GetClientTokenParams{OPHost: srv.OP.Issuer(),
			ClientID: srv.Setup.ClientID, ClientSecret: srv.Setup.ClientSecret, Scope: []string{"oxd"}})
		require.NoError(t, err)
		// The OP dates exp from its own (real) clock when it issues the
		// token: start the engine's clock there, however long the setup
		// took on a loaded machine.
		clk.Advance(time.Since(clk.Now()))
		life := time.Duration(tok.ExpiresIn) * time.Second
		require.Greater(t, life, time.Minute)
		params := map[string]any{"oxd_id": srv.OxdID}
		before := introspections(srv)
		_, oe := execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
		require.Nil(t, oe, "%v", oe)
		clk.Advance(life - 10*time.Second)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
		require.Nil(t, oe, "%v", oe)
		require.Equal(t, 1, introspections(srv)-before, "cached while more than the margin before exp")
		// Within the margin before exp: the OP is asked again (its clock
		// lags, it still says active) and the engine's clock decides.
		clk.Advance(6 * time.Second)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
		require.Nil(t, oe, "%v", oe)
		require.Equal(t, 2, introspections(srv)-before)
		clk.Advance(5 * time.Second)
		_, oe = execProtected(t, srv.Engine, "get_authorization_url", tok.AccessToken.Reveal(), params)
		requireFixtureError(t, oe, "inactive_protection_access_token")
	})
}

// TestProtectionCacheBounded: the cache keeps at most ProtectionCacheSize
// checks, the least recently used evicted first.
func TestProtectionCacheBounded(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{ProtectionCacheSize: 2}))
	params := map[string]any{"oxd_id": srv.OxdID}
	var toks [3]string
	for i := range toks {
		toks[i] = clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	}
	use := func(i int) int {
		t.Helper()
		before := introspections(srv)
		_, oe := execProtected(t, srv.Engine, "get_authorization_url", toks[i], params)
		require.Nil(t, oe, "%v", oe)
		return introspections(srv) - before
	}
	assert.Equal(t, 1, use(0))
	assert.Equal(t, 1, use(1))
	assert.Equal(t, 1, use(2)) // evicts 0
	assert.Equal(t, 0, use(2))
	assert.Equal(t, 0, use(1)) // 2 is now the least recently used
	assert.Equal(t, 1, use(0)) // evicts 2
	assert.Equal(t, 0, use(1))
	assert.Equal(t, 1, use(2))
}

// slowIntrospection holds every introspection request for a while, so that
// concurrent checks overlap.
type slowIntrospection struct{ delay time.Duration }

func (s slowIntrospection) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/introspect") {
		time.Sleep(s.delay)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestProtectionCacheSingleFlight: many concurrent commands with one new
// token share one introspection; two tenants' tokens do not share one.
func TestProtectionCacheSingleFlight(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: slowIntrospection{200 * time.Millisecond}}}))
	other, err := srv.Client.SetupClient(testCtx(t), oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://other.example/cb"}})
	require.NoError(t, err)
	tokA := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	before := introspections(srv)
	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]*oxdclient.Error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			site := srv.OxdID
			if i%2 == 1 {
				site = other.OxdID // tenant B: refused, by its own introspection
			}
			_, errs[i] = execProtected(t, srv.Engine, "get_authorization_url", tokA, map[string]any{"oxd_id": site})
		}()
	}
	close(start)
	wg.Wait()
	for i, oe := range errs {
		if i%2 == 0 {
			assert.Nil(t, oe, "%d: %v", i, oe)
		} else if assert.NotNil(t, oe, "%d", i) {
			assert.Equal(t, oxdclient.CodeInvalidProtectionAccessToken, oe.Code)
		}
	}
	assert.Equal(t, 2, introspections(srv)-before, "one introspection per tenant")
}

// TestProtectionCacheSecretsNotLogged: neither the protection tokens nor
// their hashes appear in a debug log of cached, refused and fresh checks.
func TestProtectionCacheSecretsNotLogged(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Logger: logger, ProtectionCacheSize: 1}))
	good := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	second := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	revoked := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	require.True(t, srv.OP.Revoke(revoked))
	params := map[string]any{"oxd_id": srv.OxdID}
	for _, tok := range []string{good, good, second, good, revoked, "not-a-token-but-secret"} {
		_, _ = execProtected(t, srv.Engine, "get_authorization_url", tok, params)
	}
	log := buf.String()
	require.Contains(t, log, "command=get_authorization_url")
	for _, tok := range []string{good, second, revoked, "not-a-token-but-secret"} {
		sum := sha256.Sum256([]byte(tok))
		assert.NotContains(t, log, tok)
		assert.NotContains(t, log, hex.EncodeToString(sum[:]))
	}
}
