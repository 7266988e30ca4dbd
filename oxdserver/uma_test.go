package oxdserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// umaResources protects a few paths. Scope names follow the development
// OP's default policy: "deny…" is denied, "claims…" needs the country
// claim, anything else is granted.
var umaResources = []map[string]any{
	{"path": "/photos", "conditions": []map[string]any{
		{"httpMethods": []string{"GET"}, "scopes": []string{"view", "all"}, "ticketScopes": []string{"view"}},
		{"httpMethods": []string{"PUT", "POST"}, "scopes": []string{"edit"}},
	}},
	{"path": "/secret", "conditions": []map[string]any{{"httpMethods": []string{"GET"}, "scopes": []string{"deny_all"}}}},
	{"path": "/claims", "conditions": []map[string]any{{"httpMethods": []string{"GET"}, "scopes": []string{"claims_country"}}}},
	{"path": "/expr", "conditions": []map[string]any{{"httpMethods": []string{"DELETE"}, "scope_expression": map[string]any{
		"rule": map[string]any{"and": []any{map[string]any{"or": []any{map[string]any{"var": 0}, map[string]any{"var": 1}}}, map[string]any{"var": 2}}},
		"data": []string{"view", "all", "remove"},
	}}}},
}

func protect(t testing.TB, srv *oxdtest.Server) {
	t.Helper()
	_, oe := exec(t, srv.Engine, "uma_rs_protect", map[string]any{"oxd_id": srv.OxdID, "resources": umaResources})
	require.Nil(t, oe, "%v", oe)
}

func checkAccess(t testing.TB, srv *oxdtest.Server, rpt, path, method string) (map[string]any, *oxdclient.Error) {
	t.Helper()
	return exec(t, srv.Engine, "uma_rs_check_access", map[string]any{"oxd_id": srv.OxdID, "rpt": rpt, "path": path, "http_method": method})
}

func denied(t testing.TB, srv *oxdtest.Server, m map[string]any, oe *oxdclient.Error) string {
	t.Helper()
	require.Nil(t, oe, "%v", oe)
	require.Equal(t, "denied", m["access"])
	ticket, _ := m["ticket"].(string)
	require.NotEmpty(t, ticket)
	assert.Equal(t, fmt.Sprintf(`UMA realm="rs",as_uri="%s",error="insufficient_scope",ticket="%s"`, srv.OP.Issuer(), ticket), m["www-authenticate_header"])
	return ticket
}

func TestUMAProtectCheckAccessAndRPT(t *testing.T) {
	srv := oxdtest.NewServer(t)
	protect(t, srv)

	// Already protected without overwrite.
	_, oe := exec(t, srv.Engine, "uma_rs_protect", map[string]any{"oxd_id": srv.OxdID, "resources": umaResources})
	requireCode(t, oe, oxdclient.CodeUMAProtectionExists)
	assert.Equal(t, "Server already has UMA Resources registered for this oxd_id. It is possible to overwrite it if provide overwrite=true for uma_rs_protect command (existing resources will be removed and new UMA Resources added).", oe.Description)

	// One AS resource per condition, stored as 3.1.4 does.
	node, oe := exec(t, srv.Engine, "get_rp", map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe)
	res := node["node"].(map[string]any)["uma_protected_resources"].([]any)
	require.Len(t, res, 5)
	first := res[0].(map[string]any)
	assert.Equal(t, "/photos", first["path"])
	assert.Equal(t, []any{"GET"}, first["http_methods"])
	assert.Equal(t, []any{"view"}, first["ticketScopes"])
	assert.Equal(t, []any{"edit"}, res[1].(map[string]any)["ticketScopes"], "ticketScopes default to scopes")
	expr := res[4].(map[string]any)
	assert.Equal(t, []any{"view", "all", "remove"}, expr["ticketScopes"])
	assert.Len(t, expr["scope_expressions"], 1)

	// Not protected: an error answer with 3.1.4's description.
	_, oe = checkAccess(t, srv, "", "/other", "GET")
	requireCode(t, oe, oxdclient.CodeInvalidRequest)
	assert.Equal(t, "Resource is not protected with path: /other and httpMethod: GET. Please protect your resource first with uma_rs_protect command. Check details on https://gluu.org/docs/oxd", oe.Description)
	_, oe = checkAccess(t, srv, "", "/photos/1", "GET")
	requireCode(t, oe, oxdclient.CodeInvalidRequest) // exact match only
	_, oe = checkAccess(t, srv, "", "/photos", "PATCH")
	requireCode(t, oe, oxdclient.CodeInvalidRequest)
	_, oe = checkAccess(t, srv, "", "/photos", "")
	requireCode(t, oe, oxdclient.CodeInvalidHTTPMethod)
	_, oe = checkAccess(t, srv, "", "", "GET")
	requireCode(t, oe, oxdclient.CodeInvalidPathParameter)

	// No RPT: denied with a ticket and the 3.1.4 header.
	m, oe := checkAccess(t, srv, "", "/photos", "GET")
	ticket := denied(t, srv, m, oe)

	// The RP exchanges the ticket for an RPT.
	rpt, err := srv.Client.UMARPGetRPT(testCtx(t), oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: ticket})
	require.NoError(t, err)
	require.NotEmpty(t, rpt.AccessToken.Reveal())
	assert.False(t, rpt.Updated)
	raw, oe := exec(t, srv.Engine, "uma_rp_get_rpt", map[string]any{"oxd_id": srv.OxdID, "ticket": ticket})
	requireCode(t, oe, "http_status_400") // tickets are single use at the AS
	assert.Nil(t, raw)

	// Granted, method case-insensitive, path case-insensitive.
	m, oe = checkAccess(t, srv, rpt.AccessToken.Reveal(), "/photos", "get")
	require.Nil(t, oe)
	assert.Equal(t, map[string]any{"access": "granted", "www-authenticate_header": nil, "ticket": nil}, m)
	m, oe = checkAccess(t, srv, rpt.AccessToken.Reveal(), "/PHOTOS", "GET")
	require.Nil(t, oe)
	assert.Equal(t, "granted", m["access"])
	// The same RPT has no permission for PUT (another resource).
	m, oe = checkAccess(t, srv, rpt.AccessToken.Reveal(), "/photos", "PUT")
	denied(t, srv, m, oe)
	// A forged RPT is denied (inactive at introspection).
	m, oe = checkAccess(t, srv, "forged-rpt", "/photos", "GET")
	denied(t, srv, m, oe)

	in, err := srv.Client.IntrospectRPT(testCtx(t), oxdclient.IntrospectRPTParams{OxdID: srv.OxdID, RPT: rpt.AccessToken})
	require.NoError(t, err)
	assert.True(t, in.Active)
	require.Len(t, in.Permissions, 1)
	assert.Equal(t, first["id"], in.Permissions[0].ResourceID)
	assert.Equal(t, []string{"view"}, in.Permissions[0].ResourceScopes)

	// Scope expression: the ticket carries the expression's data; an RPT
	// with any one of those scopes is granted (the AS evaluated the rule).
	m, oe = checkAccess(t, srv, "", "/expr", "DELETE")
	ticket = denied(t, srv, m, oe)
	rpt2, err := srv.Client.UMARPGetRPT(testCtx(t), oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: ticket})
	require.NoError(t, err)
	m, oe = checkAccess(t, srv, rpt2.AccessToken.Reveal(), "/expr", "DELETE")
	require.Nil(t, oe)
	assert.Equal(t, "granted", m["access"])

	// Denied by the AS policy: the AS error passes through.
	m, oe = checkAccess(t, srv, "", "/secret", "GET")
	ticket = denied(t, srv, m, oe)
	_, oe = exec(t, srv.Engine, "uma_rp_get_rpt", map[string]any{"oxd_id": srv.OxdID, "ticket": ticket})
	requireCode(t, oe, "http_status_403")
	assert.Contains(t, oe.Description, "request_denied")
}

// TestUMANeedInfoAndClaimsGathering: need_info comes back with its
// details; the claims-gathering URL encodes every value; pushing an ID
// token with the claim gets the RPT.
func TestUMANeedInfoAndClaimsGathering(t *testing.T) {
	srv := oxdtest.NewServer(t)
	protect(t, srv)
	ctx := testCtx(t)
	m, oe := checkAccess(t, srv, "", "/claims", "GET")
	ticket := denied(t, srv, m, oe)

	_, err := srv.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: ticket})
	require.True(t, oxdclient.IsNeedInfo(err), "%v", err)
	oe = requireOxdCode(t, err, oxdclient.CodeNeedInfo)
	assert.Equal(t, "The authorization server needs additional information in order to determine whether the client is authorized to have these permissions.", oe.Description)
	var details map[string]any
	require.NoError(t, json.Unmarshal(oe.Details, &details))
	for _, k := range []string{"error", "ticket", "required_claims", "redirect_user"} {
		assert.Contains(t, details, k)
	}
	ni, ok := oe.NeedInfo()
	require.True(t, ok)
	require.NotEmpty(t, ni.Ticket)
	assert.NotEqual(t, ticket, ni.Ticket)
	require.NotEmpty(t, ni.RequiredClaims)
	assert.Equal(t, srv.OP.Issuer()+"/uma/claims_gathering", ni.RedirectUser)

	// Claims-gathering URL: every value URL-encoded, fresh state.
	odd := "t k&x=1?#é"
	redirect := srv.ClaimsRedirectURI + "?a=1&b=two words"
	cg, err := srv.Client.UMARPGetClaimsGatheringURL(ctx, oxdclient.UMARPGetClaimsGatheringURLParams{OxdID: srv.OxdID, Ticket: odd, ClaimsRedirectURI: redirect})
	require.NoError(t, err)
	u, err := url.Parse(cg.URL)
	require.NoError(t, err)
	assert.Equal(t, srv.OP.Issuer()+"/uma/claims_gathering", u.Scheme+"://"+u.Host+u.Path)
	q := u.Query()
	assert.Equal(t, odd, q.Get("ticket"))
	assert.Equal(t, redirect, q.Get("claims_redirect_uri"))
	assert.Equal(t, srv.ClientID, q.Get("client_id"))
	assert.Equal(t, cg.State, q.Get("state"))
	assert.Len(t, q, 4)
	assert.Empty(t, u.Fragment)
	cg2, err := srv.Client.UMARPGetClaimsGatheringURL(ctx, oxdclient.UMARPGetClaimsGatheringURLParams{OxdID: srv.OxdID, Ticket: ni.Ticket, ClaimsRedirectURI: srv.ClaimsRedirectURI})
	require.NoError(t, err)
	assert.NotEqual(t, cg.State, cg2.State)

	_, oe = exec(t, srv.Engine, "uma_rp_get_claims_gathering_url", map[string]any{"oxd_id": srv.OxdID, "claims_redirect_uri": srv.ClaimsRedirectURI})
	requireCode(t, oe, oxdclient.CodeInvalidTicketParameter)
	_, oe = exec(t, srv.Engine, "uma_rp_get_claims_gathering_url", map[string]any{"oxd_id": srv.OxdID, "ticket": "t"})
	requireCode(t, oe, oxdclient.CodeInvalidClaimsRedirectURIParameter)

	// alice has the country claim: pushing her ID token satisfies the policy.
	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	require.NoError(t, err)
	rpt, err := srv.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: ni.Ticket,
		ClaimToken: tok.IDToken, ClaimTokenFormat: "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"})
	require.NoError(t, err)
	m, oe = checkAccess(t, srv, rpt.AccessToken.Reveal(), "/claims", "GET")
	require.Nil(t, oe)
	assert.Equal(t, "granted", m["access"])
}

// TestUMARPTNeverCached: every uma_rp_get_rpt goes to the AS; two users'
// tickets give two RPTs.
func TestUMARPTNeverCached(t *testing.T) {
	srv := oxdtest.NewServer(t)
	protect(t, srv)
	var rpts []string
	for range 2 {
		m, oe := checkAccess(t, srv, "", "/photos", "GET")
		ticket := denied(t, srv, m, oe)
		before := srv.OP.Calls(oxdtest.EndpointToken)
		r, err := srv.Client.UMARPGetRPT(testCtx(t), oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: ticket})
		require.NoError(t, err)
		assert.Equal(t, before+1, srv.OP.Calls(oxdtest.EndpointToken))
		rpts = append(rpts, r.AccessToken.Reveal())
	}
	assert.NotEqual(t, rpts[0], rpts[1])
	_, oe := exec(t, srv.Engine, "uma_rp_get_rpt", map[string]any{"oxd_id": srv.OxdID})
	requireCode(t, oe, oxdclient.CodeInvalidTicketParameter)
}

func TestUMAProtectValidation(t *testing.T) {
	srv := oxdtest.NewServer(t)
	cases := []struct {
		name      string
		resources any
		code      string
	}{
		{"empty", []any{}, oxdclient.CodeInvalidUMARequest},
		{"missing", nil, oxdclient.CodeInvalidUMARequest},
		{"duplicate method in one path", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scopes": []string{"a"}},
			{"httpMethods": []string{"POST", "GET"}, "scopes": []string{"b"}},
		}}}, oxdclient.CodeHTTPMethodNotUnique},
		{"duplicate method across entries of one path", []map[string]any{
			{"path": "/p", "conditions": []map[string]any{{"httpMethods": []string{"GET"}, "scopes": []string{"a"}}}},
			{"path": "/p", "conditions": []map[string]any{{"httpMethods": []string{"GET"}, "scopes": []string{"b"}}}},
		}, oxdclient.CodeHTTPMethodNotUnique},
		{"expression not an object", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": "x", "data": []string{"a"}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"expression with unknown operator", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": map[string]any{"xor": []any{1, 2}}, "data": []string{"a"}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"expression without data", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": map[string]any{"var": 0}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"expression var out of range", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": map[string]any{"var": 3}, "data": []string{"a"}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"expression var naming the whole data", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": map[string]any{"var": ""}, "data": []string{"a"}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"expression data listing a scope twice", []map[string]any{{"path": "/p", "conditions": []map[string]any{
			{"httpMethods": []string{"GET"}, "scope_expression": map[string]any{"rule": map[string]any{"var": 1}, "data": []string{"a", "a"}}},
		}}}, oxdclient.CodeInvalidScopeExpression},
		{"no scopes", []map[string]any{{"path": "/p", "conditions": []map[string]any{{"httpMethods": []string{"GET"}}}}}, oxdclient.CodeInvalidUMARequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := map[string]any{"oxd_id": srv.OxdID}
			if tc.resources != nil {
				p["resources"] = tc.resources
			}
			_, oe := exec(t, srv.Engine, "uma_rs_protect", p)
			requireCode(t, oe, tc.code)
		})
	}
	// The duplicate check is case-sensitive, as 3.1.4's.
	_, oe := exec(t, srv.Engine, "uma_rs_protect", map[string]any{"oxd_id": srv.OxdID, "resources": []map[string]any{{"path": "/p", "conditions": []map[string]any{
		{"httpMethods": []string{"GET"}, "scopes": []string{"a"}}, {"httpMethods": []string{"get"}, "scopes": []string{"b"}},
	}}}})
	require.Nil(t, oe)
}

// TestUMAOverwriteDeletesOldResources: overwrite=true removes the old
// resources at the AS before registering the new ones.
func TestUMAOverwriteDeletesOldResources(t *testing.T) {
	srv := oxdtest.NewServer(t)
	protect(t, srv)
	node, _ := exec(t, srv.Engine, "get_rp", map[string]any{"oxd_id": srv.OxdID})
	site := node["node"].(map[string]any)
	var oldIDs []string
	for _, r := range site["uma_protected_resources"].([]any) {
		oldIDs = append(oldIDs, r.(map[string]any)["id"].(string))
	}
	// A PAT of the site's own client, to look at the AS.
	pat := sitePAT(t, srv)
	status := func(id string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.OP.Issuer()+"/uma/resource_set/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+pat)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, status(oldIDs[0]))

	_, oe := exec(t, srv.Engine, "uma_rs_protect", map[string]any{"oxd_id": srv.OxdID, "overwrite": true, "resources": []map[string]any{
		{"path": "/new", "conditions": []map[string]any{{"httpMethods": []string{"GET"}, "scopes": []string{"view"}}}},
	}})
	require.Nil(t, oe)
	for _, id := range oldIDs {
		assert.Equal(t, http.StatusNotFound, status(id), "old resource %s still at the AS", id)
	}
	_, oe = checkAccess(t, srv, "", "/photos", "GET")
	requireCode(t, oe, oxdclient.CodeInvalidRequest)
	m, oe := checkAccess(t, srv, "", "/new", "GET")
	denied(t, srv, m, oe)
}

// TestPATRefreshedWhenRejected: when the AS no longer accepts the cached
// PAT, the engine gets a new one and retries once.
func TestPATRefreshedWhenRejected(t *testing.T) {
	opClock := &clock{t: time.Now()}
	// Only the OP's clock moves: a client assertion (private_key_jwt, the
	// default where the OP offers it) would be stale there, so this OP
	// offers the secret methods only.
	srv := oxdtest.NewServer(t, oxdtest.WithOPConfig(oxdtest.OPConfig{Now: opClock.Now, AccessTokenTTL: 10 * time.Minute,
		ClientAuthMethods: []string{"client_secret_basic", "client_secret_post"}}))
	protect(t, srv)
	tokenCalls := srv.OP.Calls(oxdtest.EndpointToken)
	m, oe := checkAccess(t, srv, "", "/photos", "GET")
	denied(t, srv, m, oe)
	assert.Equal(t, tokenCalls, srv.OP.Calls(oxdtest.EndpointToken), "the PAT is cached")

	opClock.Advance(11 * time.Minute) // the PAT expires at the AS only
	m, oe = checkAccess(t, srv, "", "/photos", "GET")
	denied(t, srv, m, oe)
	assert.Equal(t, tokenCalls+1, srv.OP.Calls(oxdtest.EndpointToken), "one new PAT")
}

func TestUMAFailedTicketRegistrationIsAnError(t *testing.T) {
	srv := oxdtest.NewServer(t)
	protect(t, srv)
	srv.OP.SetFault(oxdtest.EndpointPermission, oxdtest.FaultHTTP500)
	m, oe := checkAccess(t, srv, "", "/photos", "GET")
	assert.Nil(t, m)
	requireCode(t, oe, "http_status_500")
	srv.OP.SetFault(oxdtest.EndpointPermission, oxdtest.FaultGarbage)
	_, oe = checkAccess(t, srv, "", "/photos", "GET")
	requireCode(t, oe, oxdclient.CodeInternalError)
	assert.False(t, strings.Contains(oe.Description, "Unknown internal"), oe.Description)
}

// sitePAT returns a PAT of the site's own client (client_credentials with
// the site's stored credentials: its secret, or its private_key_jwt keys).
func sitePAT(t *testing.T, srv *oxdtest.Server) string {
	t.Helper()
	s, err := srv.Engine.Store().GetSite(testCtx(t), srv.OxdID)
	require.NoError(t, err)
	creds := clientauth.Credentials{ClientID: s.ClientID, Method: clientauth.Method(s.TokenEndpointAuthMethod),
		Secret: s.ClientSecret, Keys: s.ClientKeys, TokenEndpoint: srv.OP.Issuer() + "/token"}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}}
	h := http.Header{}
	require.NoError(t, clientauth.Apply(h, form, creds.TokenEndpoint, creds))
	req, _ := http.NewRequest(http.MethodPost, creds.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header = h
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}
