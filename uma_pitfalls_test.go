package oxd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// Negative tests for the pitfalls of reference/anchors-uma.md §4 and §5.9.

// anchors-uma §5.6: the RPT is taken only from "Authorization: Bearer"
// (scheme case-insensitive). Anything else is a request without RPT: a
// challenge, and oxd is asked with an empty rpt.
func TestUMAPitfall_NoBearerScheme(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")

	for name, h := range map[string]http.Header{
		"token without scheme":      {"Authorization": {rpt}},
		"UMA scheme":                {"Authorization": {"UMA " + rpt}},
		"Basic scheme":              {"Authorization": {"Basic " + rpt}},
		"Bearer without token":      {"Authorization": {"Bearer"}},
		"Bearer with empty token":   {"Authorization": {"Bearer "}},
		"Bearer glued to token":     {"Authorization": {"Bearer" + rpt}},
		"Bearer with two tokens":    {"Authorization": {"Bearer " + rpt + " " + rpt}},
		"Bearer token with a comma": {"Authorization": {"Bearer " + rpt + ","}},
		"two Authorization headers": {"Authorization": {"Bearer " + rpt, "Bearer " + rpt}},
		"Bearer in another header":  {"X-Authorization": {"Bearer " + rpt}},
		"Bearer with a tab":         {"Authorization": {"Bearer\t" + rpt}},
	} {
		t.Run(name, func(t *testing.T) {
			res := rg.do("GET", "/photos/1", h)
			assert.Equal(t, http.StatusUnauthorized, res.status)
			parseChallenge(t, res.header.Get("WWW-Authenticate"))
			assert.Empty(t, rg.tr.lastCheck().RPT.Reveal(), "oxd was asked without an RPT")
		})
	}
	assert.Zero(t, rg.pageCalls("GET /photos/{id}"))

	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		res := rg.do("GET", "/photos/1", http.Header{"Authorization": {scheme + " " + rpt}})
		assert.Equal(t, http.StatusOK, res.status, scheme)
	}
}

// anchors-uma §5.6: an RPT in the query string, a form or a cookie is
// ignored (never sent to oxd, never granted).
func TestUMAPitfall_RPTInQueryOrCookieIgnored(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("/photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")

	check := func(t *testing.T, req *http.Request) {
		t.Helper()
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Empty(t, rg.tr.lastCheck().RPT.Reveal())
	}
	for _, q := range []string{"access_token", "rpt", "token", "ticket"} {
		req, _ := http.NewRequest("GET", rg.app.URL+"/photos/1?"+q+"="+url.QueryEscape(rpt), nil)
		check(t, req)
	}
	for _, c := range []string{"rpt", "access_token", "session"} {
		req, _ := http.NewRequest("GET", rg.app.URL+"/photos/1", nil)
		req.AddCookie(&http.Cookie{Name: c, Value: rpt})
		check(t, req)
	}
	req, _ := http.NewRequest("POST", rg.app.URL+"/photos/1", strings.NewReader(url.Values{"access_token": {rpt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	check(t, req)
	assert.Zero(t, rg.pageCalls("/photos/{id}"))
}

// anchors-uma §1.1 (WG issues 163/164/168): the ticket is in the
// WWW-Authenticate header, never (only) in the body; the body is empty.
// And the header is ours, not oxd's www-authenticate_header string
// (realm="rs", error="insufficient_scope", no spaces).
func TestUMAPitfall_TicketOnlyInHeader(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	for _, h := range []http.Header{nil, {"Accept": {"application/json"}}, bearer("not-an-rpt")} {
		res := rg.do("GET", "/photos/1", h)
		require.Equal(t, http.StatusUnauthorized, res.status)
		f := parseChallenge(t, res.header.Get("WWW-Authenticate"))
		require.NotEmpty(t, f["ticket"])
		assert.Empty(t, res.body, "nothing in the body, the ticket least of all")
		assert.Empty(t, res.header.Get("Content-Type"))
		h := res.header.Get("WWW-Authenticate")
		assert.NotContains(t, h, `realm="rs"`)
		assert.NotContains(t, h, "error=")
		assert.NotContains(t, h, `",`+`as_uri`, "params separated by a comma and a space")
	}
}

// anchors-uma §4/§5.4: never fail open. A route whose template is not the
// declared one, a request without template, a route oxd does not protect,
// an undeclared method: denied, handler not called, even with an RPT that
// is valid for the declared resource.
func TestUMAPitfall_FailOpenOnUnknownPath(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	photos := rg.auth.UMAProtect("GET /photos/{id}", "view")
	rg.mux.Handle("GET /photos/{id}", photos(rg.page("photos")))
	// Copy-paste mistake: the photos guard on the admin route.
	rg.mux.Handle("GET /admin/{id}", photos(rg.page("admin")))
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)

	t.Run("template differs from the declared one", func(t *testing.T) {
		res := rg.do("GET", "/admin/1", bearer(rpt))
		assert.Equal(t, http.StatusInternalServerError, res.status)
		assert.Zero(t, rg.pageCalls("admin"))
		assert.Contains(t, rg.logs.String(), `is not the declared \"/photos/{id}\"`)
	})
	t.Run("no template", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/photos/1", nil)
		req.Header.Set("Authorization", "Bearer "+rpt)
		photos(rg.page("direct")).ServeHTTP(rec, req) // not behind a router
		assert.Equal(t, http.StatusInternalServerError, rec.Code)
		assert.Zero(t, rg.pageCalls("direct"))
		assert.Contains(t, rg.logs.String(), "no route template")
	})
	t.Run("route not registered at oxd", func(t *testing.T) {
		// Declared after RegisterUMA: oxd answers invalid_request.
		rg.protect("GET /late/{id}", "view")
		for _, h := range []http.Header{nil, bearer(rpt)} {
			res := rg.do("GET", "/late/1", h)
			assert.Equal(t, http.StatusInternalServerError, res.status)
		}
		assert.Zero(t, rg.pageCalls("GET /late/{id}"))
		assert.Contains(t, rg.logs.String(), "oxd does not protect GET")
		assert.Contains(t, rg.logs.String(), "level=ERROR")
	})
	t.Run("method not declared", func(t *testing.T) {
		rg.mux.Handle("/any/{id}", rg.auth.UMAProtect("GET /any/{id}", "view")(rg.page("any")))
		res := rg.do("POST", "/any/1", bearer(rpt))
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
		assert.Zero(t, rg.pageCalls("any"))
	})
	t.Run("checkUMA on an unknown template", func(t *testing.T) {
		d := rg.auth.checkUMA(context.Background(), "GET", "/nowhere", oxdclient.Secret(rpt))
		assert.False(t, d.Granted)
		assert.Equal(t, http.StatusInternalServerError, d.Status)
		assert.True(t, errors.Is(d.Err, ErrUMAConfig))
	})
}

// anchors-uma §4 (wso2#7655, gatekeeper#385): a request without any token
// gets 401 with a ticket (not a bare 403).
func TestUMAPitfall_MissingTicketOnTokenlessRequest(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	res := rg.do("GET", "/photos/1", nil)
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.NotEmpty(t, parseChallenge(t, res.header.Get("WWW-Authenticate"))["ticket"])
	assert.Equal(t, "", rg.tr.lastCheck().RPT.Reveal())
}

// anchors-uma §3 (oxd-server's per-site RPT cache) and §5.7: an RPT is kept
// in one user's session and never serves another user. Neither by the
// middleware, nor when oxd hands one user's RPT to another.
func TestUMAPitfall_SharedRPTAcrossUsers(t *testing.T) {
	newBrowserRig := func(t *testing.T) *umaRig {
		rg := newUMARig(t, umaRigOpts{noConfig: true})
		rg.mountWhoami()
		rg.mux.Handle("GET /reports/{id}", rg.auth.UMAProtectWith(UMARule{Template: "/reports/{id}", Browser: true,
			Conditions: []UMAMethodRule{{Methods: []string{"GET"}, Scopes: []string{"claims_read"}}}})(rg.page("reports")))
		require.NoError(t, rg.auth.configureUMA(UMAConfig{PushIDToken: true, ClaimsRedirectURL: rg.app.URL + "/claims-callback"}))
		rg.register()
		return rg
	}

	t.Run("the middleware keeps RPTs per user", func(t *testing.T) {
		rg := newBrowserRig(t)
		alice, bob := rg.browser(), rg.browser()
		rg.login(alice, "alice")
		rg.login(bob, "bob")
		res := rg.doWith(alice, "GET", "/reports/1", nil)
		require.Equal(t, http.StatusOK, res.status, res.body)
		aliceRPT := rg.tr.lastCheck().RPT.Reveal()
		require.NotEmpty(t, aliceRPT)

		n := len(rg.tr.allChecks())
		res = rg.doWith(bob, "GET", "/reports/1", nil)
		assert.Equal(t, http.StatusSeeOther, res.status, "bob needs claims: alice's RPT is not his")
		assert.True(t, strings.HasPrefix(res.header.Get("Location"), rg.srv.OP.Issuer()+"/uma/claims_gathering?"))
		for _, c := range rg.tr.allChecks()[n:] {
			assert.NotEqual(t, aliceRPT, c.RPT.Reveal())
		}
		assert.Equal(t, 1, rg.pageCalls("reports"))
	})

	t.Run("oxd handing one user's RPT to another is refused", func(t *testing.T) {
		rg := newBrowserRig(t)
		// oxd-server 3.1.4: uma_rp_get_rpt returns the site's cached RPT,
		// whatever the ticket.
		var mu sync.Mutex
		var cached oxdclient.Secret
		rg.tr.setAfter(func(cmd string, _, result any, err error) error {
			if cmd != oxdclient.CmdUMARPGetRPT {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			r := result.(*oxdclient.UMARPGetRPTResponse)
			if cached != "" {
				r.AccessToken = cached
				return nil
			}
			if err == nil {
				cached = r.AccessToken
			}
			return err
		})
		alice, bob := rg.browser(), rg.browser()
		rg.login(alice, "alice")
		rg.login(bob, "bob")
		require.Equal(t, http.StatusOK, rg.doWith(alice, "GET", "/reports/1", nil).status)
		res := rg.doWith(bob, "GET", "/reports/1", nil)
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, 1, rg.pageCalls("reports"), "bob never sees the page")
		assert.Contains(t, rg.logs.String(), "already given to another user")
		// And bob's session holds no RPT: next time he is refused again.
		assert.Equal(t, http.StatusBadGateway, rg.doWith(bob, "GET", "/reports/1", nil).status)
	})
}

// anchors-uma §3 (oxd does not URL-encode claims_redirect_uri): a claims
// redirect URL that would need encoding is refused at configuration, and a
// claims-gathering URL that does not carry exactly our values is refused.
func TestUMAPitfall_UnencodedClaimsRedirectURI(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	for _, u := range []string{
		"https://app.example/claims?next=/x",
		"https://app.example/cb&state=evil",
		"https://app.example/a%20b",
		"https://app.example/a b",
		"https://app.example/c+b",
		"https://app.example/cb#frag",
		"https://user@app.example/cb",
		"https://app.example/caf\u00e9",
		"https://app.example/cb?",
	} {
		err := rg.auth.configureUMA(UMAConfig{Browser: true, ClaimsRedirectURL: u})
		assert.Error(t, err, u)
	}
	require.NoError(t, rg.auth.configureUMA(UMAConfig{Browser: true, ClaimsRedirectURL: rg.app.URL + "/claims-callback"}))

	rg.mountWhoami()
	rg.protect("GET /reports/{id}", "claims_read")
	rg.register()
	// oxd 3.1.4 concatenation: an unencoded value splits into parameters.
	rg.tr.setAfter(func(cmd string, params, result any, err error) error {
		if cmd != oxdclient.CmdUMARPGetClaimsGatheringURL || err != nil {
			return err
		}
		r := result.(*oxdclient.UMARPGetClaimsGatheringURLResponse)
		p := params.(*oxdclient.UMARPGetClaimsGatheringURLParams)
		u, _ := url.Parse(r.URL)
		r.State = "st&ticket=forged"
		r.URL = u.Scheme + "://" + u.Host + u.Path + "?client_id=" + u.Query().Get("client_id") +
			"&ticket=" + p.Ticket + "&claims_redirect_uri=" + p.ClaimsRedirectURI + "&state=" + r.State
		return nil
	})
	bob := rg.browser()
	rg.login(bob, "bob")
	res := rg.doWith(bob, "GET", "/reports/1", nil)
	assert.Equal(t, http.StatusBadGateway, res.status)
	assert.Empty(t, res.header.Get("Location"), "no redirect to a URL the AS would misread")
	assert.Contains(t, rg.logs.String(), "does not carry the")
}

// Design §7: RPTs (and tickets) never appear in logs, whatever happens.
func TestUMARPTNeverLogged(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.mountWhoami()
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.mux.Handle("GET /reports/{id}", rg.auth.UMAProtectWith(UMARule{Template: "/reports/{id}", Browser: true,
		Conditions: []UMAMethodRule{{Methods: []string{"GET"}, Scopes: []string{"claims_read"}}}})(rg.page("reports")))
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	var secrets []string
	secrets = append(secrets, rpt)
	rg.do("GET", "/photos/1", bearer(rpt))
	rg.do("GET", "/albums/1", bearer(rpt))
	res := rg.do("GET", "/albums/1", nil)
	secrets = append(secrets, parseChallenge(t, res.header.Get("WWW-Authenticate"))["ticket"])
	rg.srv.OP.SetFault(oxdtest.EndpointIntrospection, oxdtest.FaultHTTP500)
	rg.do("GET", "/albums/1", bearer(rpt+"x"))
	rg.srv.OP.SetFault(oxdtest.EndpointIntrospection, oxdtest.FaultNone)

	// The browser flow, through claims gathering.
	bob := rg.browser()
	rg.login(bob, "bob")
	res = rg.doWith(bob, "GET", "/reports/1", nil)
	require.Equal(t, http.StatusSeeOther, res.status)
	back := rg.gatherClaims(bob, res.header.Get("Location"), map[string]string{"country": "DE"})
	secrets = append(secrets, back.Query().Get("ticket"))
	require.Equal(t, http.StatusSeeOther, rg.doWith(bob, "GET", back.RequestURI(), nil).status)
	require.Equal(t, http.StatusOK, rg.doWith(bob, "GET", "/reports/1", nil).status)
	secrets = append(secrets, rg.tr.lastCheck().RPT.Reveal())
	rg.waitSettled()

	logs := rg.logs.String()
	require.NotEmpty(t, logs)
	for _, s := range secrets {
		require.NotEmpty(t, s)
		assert.NotContains(t, logs, s)
	}
}
