package devop

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// umaSetup registers a resource server client with a PAT and one
// resource with the scopes view, claims_read and deny_write.
type umaSetup struct {
	op  *OP
	rs  regClient // resource server
	rp  regClient // requesting client
	pat string
	rid string
}

func newUMA(t *testing.T, cfg OPConfig) umaSetup {
	t.Helper()
	op := newTestOP(t, cfg)
	rs := register(t, op, defaultMeta())
	rp := register(t, op, defaultMeta())
	pat := clientToken(t, op, rs, "uma_protection")
	res, b := doJSON(t, http.MethodPost, op.Issuer()+"/uma/resource_set", pat, map[string]any{
		"name": "GET /photos", "type": "https://rp.example/photos", "resource_scopes": []string{"view", "claims_read", "deny_write"},
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, string(b))
	return umaSetup{op: op, rs: rs, rp: rp, pat: pat, rid: decode(t, b)["_id"].(string)}
}

func (u umaSetup) ticket(t *testing.T, scopes ...string) string {
	t.Helper()
	res, b := doJSON(t, http.MethodPost, u.op.Issuer()+"/uma/permission", u.pat, map[string]any{"resource_id": u.rid, "resource_scopes": scopes})
	require.Equal(t, http.StatusCreated, res.StatusCode, string(b))
	return decode(t, b)["ticket"].(string)
}

func (u umaSetup) rpt(t *testing.T, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	form.Set("grant_type", GrantTypeUMATicket)
	return token(t, u.op, u.rp, form)
}

func TestResourceSetCRUD(t *testing.T) {
	u := newUMA(t, OPConfig{})
	base := u.op.Issuer() + "/uma/resource_set"

	res, b := doJSON(t, http.MethodGet, base, u.pat, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, `["`+u.rid+`"]`, string(b))

	res, b = doJSON(t, http.MethodGet, base+"/"+u.rid, u.pat, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	d := decode(t, b)
	assert.Equal(t, u.rid, d["_id"])
	assert.Equal(t, "GET /photos", d["name"])
	assert.Equal(t, []any{"view", "claims_read", "deny_write"}, d["resource_scopes"])

	// scope_expression is stored as sent.
	expr := map[string]any{"rule": map[string]any{"and": []any{map[string]any{"var": 0}, map[string]any{"var": 1}}}, "data": []string{"a", "b"}}
	res, b = doJSON(t, http.MethodPut, base+"/"+u.rid, u.pat, map[string]any{"name": "renamed", "resource_scopes": []string{"a", "b"}, "scope_expression": expr})
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	assert.Equal(t, u.rid, decode(t, b)["_id"])
	res, b = doJSON(t, http.MethodGet, base+"/"+u.rid, u.pat, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	d = decode(t, b)
	assert.Equal(t, "renamed", d["name"])
	assert.Equal(t, []any{"a", "b"}, d["resource_scopes"])
	assert.Equal(t, []any{"a", "b"}, d["scope_expression"].(map[string]any)["data"])

	// Another resource server sees nothing of it.
	other := register(t, u.op, defaultMeta())
	otherPAT := clientToken(t, u.op, other, "uma_protection")
	res, b = doJSON(t, http.MethodGet, base, otherPAT, nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "[]", string(b))
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		res, _ = doJSON(t, m, base+"/"+u.rid, otherPAT, map[string]any{"resource_scopes": []string{"x"}})
		assert.Equal(t, http.StatusNotFound, res.StatusCode, m)
	}

	// Invalid descriptions.
	for _, body := range []any{map[string]any{"name": "no scopes"}, map[string]any{"resource_scopes": []string{"has space"}}, []string{"x"}} {
		res, _ = doJSON(t, http.MethodPost, base, u.pat, body)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	}

	res, _ = doJSON(t, http.MethodDelete, base+"/"+u.rid, u.pat, nil)
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	res, _ = doJSON(t, http.MethodGet, base+"/"+u.rid, u.pat, nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestProtectionAPIRequiresPAT(t *testing.T) {
	u := newUMA(t, OPConfig{})
	noUMA := clientToken(t, u.op, u.rs, "oxd") // a token, but not a PAT
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/uma/resource_set"},
		{http.MethodPost, "/uma/resource_set"},
		{http.MethodGet, "/uma/resource_set/" + u.rid},
		{http.MethodPost, "/uma/permission"},
	} {
		for _, tok := range []string{"", "garbage", noUMA} {
			res, b := doJSON(t, tc.method, u.op.Issuer()+tc.path, tok, map[string]any{"resource_id": u.rid, "resource_scopes": []string{"view"}})
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, tc.path)
			assert.Equal(t, "invalid_token", decode(t, b)["error"])
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
		}
	}
	// A PAT from the code flow (user-granted uma_protection) works too.
	tok := codeFlow(t, u.op, u.rs, "openid uma_protection")
	res, _ := doJSON(t, http.MethodGet, u.op.Issuer()+"/uma/resource_set", tok["access_token"].(string), nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestPermissionEndpoint(t *testing.T) {
	clk := newClock()
	u := newUMA(t, OPConfig{Now: clk.Now})
	perm := u.op.Issuer() + "/uma/permission"

	res, b := doJSON(t, http.MethodPost, perm, u.pat, []map[string]any{{"resource_id": u.rid, "resource_scopes": []string{"view"}}, {"resource_id": u.rid}})
	require.Equal(t, http.StatusCreated, res.StatusCode, string(b))
	assert.NotEmpty(t, decode(t, b)["ticket"])

	other := register(t, u.op, defaultMeta())
	otherPAT := clientToken(t, u.op, other, "uma_protection")
	cases := []struct {
		name  string
		pat   string
		body  any
		error string
	}{
		{"unknown resource", u.pat, map[string]any{"resource_id": "nope", "resource_scopes": []string{"view"}}, "invalid_resource_id"},
		{"missing resource", u.pat, map[string]any{"resource_scopes": []string{"view"}}, "invalid_resource_id"},
		{"scope not registered", u.pat, map[string]any{"resource_id": u.rid, "resource_scopes": []string{"edit"}}, "invalid_scope"},
		{"second of array bad", u.pat, []map[string]any{{"resource_id": u.rid, "resource_scopes": []string{"view"}}, {"resource_id": u.rid, "resource_scopes": []string{"x"}}}, "invalid_scope"},
		{"another RS's resource", otherPAT, map[string]any{"resource_id": u.rid, "resource_scopes": []string{"view"}}, "invalid_resource_id"},
		{"empty array", u.pat, []any{}, "invalid_request"},
		{"not an object", u.pat, "view", "invalid_request"},
	}
	for _, tc := range cases {
		res, b := doJSON(t, http.MethodPost, perm, tc.pat, tc.body)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, tc.name)
		assert.Equal(t, tc.error, decode(t, b)["error"], tc.name)
	}

	// Tickets are single use and expire.
	tk := u.ticket(t, "view")
	res, m := u.rpt(t, url.Values{"ticket": {tk}})
	require.Equal(t, http.StatusOK, res.StatusCode, m)
	res, m = u.rpt(t, url.Values{"ticket": {tk}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])
	tk = u.ticket(t, "view")
	clk.Advance(defaultTicketTTL + time.Second)
	res, m = u.rpt(t, url.Values{"ticket": {tk}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])
	res, m = u.rpt(t, url.Values{})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", m["error"])
}

func TestUMAGrantIssuesRPTAndIntrospection(t *testing.T) {
	u := newUMA(t, OPConfig{})
	res, m := u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}})
	require.Equal(t, http.StatusOK, res.StatusCode, m)
	assert.Equal(t, "Bearer", m["token_type"])
	assert.Equal(t, false, m["upgraded"])
	assert.NotEmpty(t, m["pct"])
	assert.EqualValues(t, 600, m["expires_in"])
	rpt := m["access_token"].(string)

	// The RS introspects the RPT with its PAT.
	req, _ := http.NewRequest(http.MethodPost, u.op.Issuer()+"/introspect", strings.NewReader(url.Values{"token": {rpt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+u.pat)
	hres, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer hres.Body.Close()
	require.Equal(t, http.StatusOK, hres.StatusCode)
	in := introspect(t, u.op, u.rs, rpt)
	assert.Equal(t, true, in["active"])
	assert.Equal(t, u.rp.ID, in["client_id"])
	assert.NotContains(t, in, "scope", "FedAuthz §5.1: no scope for RPTs")
	perms := in["permissions"].([]any)
	require.Len(t, perms, 1)
	p := perms[0].(map[string]any)
	assert.Equal(t, u.rid, p["resource_id"])
	assert.Equal(t, []any{"view"}, p["resource_scopes"])
	assert.Equal(t, in["exp"], p["exp"])
	assert.NotZero(t, in["iat"])

	// Upgrade: the same RPT gains the new permission.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t)}, "rpt": {rpt}, "scope": {"claims_read"}, "pct": {m["pct"].(string)}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "claims_read needs country: %v", m)
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}, "rpt": {rpt}})
	require.Equal(t, http.StatusOK, res.StatusCode, m)
	assert.Equal(t, true, m["upgraded"])
	assert.Equal(t, rpt, m["access_token"])

	// Revoked RPT → inactive; and an RPT is not a userinfo token.
	assert.True(t, u.op.Revoke(rpt))
	assert.Equal(t, map[string]any{"active": false}, introspect(t, u.op, u.rs, rpt))
	assert.False(t, u.op.Revoke(rpt))
}

func TestUMAGrantDenied(t *testing.T) {
	u := newUMA(t, OPConfig{})
	res, m := u.rpt(t, url.Values{"ticket": {u.ticket(t, "view", "deny_write")}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "request_denied", m["error"])
	assert.NotContains(t, m, "ticket")
	// Requested scope that no resource of the ticket has.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}, "scope": {"print"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_scope", m["error"])
	// oxd 3.1.4 encodes the scope parameter twice; it is decoded once.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}, "scope": {url.QueryEscape("view claims_read")}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "need_info", m["error"], "claims_read was added to the ticket's permission")
	// A requested scope that is registered is added, and evaluated.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}, "scope": {"deny_write"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "request_denied", m["error"])
}

// TestUMANeedInfoClaimsGatheringRoundTrip follows UMA Grant §3.3.6 and
// §3.3.2: need_info → claims page in a browser → new ticket → RPT.
func TestUMANeedInfoClaimsGatheringRoundTrip(t *testing.T) {
	u := newUMA(t, OPConfig{})
	t1 := u.ticket(t, "claims_read")
	res, m := u.rpt(t, url.Values{"ticket": {t1}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, m)
	assert.Equal(t, "need_info", m["error"])
	t2 := m["ticket"].(string)
	assert.NotEqual(t, t1, t2)
	assert.Equal(t, u.op.Issuer()+"/uma/claims_gathering", m["redirect_user"])
	rc := m["required_claims"].([]any)
	require.Len(t, rc, 1)
	claim := rc[0].(map[string]any)
	assert.Equal(t, "country", claim["name"])
	assert.Equal(t, []any{claimTokenFormatIDToken}, claim["claim_token_format"])
	assert.Equal(t, []any{u.op.Issuer()}, claim["issuer"])
	for _, k := range []string{"claim_type", "friendly_name"} {
		assert.NotEmpty(t, claim[k])
	}
	assert.Len(t, m, 4, "need_info carries exactly error, ticket, required_claims, redirect_user")

	// The old ticket is spent; the need_info ticket belongs to this client.
	res, m2 := u.rpt(t, url.Values{"ticket": {t1}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m2["error"])

	cl := browser(t)
	q := url.Values{"client_id": {u.rp.ID}, "ticket": {t2}, "claims_redirect_uri": {testClaimsRedirect}, "state": {"cs&1"}}
	res, page := get(t, cl, m["redirect_user"].(string)+"?"+q.Encode())
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	assert.Contains(t, page, `name="country"`)
	assert.Contains(t, page, `type="submit"`)
	ia := field(t, reClaimsInteraction, page)

	// Empty value: the form again.
	res, page = submit(t, cl, u.op.Issuer()+"/uma/claims_gathering", url.Values{claimsFormField: {ia}, "country": {"  "}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "Please fill in")
	// Another browser cannot post it.
	res, _ = submit(t, browser(t), u.op.Issuer()+"/uma/claims_gathering", url.Values{claimsFormField: {ia}, "country": {"DE"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	res, _ = submit(t, cl, u.op.Issuer()+"/uma/claims_gathering", url.Values{claimsFormField: {ia}, "country": {"DE"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, err := res.Location()
	require.NoError(t, err)
	assert.Equal(t, testClaimsRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	assert.Equal(t, "cs&1", loc.Query().Get("state"))
	t3 := loc.Query().Get("ticket")
	require.NotEmpty(t, t3)
	assert.NotEqual(t, t2, t3)

	// A need_info ticket is bound to the client it was issued to.
	other := register(t, u.op, defaultMeta())
	res, m = token(t, u.op, other, url.Values{"grant_type": {GrantTypeUMATicket}, "ticket": {u.ticket(t, "claims_read")}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	res, m = u.rpt(t, url.Values{"ticket": {m["ticket"].(string)}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])

	res, m = u.rpt(t, url.Values{"ticket": {t3}})
	require.Equal(t, http.StatusOK, res.StatusCode, m)
	in := introspect(t, u.op, u.rs, m["access_token"].(string))
	assert.Equal(t, []any{"claims_read"}, in["permissions"].([]any)[0].(map[string]any)["resource_scopes"])

	// The PCT carries the gathered claims to the next request.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "pct": {m["pct"].(string)}})
	assert.Equal(t, http.StatusOK, res.StatusCode, m)
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}, "pct": {"forged"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])
}

func TestClaimsGatheringPageRules(t *testing.T) {
	u := newUMA(t, OPConfig{})
	_, m := u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}})
	tk := m["ticket"].(string)
	page := u.op.Issuer() + "/uma/claims_gathering?"
	for _, q := range []url.Values{
		{"client_id": {u.rp.ID}, "ticket": {tk}, "claims_redirect_uri": {"https://evil.example/cb"}},
		{"client_id": {u.rp.ID}, "ticket": {tk}},
		{"client_id": {"unknown"}, "ticket": {tk}, "claims_redirect_uri": {testClaimsRedirect}},
		{"client_id": {u.rp.ID}, "ticket": {"bogus"}, "claims_redirect_uri": {testClaimsRedirect}},
		{"client_id": {u.rs.ID}, "ticket": {tk}, "claims_redirect_uri": {testClaimsRedirect}}, // ticket bound to rp
	} {
		res, body := get(t, browser(t), page+q.Encode())
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, q)
		assert.Empty(t, res.Header.Get("Location"))
		assert.NotContains(t, body, "evil.example")
	}
	// A registered redirect_uri is accepted as claims_redirect_uri too.
	res, _ := get(t, browser(t), page+url.Values{"client_id": {u.rp.ID}, "ticket": {tk}, "claims_redirect_uri": {testRedirect}}.Encode())
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// A fresh ticket that needs nothing goes straight back with a new ticket.
	fresh := u.ticket(t, "view")
	res, _ = get(t, browser(t), page+url.Values{"client_id": {u.rp.ID}, "ticket": {fresh}, "claims_redirect_uri": {testClaimsRedirect}, "state": {"z"}}.Encode())
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc, _ := res.Location()
	assert.Equal(t, "z", loc.Query().Get("state"))
	res, m = u.rpt(t, url.Values{"ticket": {loc.Query().Get("ticket")}})
	assert.Equal(t, http.StatusOK, res.StatusCode, m)
	// A fresh ticket that needs claims shows the form directly.
	res, body := get(t, browser(t), page+url.Values{"client_id": {u.rp.ID}, "ticket": {u.ticket(t, "claims_read")}, "claims_redirect_uri": {testClaimsRedirect}}.Encode())
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `name="country"`)
}

func TestUMAPushedIDTokenClaims(t *testing.T) {
	u := newUMA(t, OPConfig{})
	idFor := func(user, pass string) string {
		verifier, challenge := pkcePair()
		loc, err := u.op.Login(context.Background(), authURL(u.op, u.rp, authParams{challenge: challenge, scope: "openid"}), user, pass)
		require.NoError(t, err)
		res, tok := token(t, u.op, u.rp, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		return tok["id_token"].(string)
	}
	// alice has a country claim: her ID token satisfies the policy.
	res, m := u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "claim_token": {idFor("alice", "alice-password")}, "claim_token_format": {claimTokenFormatIDToken}})
	assert.Equal(t, http.StatusOK, res.StatusCode, m)
	// bob has none: need_info.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "claim_token": {idFor("bob", "bob-password")}, "claim_token_format": {claimTokenFormatIDToken}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "need_info", m["error"])
	// Forged token, unknown format, token without format.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "claim_token": {"eyJhbGciOiJub25lIn0.eyJjb3VudHJ5IjoiREUifQ."}, "claim_token_format": {claimTokenFormatIDToken}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "claim_token": {"abc"}, "claim_token_format": {"urn:example:json"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", m["error"])
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "claims_read")}, "claim_token": {"abc"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", m["error"])
}

func TestCustomUMAPolicy(t *testing.T) {
	var calls atomic.Int32
	var seen PolicyRequest
	policy := func(req PolicyRequest) PolicyDecision {
		calls.Add(1)
		seen = req
		switch {
		case req.Claims["role"] == "admin":
			return Grant()
		case req.Claims["role"] != "":
			return Deny()
		case strings.Contains(strings.Join(req.Scopes, " "), "view"):
			return NeedInfo("role", "role", "")
		}
		panic("unexpected")
	}
	u := newUMA(t, OPConfig{UMAPolicy: policy})
	res, m := u.rpt(t, url.Values{"ticket": {u.ticket(t, "view")}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "need_info", m["error"])
	assert.Len(t, m["required_claims"], 1, "duplicate and empty claim names are dropped")
	assert.Equal(t, u.rp.ID, seen.ClientID)
	assert.Equal(t, u.rid, seen.ResourceID)
	assert.Equal(t, []string{"view"}, seen.Scopes)
	assert.NotNil(t, seen.Claims)

	// A panicking policy denies.
	res, m = u.rpt(t, url.Values{"ticket": {u.ticket(t, "deny_write")}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "request_denied", m["error"])
	assert.EqualValues(t, 2, calls.Load())

	assert.Equal(t, "deny", PolicyDecision{}.String(), "the zero decision denies")
	assert.Equal(t, "deny", NeedInfo().String())
	assert.Equal(t, "need_info(a,b)", NeedInfo("a", "b", "a").String())
	assert.Equal(t, "grant", Grant().String())
}

func TestDefaultPolicy(t *testing.T) {
	cases := []struct {
		scopes []string
		claims map[string]string
		want   string
	}{
		{[]string{"view"}, nil, "grant"},
		{[]string{"view", "deny_all"}, nil, "deny"},
		{[]string{"claims_x"}, map[string]string{}, "need_info(country)"},
		{[]string{"claims_x"}, map[string]string{"country": " "}, "need_info(country)"},
		{[]string{"claims_x"}, map[string]string{"country": "DE"}, "grant"},
		{[]string{"claims_x", "deny"}, map[string]string{"country": "DE"}, "deny"},
		{nil, nil, "grant"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, DefaultPolicy(PolicyRequest{Scopes: tc.scopes, Claims: tc.claims}).String(), tc.scopes)
	}
}

func TestDeletedResourceInvalidatesTickets(t *testing.T) {
	u := newUMA(t, OPConfig{})
	tk := u.ticket(t, "view")
	res, _ := doJSON(t, http.MethodDelete, u.op.Issuer()+"/uma/resource_set/"+u.rid, u.pat, nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	res, m := u.rpt(t, url.Values{"ticket": {tk}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])
}

func TestPublicClientCannotUseUMAGrant(t *testing.T) {
	u := newUMA(t, OPConfig{})
	meta := defaultMeta()
	meta["token_endpoint_auth_method"] = "none"
	meta["grant_types"] = []string{"authorization_code"}
	pub := register(t, u.op, meta)
	res, m := postForm(t, u.op.Issuer()+"/token", nil, url.Values{"grant_type": {GrantTypeUMATicket}, "ticket": {u.ticket(t, "view")}, "client_id": {pub.ID}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "unauthorized_client", m["error"])
}
