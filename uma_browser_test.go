package oxd

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newClaimsRig protects GET /reports/{id} with a "claims…" scope, which the
// development OP's default policy grants only with a country claim
// (alice has one, bob does not), in browser mode.
func newClaimsRig(t *testing.T, cfg UMAConfig) *umaRig {
	rg := newUMARig(t, umaRigOpts{noConfig: true})
	cfg.ClaimsRedirectURL = rg.app.URL + "/claims-callback"
	cfg.Browser = true
	require.NoError(t, rg.auth.configureUMA(cfg))
	rg.mountWhoami()
	rg.protect("GET /reports/{id}", "claims_read")
	rg.register()
	return rg
}

// UMA Grant §3.3.2/§3.3.3 in browser mode: need_info → claims gathering
// at the AS → claims redirect → RPT in the user's session → access, then
// the session's RPT is used (and its grant cached).
func TestUMABrowserClaimsGathering(t *testing.T) {
	rg := newClaimsRig(t, UMAConfig{})
	bob := rg.browser()
	rg.login(bob, "bob")

	res := rg.doWith(bob, "GET", "/reports/1?view=full", nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	loc, err := url.Parse(res.header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, rg.srv.OP.Issuer()+"/uma/claims_gathering", loc.Scheme+"://"+loc.Host+loc.Path)
	q := loc.Query()
	assert.Equal(t, rg.app.URL+"/claims-callback", q.Get("claims_redirect_uri"))
	require.NotEmpty(t, q.Get("ticket"))
	require.NotEmpty(t, q.Get("state"))
	assert.Zero(t, rg.pageCalls("GET /reports/{id}"))

	back := rg.gatherClaims(bob, loc.String(), map[string]string{"country": "FR"})
	require.Equal(t, rg.app.URL+"/claims-callback", back.Scheme+"://"+back.Host+back.Path)
	assert.NotEqual(t, q.Get("ticket"), back.Query().Get("ticket"), "the AS returns a new ticket")
	res = rg.doWith(bob, "GET", back.RequestURI(), nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	assert.Equal(t, "/reports/1?view=full", res.header.Get("Location"), "back to the original request")

	res = rg.doWith(bob, "GET", "/reports/1?view=full", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, "ok=true granted=true cached=false session=true new=true", res.header.Get("X-UMA-Decision"))
	ch := parseChallenge(t, res.header.Get("X-UMA-Previous-Challenge"))
	assert.Equal(t, rg.srv.OP.Issuer(), ch["as_uri"], "the page can show the challenge met before the RPT")
	rg.waitSettled()

	res = rg.doWith(bob, "GET", "/reports/2", nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "ok=true granted=true cached=true session=true new=false", res.header.Get("X-UMA-Decision"))

	// Replaying the claims redirect is refused (state used once).
	res = rg.doWith(bob, "GET", back.RequestURI(), nil)
	assert.Equal(t, http.StatusBadRequest, res.status)

	// An API-style request of the same browser uses the session's RPT too,
	// and a request with its own Authorization header does not.
	res = rg.doWith(bob, "GET", "/reports/3", http.Header{"Accept": {"application/json"}})
	assert.Equal(t, http.StatusOK, res.status)
	res = rg.doWith(bob, "GET", "/reports/3", bearer("other"))
	assert.Equal(t, http.StatusUnauthorized, res.status)
}

// With PushIDToken, the user's ID token carries the claims: alice gets her
// RPT within her first request, and the page can show the challenge that
// preceded it.
func TestUMABrowserPushedIDToken(t *testing.T) {
	rg := newClaimsRig(t, UMAConfig{PushIDToken: true})
	alice := rg.browser()
	rg.login(alice, "alice")
	res := rg.doWith(alice, "GET", "/reports/1", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, "ok=true granted=true cached=false session=true new=true", res.header.Get("X-UMA-Decision"))
	parseChallenge(t, res.header.Get("X-UMA-Previous-Challenge"))

	// Bob's ID token lacks the claim: claims gathering.
	bob := rg.browser()
	rg.login(bob, "bob")
	res = rg.doWith(bob, "GET", "/reports/1", nil)
	assert.Equal(t, http.StatusSeeOther, res.status)
	assert.True(t, strings.HasPrefix(res.header.Get("Location"), rg.srv.OP.Issuer()+"/uma/claims_gathering?"))
}

// Browser mode without a logged-in user: a navigation logs in first; an
// API request gets the plain challenge.
func TestUMABrowserNeedsLogin(t *testing.T) {
	rg := newClaimsRig(t, UMAConfig{})
	c := rg.browser()
	res := rg.doWith(c, "GET", "/reports/1", nil)
	require.Equal(t, http.StatusSeeOther, res.status)
	assert.True(t, strings.HasPrefix(res.header.Get("Location"), rg.srv.OP.Issuer()+"/authorize?"), res.header.Get("Location"))

	res = rg.doWith(c, "GET", "/reports/1", http.Header{"Accept": {"application/json"}})
	assert.Equal(t, http.StatusUnauthorized, res.status)
	parseChallenge(t, res.header.Get("WWW-Authenticate"))
}

// UMA Grant §5.1 (CSRF on the claims redirect URI) and §3.3.3 (the ticket
// coming back must be new): forged, foreign and replayed redirects are
// refused without calling oxd.
func TestUMAClaimsCallbackAbuse(t *testing.T) {
	rg := newClaimsRig(t, UMAConfig{})
	bob, alice := rg.browser(), rg.browser()
	rg.login(bob, "bob")
	rg.login(alice, "alice")

	res := rg.doWith(bob, "GET", "/reports/1", nil)
	require.Equal(t, http.StatusSeeOther, res.status)
	loc, _ := url.Parse(res.header.Get("Location"))
	sentTicket, state := loc.Query().Get("ticket"), loc.Query().Get("state")

	cb := func(v url.Values) string { return "/claims-callback?" + v.Encode() }
	rpts := rg.tr.count("uma_rp_get_rpt")
	for name, tc := range map[string]struct {
		c    *http.Client
		path string
	}{
		"no state":                 {bob, cb(url.Values{"ticket": {"t"}})},
		"no ticket":                {bob, cb(url.Values{"state": {state}})},
		"unknown state":            {bob, cb(url.Values{"ticket": {"t"}, "state": {"forged"}})},
		"repeated state":           {bob, cb(url.Values{"ticket": {"t"}, "state": {state, state}})},
		"another browser's state":  {alice, cb(url.Values{"ticket": {"t"}, "state": {state}})},
		"no session at all":        {rg.browser(), cb(url.Values{"ticket": {"t"}, "state": {state}})},
		"POST":                     {bob, ""},
		"oversized query":          {bob, cb(url.Values{"ticket": {strings.Repeat("t", 9000)}, "state": {state}})},
		"ticket longer than limit": {bob, cb(url.Values{"ticket": {strings.Repeat("t", 4097)}, "state": {state}})},
	} {
		t.Run(name, func(t *testing.T) {
			method, path := "GET", tc.path
			if name == "POST" {
				method, path = "POST", cb(url.Values{"ticket": {"t"}, "state": {state}})
			}
			res := rg.doWith(tc.c, method, path, nil)
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusMethodNotAllowed}, res.status, res.body)
		})
	}
	assert.Equal(t, rpts, rg.tr.count("uma_rp_get_rpt"), "no RPT requested")

	// The ticket that was sent coming back: refused, and the state is spent.
	res = rg.doWith(bob, "GET", cb(url.Values{"ticket": {sentTicket}, "state": {state}}), nil)
	assert.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, rpts, rg.tr.count("uma_rp_get_rpt"))
	back := rg.gatherClaims(bob, loc.String(), map[string]string{"country": "DE"})
	res = rg.doWith(bob, "GET", back.RequestURI(), nil)
	assert.Equal(t, http.StatusBadRequest, res.status, "state already used")
	assert.Zero(t, rg.pageCalls("GET /reports/{id}"))
}

// A user's session RPT is bound to the user: a session whose user changed
// (another login in the same browser) does not present it.
func TestUMASessionRPTBoundToUser(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	g := rg.auth.uma
	ctx, err := rg.sm.Load(context.Background(), "")
	require.NoError(t, err)
	rg.sm.Put(ctx, sessionKeyUMARPT, &umaSessionRPT{Subject: "alice", RPT: "alice-rpt"})
	assert.Equal(t, "alice-rpt", g.sessionRPT(ctx, &User{Subject: "alice"}))
	assert.Empty(t, g.sessionRPT(ctx, &User{Subject: "bob"}))
	assert.Nil(t, rg.sm.Get(ctx, sessionKeyUMARPT), "dropped")
	assert.Empty(t, g.sessionRPT(ctx, &User{Subject: "alice"}))
}

// Browser mode when the AS refuses (policy "deny…"): 403 through the error
// handler, no redirect, nothing kept in the session.
func TestUMABrowserDenied(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{noConfig: true})
	require.NoError(t, rg.auth.configureUMA(UMAConfig{Browser: true, ClaimsRedirectURL: rg.app.URL + "/claims-callback"}))
	rg.mountWhoami()
	rg.protect("GET /secret/{id}", "deny_read")
	rg.register()
	c := rg.browser()
	rg.login(c, "alice")
	res := rg.doWith(c, "GET", "/secret/1", nil)
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.Empty(t, res.header.Get("Location"))
	assert.Contains(t, res.header.Get("Content-Type"), "text/html")
	assert.Zero(t, rg.pageCalls("GET /secret/{id}"))
	assert.Contains(t, rg.logs.String(), "UMA access denied")
}

// In browser mode the RPT comes from the session cookie: a cross-origin
// state-changing request does not get to use it.
func TestUMABrowserSessionRPTCrossOriginRefused(t *testing.T) {
	rg := newClaimsRig(t, UMAConfig{PushIDToken: true})
	rg.protect("POST /reports/{id}", "claims_read")
	alice := rg.browser()
	rg.login(alice, "alice")
	res := rg.doWith(alice, "GET", "/reports/1", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)

	res = rg.doWith(alice, "POST", "/reports/1", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assert.Equal(t, http.StatusForbidden, res.status, "cross-site POST with the session RPT")
	assert.Zero(t, rg.pageCalls("POST /reports/{id}"))
	res = rg.doWith(alice, "POST", "/reports/1", http.Header{"Sec-Fetch-Site": {"same-origin"}})
	assert.NotEqual(t, http.StatusForbidden, res.status, "same-origin POST: %q", res.body)
}
