package devop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewOPRejectsBadIssuer(t *testing.T) {
	for _, iss := range []string{"", "127.0.0.1:80", "ftp://x", "https://x/op?a=b", "https://x/#f", "https://u:p@x", "/relative"} {
		_, err := NewOP(iss, OPConfig{})
		assert.ErrorIs(t, err, ErrInvalidIssuer, iss)
	}
	_, err := NewOP("https://x", OPConfig{Users: []User{{Subject: "a", Username: "a"}, {Subject: "b", Username: "a"}}})
	assert.Error(t, err)
}

func TestDiscoveryDocuments(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	iss := op.Issuer()
	res, b := doJSON(t, http.MethodGet, iss+"/.well-known/openid-configuration", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	d := decode(t, b)
	assert.Equal(t, iss, d["issuer"])
	for k, p := range map[string]string{
		"authorization_endpoint": "/authorize", "token_endpoint": "/token", "userinfo_endpoint": "/userinfo",
		"jwks_uri": "/jwks", "registration_endpoint": "/register", "end_session_endpoint": "/end_session",
		"introspection_endpoint": "/introspect", "revocation_endpoint": "/revoke",
	} {
		assert.Equal(t, iss+p, d[k], k)
	}
	assert.Subset(t, d["scopes_supported"], []any{"openid", "profile", "email", "offline_access", "uma_protection", "uma_authorization", "oxd"})
	assert.Equal(t, []any{"code"}, d["response_types_supported"])
	assert.Equal(t, []any{"S256"}, d["code_challenge_methods_supported"])
	assert.Subset(t, d["token_endpoint_auth_methods_supported"], []any{"client_secret_basic", "client_secret_post"})
	assert.Equal(t, []any{"RS256"}, d["id_token_signing_alg_values_supported"])
	assert.Subset(t, d["grant_types_supported"], []any{"authorization_code", "refresh_token", "client_credentials", GrantTypeUMATicket})
	assert.NotEmpty(t, d["subject_types_supported"])
	assert.Subset(t, d["claims_supported"], []any{"sub", "name", "email", "email_verified", "locale"})

	res, b = doJSON(t, http.MethodGet, iss+"/.well-known/uma2-configuration", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	u := decode(t, b)
	assert.Equal(t, iss, u["issuer"])
	for k, p := range map[string]string{
		"token_endpoint": "/token", "resource_registration_endpoint": "/uma/resource_set",
		"permission_endpoint": "/uma/permission", "introspection_endpoint": "/introspect",
		"claims_interaction_endpoint": "/uma/claims_gathering", "jwks_uri": "/jwks",
	} {
		assert.Equal(t, iss+p, u[k], k)
	}
	assert.Contains(t, u["grant_types_supported"], GrantTypeUMATicket)

	// Every advertised endpoint exists (no 404).
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "registration_endpoint", "end_session_endpoint", "introspection_endpoint", "revocation_endpoint"} {
		res, _ := doJSON(t, http.MethodGet, d[k].(string), "", nil)
		assert.NotEqual(t, http.StatusNotFound, res.StatusCode, k)
	}
	res, _ = doJSON(t, http.MethodGet, iss+"/nope", "", nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = doJSON(t, http.MethodPost, iss+"/.well-known/openid-configuration", "", map[string]any{})
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

func TestJWKSHasKIDOnEveryKey(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	res, b := doJSON(t, http.MethodGet, op.Issuer()+"/jwks", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(b, &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	assert.NotEmpty(t, k.KeyID)
	assert.Equal(t, "RS256", k.Algorithm)
	assert.Equal(t, "sig", k.Use)
	assert.True(t, k.IsPublic(), "JWKS must not leak private key material")
	assert.NotContains(t, string(b), `"d":`)
}

func TestRegistrationCRUD(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	meta := defaultMeta()
	meta["software_id"] = "oxd-go-test" // unknown metadata is echoed
	c := register(t, op, meta)
	assert.NotEmpty(t, c.ID)
	assert.NotEmpty(t, c.Secret)
	assert.NotEmpty(t, c.RegToken)
	assert.Equal(t, op.Issuer()+"/register/"+c.ID, c.RegURI)
	assert.EqualValues(t, 0, c.Raw["client_secret_expires_at"])
	assert.NotZero(t, c.Raw["client_id_issued_at"])
	assert.Equal(t, []any{testRedirect}, c.Raw["redirect_uris"])
	assert.Equal(t, []any{testPostLogout}, c.Raw["post_logout_redirect_uris"])
	assert.Equal(t, "oxd-go-test", c.Raw["software_id"])
	assert.Equal(t, "client_secret_basic", c.Raw["token_endpoint_auth_method"])

	// Read
	res, b := doJSON(t, http.MethodGet, c.RegURI, c.RegToken, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	assert.Equal(t, c.ID, decode(t, b)["client_id"])
	// Wrong token, no token, and an unknown client all answer 401.
	for _, tc := range []struct{ uri, tok string }{{c.RegURI, "wrong"}, {c.RegURI, ""}, {op.Issuer() + "/register/unknown", c.RegToken}} {
		res, _ = doJSON(t, http.MethodGet, tc.uri, tc.tok, nil)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	// Update (oxd's update_site PUTs the metadata without credentials).
	upd := defaultMeta()
	upd["redirect_uris"] = []string{"https://rp.example/cb2"}
	res, b = doJSON(t, http.MethodPut, c.RegURI, c.RegToken, upd)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	m := decode(t, b)
	assert.Equal(t, []any{"https://rp.example/cb2"}, m["redirect_uris"])
	assert.Equal(t, c.Secret, m["client_secret"])
	upd["client_id"] = "someone-else"
	res, _ = doJSON(t, http.MethodPut, c.RegURI, c.RegToken, upd)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	// The old redirect URI no longer works at the authorization endpoint.
	res, _ = get(t, browser(t), authURL(op, c, authParams{}))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	// Delete
	tok := clientToken(t, op, c, "oxd")
	res, _ = doJSON(t, http.MethodDelete, c.RegURI, c.RegToken, nil)
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	res, _ = doJSON(t, http.MethodGet, c.RegURI, c.RegToken, nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, _ = token(t, op, c, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.False(t, op.Revoke(tok), "tokens of a deleted client are gone")
}

func TestRegistrationValidatesMetadata(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	cases := []struct {
		name  string
		patch map[string]any
		code  string
	}{
		{"fragment in redirect_uri", map[string]any{"redirect_uris": []string{"https://rp.example/cb#frag"}}, "invalid_redirect_uri"},
		{"relative redirect_uri", map[string]any{"redirect_uris": []string{"/cb"}}, "invalid_redirect_uri"},
		{"non-http scheme", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"no redirect_uris for code", map[string]any{"redirect_uris": []string{}}, "invalid_redirect_uri"},
		{"redirect_uris not array", map[string]any{"redirect_uris": "https://rp.example/cb"}, "invalid_redirect_uri"},
		{"bad post_logout", map[string]any{"post_logout_redirect_uris": []string{"rp/out"}}, "invalid_redirect_uri"},
		{"implicit grant", map[string]any{"grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{"token response type", map[string]any{"response_types": []string{"token"}}, "invalid_client_metadata"},
		{"unknown scope", map[string]any{"scope": "openid admin"}, "invalid_client_metadata"},
		{"unknown auth method", map[string]any{"token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"},
		{"private_key_jwt without keys", map[string]any{"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{"public client with client_credentials", map[string]any{"token_endpoint_auth_method": "none"}, "invalid_client_metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := defaultMeta()
			for k, v := range tc.patch {
				meta[k] = v
			}
			res, b := doJSON(t, http.MethodPost, op.Issuer()+"/register", "", meta)
			assert.Equal(t, http.StatusBadRequest, res.StatusCode, string(b))
			assert.Equal(t, tc.code, decode(t, b)["error"])
		})
	}
	// Not JSON, oversized.
	req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/register", strings.NewReader("{nope"))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	big := defaultMeta()
	big["client_name"] = strings.Repeat("x", maxBodyBytes+1)
	res, _ = doJSON(t, http.MethodPost, op.Issuer()+"/register", "", big)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	// Array scope (as oxd sends it) is accepted.
	meta := defaultMeta()
	meta["scope"] = []string{"openid", "uma_protection"}
	meta["claims_redirect_uri"] = []string{"https://rp.example/claims"}
	c := register(t, op, meta)
	assert.Equal(t, "openid uma_protection", c.Raw["scope"])
	assert.Contains(t, c.Raw["claims_redirect_uris"], "https://rp.example/claims")
}

func TestCodeFlowWithPKCEThroughLoginForm(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	cl := browser(t)
	verifier, challenge := pkcePair()
	loc := loginThroughForm(t, cl, authURL(op, c, authParams{state: "s t&ate", nonce: "nonce-123", challenge: challenge}), "alice", "alice-password")

	assert.Equal(t, "http://127.0.0.1:9/callback", loc.Scheme+"://"+loc.Host+loc.Path)
	assert.Equal(t, "s t&ate", loc.Query().Get("state"))
	assert.Equal(t, op.Issuer(), loc.Query().Get("iss"))
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)

	res, tok := token(t, op, c, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, tok)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, "Bearer", tok["token_type"])
	assert.EqualValues(t, 600, tok["expires_in"])
	assert.Equal(t, "openid profile email", tok["scope"])
	assert.NotEmpty(t, tok["refresh_token"])
	at := tok["access_token"].(string)

	claims, _ := verifyIDToken(t, op, tok["id_token"].(string))
	assert.Equal(t, op.Issuer(), claims["iss"])
	assert.Equal(t, "alice", claims["sub"])
	assert.Equal(t, c.ID, claims["aud"])
	assert.Equal(t, "nonce-123", claims["nonce"])
	sum := sha256.Sum256([]byte(at))
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:16]), claims["at_hash"])
	now := float64(time.Now().Unix())
	assert.InDelta(t, now, claims["iat"], 5)
	assert.InDelta(t, now+600, claims["exp"], 5)
	assert.InDelta(t, now, claims["auth_time"], 5)
	assert.Equal(t, "Alice Example", claims["name"])

	// Userinfo with the access token.
	res, b := doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", at, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	ui := decode(t, b)
	assert.Equal(t, "alice", ui["sub"])
	assert.Equal(t, "alice@example.test", ui["email"])

	// The OP session keeps the user signed in: no form the second time.
	res, _ = get(t, cl, authURL(op, c, authParams{state: "again", challenge: challenge}))
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc2, _ := res.Location()
	assert.NotEmpty(t, loc2.Query().Get("code"))
	assert.Equal(t, "again", loc2.Query().Get("state"))

	// prompt=login shows the form despite the session.
	res, page := get(t, cl, authURL(op, c, authParams{prompt: "login", challenge: challenge}))
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "Sign in")

	// prompt=none without a session answers login_required at the client.
	res, _ = get(t, browser(t), authURL(op, c, authParams{prompt: "none", state: "pn", challenge: challenge}))
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc3, _ := res.Location()
	assert.Equal(t, "login_required", loc3.Query().Get("error"))
	assert.Equal(t, "pn", loc3.Query().Get("state"))
}

func TestLoginPageIsPlainAndCookiesAreSafe(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	_, challenge := pkcePair()
	res, page := get(t, browser(t), authURL(op, c, authParams{challenge: challenge}))
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	for _, external := range []string{"<script", "http://", "https://", "@import"} {
		// The only absolute URL on the page is the form action at the OP.
		if external == "http://" {
			assert.Equal(t, 1, strings.Count(page, external), page)
			continue
		}
		assert.NotContains(t, page, external)
	}
	assert.Contains(t, page, `input id="username" name="username"`)
	assert.Contains(t, page, `name="password" type="password"`)
	var binding *http.Cookie
	for _, ck := range res.Cookies() {
		binding = ck
	}
	require.NotNil(t, binding)
	assert.True(t, binding.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, binding.SameSite)
	assert.False(t, binding.Secure, "plain-HTTP issuer: no Secure flag")
}

func TestLoginWrongPasswordShowsFormAgain(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	cl := browser(t)
	_, challenge := pkcePair()
	_, page := get(t, cl, authURL(op, c, authParams{challenge: challenge}))
	ia := field(t, reLoginInteraction, page)
	for i := 1; i < maxLoginAttempts; i++ {
		res, page := submit(t, cl, op.Issuer()+"/login", url.Values{"interaction": {ia}, "username": {"alice"}, "password": {"bob-password"}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Empty(t, res.Header.Get("Location"))
		assert.Contains(t, page, "Invalid username or password.")
		assert.Contains(t, page, `value="alice"`)
	}
	// Unknown user also fails the same way; the last attempt ends the interaction.
	res, _ := submit(t, cl, op.Issuer()+"/login", url.Values{"interaction": {ia}, "username": {"mallory"}, "password": {"x"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, _ = submit(t, cl, op.Issuer()+"/login", url.Values{"interaction": {ia}, "username": {"alice"}, "password": {"alice-password"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "a locked interaction cannot be finished")
}

func TestLoginCSRFIsRejected(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	_, challenge := pkcePair()
	_, page := get(t, browser(t), authURL(op, c, authParams{challenge: challenge}))
	ia := field(t, reLoginInteraction, page)
	// Another browser (no binding cookie, or its own) posts the attacker's form.
	victim := browser(t)
	res, _ := submit(t, victim, op.Issuer()+"/login", url.Values{"interaction": {ia}, "username": {"alice"}, "password": {"alice-password"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	_, _ = get(t, victim, authURL(op, c, authParams{challenge: challenge})) // victim gets a binding cookie
	res, _ = submit(t, victim, op.Issuer()+"/login", url.Values{"interaction": {ia}, "username": {"alice"}, "password": {"alice-password"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Empty(t, res.Header.Get("Location"))
	res, _ = submit(t, victim, op.Issuer()+"/login", url.Values{"interaction": {"made-up"}, "username": {"alice"}, "password": {"alice-password"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
}

func TestAuthorizeNeverRedirectsToUnregisteredURI(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	cl := browser(t)
	for _, u := range []string{
		authURL(op, c, authParams{redirect: "https://evil.example/cb"}),
		authURL(op, c, authParams{redirect: testRedirect + "/"}),
		authURL(op, c, authParams{redirect: testRedirect + "?x=1"}),
		authURL(op, regClient{ID: "unknown", RedirectURI: testRedirect}, authParams{}),
		op.Issuer() + "/authorize?response_type=code&client_id=" + c.ID,
		authURL(op, c, authParams{}) + "&redirect_uri=" + url.QueryEscape(testRedirect),
	} {
		res, page := get(t, cl, u)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, u)
		assert.Empty(t, res.Header.Get("Location"), u)
		assert.Contains(t, res.Header.Get("Content-Type"), "text/html")
		assert.NotContains(t, page, "evil.example")
	}
}

func TestAuthorizeErrorsGoToTheClient(t *testing.T) {
	op := newTestOP(t, OPConfig{RequirePKCE: true})
	c := register(t, op, defaultMeta())
	_, challenge := pkcePair()
	base := authURL(op, c, authParams{state: "xyz", challenge: challenge})
	cases := []struct{ name, url, code string }{
		{"response_type token", strings.Replace(base, "response_type=code", "response_type=token", 1), "unsupported_response_type"},
		{"plain PKCE", strings.Replace(base, "code_challenge_method=S256", "code_challenge_method=plain", 1), "invalid_request"},
		{"PKCE method missing", strings.Replace(base, "code_challenge_method=S256", "", 1), "invalid_request"},
		{"PKCE required", authURL(op, c, authParams{state: "xyz"}), "invalid_request"},
		{"malformed challenge", strings.Replace(base, challenge, "short", 1), "invalid_request"},
		{"no allowed scope", authURL(op, c, authParams{state: "xyz", scope: "admin", challenge: challenge}), "invalid_scope"},
		{"prompt none+login", base + "&prompt=none+login", "invalid_request"},
		{"repeated state", base + "&state=again", "invalid_request"},
		{"request object", base + "&request=eyJ", "request_not_supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := get(t, browser(t), tc.url)
			require.Equal(t, http.StatusFound, res.StatusCode)
			loc, err := res.Location()
			require.NoError(t, err)
			assert.Equal(t, testRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
			assert.Equal(t, tc.code, loc.Query().Get("error"))
			assert.Equal(t, op.Issuer(), loc.Query().Get("iss"))
			if tc.name != "repeated state" {
				assert.Equal(t, "xyz", loc.Query().Get("state"))
			}
		})
	}
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	meta := defaultMeta()
	meta["token_endpoint_auth_method"] = "none"
	meta["grant_types"] = []string{"authorization_code", "refresh_token"}
	c := register(t, op, meta)
	assert.Empty(t, c.Secret)
	res, _ := get(t, browser(t), authURL(op, c, authParams{}))
	loc, _ := res.Location()
	assert.Equal(t, "invalid_request", loc.Query().Get("error"))

	verifier, challenge := pkcePair()
	loc = loginThroughForm(t, browser(t), authURL(op, c, authParams{challenge: challenge}), "bob", "bob-password")
	res, tok := postForm(t, op.Issuer()+"/token", nil, url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect},
		"code_verifier": {verifier}, "client_id": {c.ID},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, tok)
	claims, _ := verifyIDToken(t, op, tok["id_token"].(string))
	assert.Equal(t, "bob", claims["sub"])
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	verifier, challenge := pkcePair()
	loc := loginThroughForm(t, browser(t), authURL(op, c, authParams{challenge: challenge}), "alice", "alice-password")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
	res, tok := token(t, op, c, form)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, true, introspect(t, op, c, tok["access_token"].(string))["active"])

	res, replay := token(t, op, c, form)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", replay["error"])
	assert.Equal(t, false, introspect(t, op, c, tok["access_token"].(string))["active"])
	assert.Equal(t, map[string]any{"active": false}, introspect(t, op, c, tok["refresh_token"].(string)))
	res, _ = doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", tok["access_token"].(string), nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, res.Header.Get("WWW-Authenticate"), "invalid_token")
}

// postStatus posts form to u with c's basic auth and returns the status. It
// touches no testing.TB, so any goroutine may call it.
func postStatus(u string, c *regClient, form url.Values) (int, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

func TestCodeIsSingleUseUnderConcurrency(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	verifier, challenge := pkcePair()
	loc, err := op.Login(context.Background(), authURL(op, c, authParams{challenge: challenge}), "alice", "alice-password")
	require.NoError(t, err)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
	// The goroutines only post the form and record the status; every
	// assertion runs on the test goroutine (token's require would stop the
	// wrong goroutine).
	statuses := make([]int, 8)
	errs := make([]error, len(statuses))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], errs[i] = postStatus(op.Issuer()+"/token", &c, form)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, st := range statuses {
		require.NoError(t, errs[i])
		if st == http.StatusOK {
			ok++
		}
	}
	assert.Equal(t, 1, ok)
}

func TestTokenEndpointCodeChecks(t *testing.T) {
	clk := newClock()
	op := newTestOP(t, OPConfig{Now: clk.Now})
	c := register(t, op, defaultMeta())
	other := register(t, op, defaultMeta())
	newCode := func() (string, string) {
		verifier, challenge := pkcePair()
		loc, err := op.Login(context.Background(), authURL(op, c, authParams{challenge: challenge}), "alice", "alice-password")
		require.NoError(t, err)
		return loc.Query().Get("code"), verifier
	}
	exchange := func(cl regClient, code, redirect, verifier string) (int, map[string]any) {
		res, m := token(t, op, cl, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
		return res.StatusCode, m
	}

	code, verifier := newCode()
	st, m := exchange(c, code, "http://127.0.0.1:9/other", verifier)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_grant", m["error"], "wrong redirect_uri")
	st, _ = exchange(c, code, testRedirect, verifier)
	assert.Equal(t, http.StatusOK, st, "a failed redirect_uri check does not burn the code")

	code, verifier = newCode()
	st, m = exchange(other, code, testRedirect, verifier)
	assert.Equal(t, http.StatusBadRequest, st, "code of another client")
	assert.Equal(t, "invalid_grant", m["error"], "code of another client")
	_, wrong := pkcePair()
	st, m = exchange(c, code, testRedirect, wrong)
	assert.Equal(t, http.StatusBadRequest, st, "wrong verifier")
	assert.Equal(t, "invalid_grant", m["error"], "wrong verifier")
	st, m = exchange(c, code, testRedirect, verifier)
	assert.Equal(t, http.StatusBadRequest, st, "the code is burnt after a wrong verifier")
	assert.Equal(t, "invalid_grant", m["error"], "the code is burnt after a wrong verifier")

	code, _ = newCode()
	st, m = exchange(c, code, testRedirect, "")
	assert.Equal(t, http.StatusBadRequest, st, "missing verifier")
	assert.Equal(t, "invalid_grant", m["error"], "missing verifier")

	code, verifier = newCode()
	clk.Advance(defaultCodeTTL + time.Second)
	st, m = exchange(c, code, testRedirect, verifier)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_grant", m["error"], "expired code")

	// Client authentication failures.
	bad := c
	bad.Secret = "wrong"
	res, m := token(t, op, bad, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "invalid_client", m["error"])
	assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic")
	res, m = postForm(t, op.Issuer()+"/token", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}})
	assert.Equal(t, http.StatusOK, res.StatusCode, "client_secret_post works: %v", m)
	res, m = token(t, op, c, url.Values{"grant_type": {"password"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "unsupported_grant_type", m["error"])
	res, m = token(t, op, c, url.Values{})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", m["error"])
	req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.ID, c.Secret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "JSON token requests are refused")
}

func TestRefreshTokenRotation(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	tok := codeFlow(t, op, c, "openid profile email")
	rt1 := tok["refresh_token"].(string)

	res, r2 := token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "scope": {"openid profile"}})
	require.Equal(t, http.StatusOK, res.StatusCode, r2)
	rt2 := r2["refresh_token"].(string)
	assert.NotEqual(t, rt1, rt2, "refresh tokens rotate")
	assert.Equal(t, "openid profile", r2["scope"])
	claims, _ := verifyIDToken(t, op, r2["id_token"].(string))
	assert.Equal(t, "alice", claims["sub"])
	assert.Nil(t, claims["nonce"])

	// The rotated token keeps the original scope; widening is refused.
	res, r3 := token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "scope": {"openid uma_protection"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_scope", r3["error"])
	res, r3 = token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
	require.Equal(t, http.StatusOK, res.StatusCode, r3)
	assert.Equal(t, "openid profile email", r3["scope"])
	rt3 := r3["refresh_token"].(string)

	// Reuse of a rotated token revokes the grant.
	res, reuse := token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", reuse["error"])
	res, _ = token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt3}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "the whole grant is revoked")
	assert.Equal(t, false, introspect(t, op, c, r3["access_token"].(string))["active"])

	// Another client cannot use the refresh token.
	tok = codeFlow(t, op, c, "openid")
	other := register(t, op, defaultMeta())
	res, m := token(t, op, other, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_grant", m["error"])

	// No refresh_token grant registered: no refresh token.
	meta := defaultMeta()
	meta["grant_types"] = []string{"authorization_code"}
	noRefresh := register(t, op, meta)
	tok = codeFlow(t, op, noRefresh, "openid")
	assert.Nil(t, tok["refresh_token"])
}

// TestRefreshedIDTokenKeepsSID: the ID token of every refresh names the OP
// session of the login (the sid the RP indexed its session by), with the
// login's sub and auth_time, through rotation after rotation.
func TestRefreshedIDTokenKeepsSID(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	tok := codeFlow(t, op, c, "openid profile")
	first, _ := verifyIDToken(t, op, tok["id_token"].(string))
	sid, _ := first["sid"].(string)
	require.NotEmpty(t, sid, "the login's ID token has a sid")
	rt := tok["refresh_token"].(string)
	for i := range 3 {
		res, r := token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		require.Equal(t, http.StatusOK, res.StatusCode, r)
		claims, _ := verifyIDToken(t, op, r["id_token"].(string))
		assert.Equal(t, sid, claims["sid"], "refresh %d: sid", i+1)
		assert.Equal(t, first["sub"], claims["sub"], "refresh %d: sub", i+1)
		assert.Equal(t, first["auth_time"], claims["auth_time"], "refresh %d: auth_time", i+1)
		rt = r["refresh_token"].(string)
	}
	// Another login (another OP session) has another sid, kept as well.
	other := codeFlow(t, op, c, "openid")
	oc, _ := verifyIDToken(t, op, other["id_token"].(string))
	res, r := token(t, op, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {other["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, res.StatusCode, r)
	rc, _ := verifyIDToken(t, op, r["id_token"].(string))
	assert.Equal(t, oc["sid"], rc["sid"])
}

func TestClientCredentialsScopes(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	meta := defaultMeta()
	meta["scope"] = "openid uma_protection oxd"
	c := register(t, op, meta)
	cases := []struct{ req, want string }{
		{"uma_protection", "uma_protection"},
		{"openid oxd", "openid oxd"},
		{"oxd profile email", "oxd"},
		{"", ""},
	}
	for _, tc := range cases {
		res, m := token(t, op, c, url.Values{"grant_type": {"client_credentials"}, "scope": {tc.req}})
		require.Equal(t, http.StatusOK, res.StatusCode, m)
		assert.Equal(t, tc.want, m["scope"], tc.req)
		assert.Nil(t, m["refresh_token"])
		assert.Nil(t, m["id_token"])
		in := introspect(t, op, c, m["access_token"].(string))
		assert.Equal(t, tc.want, in["scope"])
		assert.Nil(t, in["sub"])
	}
	res, m := token(t, op, c, url.Values{"grant_type": {"client_credentials"}, "scope": {"profile email"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_scope", m["error"])

	meta = defaultMeta()
	meta["grant_types"] = []string{"authorization_code"}
	noCC := register(t, op, meta)
	res, m = token(t, op, noCC, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "unauthorized_client", m["error"])
}

func TestUserinfoFiltersClaimsByScope(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	cases := []struct {
		scope       string
		has, hasNot []string
	}{
		{"openid", []string{"sub"}, []string{"name", "email", "locale", "country"}},
		{"openid profile", []string{"sub", "name", "given_name", "family_name", "locale", "preferred_username"}, []string{"email", "email_verified", "country"}},
		{"openid email", []string{"sub", "email", "email_verified"}, []string{"name", "locale"}},
	}
	for _, tc := range cases {
		tok := codeFlow(t, op, c, tc.scope)
		res, b := doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", tok["access_token"].(string), nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		ui := decode(t, b)
		for _, k := range tc.has {
			assert.Contains(t, ui, k, tc.scope)
		}
		for _, k := range tc.hasNot {
			assert.NotContains(t, ui, k, tc.scope)
		}
	}
	// A client_credentials token is not for userinfo.
	res, _ := doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", clientToken(t, op, c, "openid"), nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, _ = doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", "", nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("WWW-Authenticate"))
}

func TestEndSessionRedirectRules(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	other := register(t, op, defaultMeta())
	_, challenge := pkcePair()

	signIn := func() (*http.Client, string) {
		cl := browser(t)
		verifier, ch := pkcePair()
		loc := loginThroughForm(t, cl, authURL(op, c, authParams{challenge: ch}), "alice", "alice-password")
		res, tok := token(t, op, c, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		return cl, tok["id_token"].(string)
	}
	signedIn := func(cl *http.Client) bool {
		res, _ := get(t, cl, authURL(op, c, authParams{challenge: challenge}))
		return res.StatusCode == http.StatusFound
	}

	// Valid hint + registered URI: redirect with state, session gone.
	cl, idt := signIn()
	require.True(t, signedIn(cl))
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {testPostLogout}, "state": {"bye & co"}}
	res, _ := get(t, cl, op.Issuer()+"/end_session?"+q.Encode())
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc, _ := res.Location()
	assert.Equal(t, testPostLogout, loc.Scheme+"://"+loc.Host+loc.Path)
	assert.Equal(t, "bye & co", loc.Query().Get("state"))
	assert.False(t, signedIn(cl))

	// Unregistered URI, or one registered for another client: no redirect.
	for _, tc := range []url.Values{
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}},
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {testPostLogout}, "client_id": {other.ID}},
	} {
		cl, idt = signIn()
		tc.Set("id_token_hint", idt)
		res, page := get(t, cl, op.Issuer()+"/end_session?"+tc.Encode())
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Empty(t, res.Header.Get("Location"))
		if tc.Has("client_id") {
			// A hint for another client is not trusted: confirmation needed.
			assert.Contains(t, page, `name="xsrf"`)
			assert.True(t, signedIn(cl))
		} else {
			assert.Contains(t, page, "signed out")
			assert.False(t, signedIn(cl))
		}
	}

	// Without a hint the user confirms; client_id lets the URI be checked.
	cl, _ = signIn()
	res, page := get(t, cl, op.Issuer()+"/end_session?"+url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {testPostLogout}, "state": {"s1"}}.Encode())
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, `<button type="submit" name="logout" value="yes">Sign out</button>`)
	assert.True(t, signedIn(cl), "GET alone does not sign out")
	xsrf := field(t, reXSRF, page)
	res, _ = submit(t, browser(t), op.Issuer()+"/end_session", url.Values{"xsrf": {xsrf}, "logout": {"yes"}})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "the confirmation is bound to the browser")
	res, _ = submit(t, cl, op.Issuer()+"/end_session", url.Values{"xsrf": {xsrf}, "logout": {"yes"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, _ = res.Location()
	assert.Equal(t, "s1", loc.Query().Get("state"))
	assert.False(t, signedIn(cl))

	// A forged hint is ignored.
	res, page = get(t, browser(t), op.Issuer()+"/end_session?id_token_hint=eyJhbGciOiJub25lIn0.e30.&post_logout_redirect_uri="+url.QueryEscape(testPostLogout))
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, `name="xsrf"`)
}

func TestIntrospectionOfAccessTokens(t *testing.T) {
	clk := newClock()
	op := newTestOP(t, OPConfig{Now: clk.Now})
	c := register(t, op, defaultMeta())
	tok := codeFlow(t, op, c, "openid profile")
	at := tok["access_token"].(string)

	in := introspect(t, op, c, at)
	assert.Equal(t, true, in["active"])
	assert.Equal(t, "openid profile", in["scope"])
	assert.Equal(t, c.ID, in["client_id"])
	assert.Equal(t, "alice", in["sub"])
	assert.Equal(t, op.Issuer(), in["iss"])
	assert.Equal(t, "Bearer", in["token_type"])
	assert.NotZero(t, in["exp"])
	assert.NotZero(t, in["iat"])

	// Bearer PAT authentication; any client's PAT may introspect.
	other := register(t, op, defaultMeta())
	pat := clientToken(t, op, other, "uma_protection")
	req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/introspect", strings.NewReader(url.Values{"token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+pat)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var viaPAT map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&viaPAT))
	res.Body.Close()
	assert.Equal(t, true, viaPAT["active"])

	// A token without uma_protection/oxd is not a PAT.
	req, _ = http.NewRequest(http.MethodPost, op.Issuer()+"/introspect", strings.NewReader(url.Values{"token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+at)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, m := postForm(t, op.Issuer()+"/introspect", nil, url.Values{"token": {at}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "invalid_client", m["error"])

	assert.Equal(t, map[string]any{"active": false}, introspect(t, op, c, "unknown-token"))
	// Refresh tokens are only visible to their own client.
	assert.Equal(t, false, introspect(t, op, other, tok["refresh_token"].(string))["active"])
	assert.Equal(t, "refresh_token", introspect(t, op, c, tok["refresh_token"].(string))["token_type"])

	// Revocation, then expiry.
	res, _ = postForm(t, op.Issuer()+"/revoke", &c, url.Values{"token": {at}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, false, introspect(t, op, c, at)["active"])
	at2 := clientToken(t, op, c, "oxd")
	res, _ = postForm(t, op.Issuer()+"/revoke", &other, url.Values{"token": {at2}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, true, introspect(t, op, c, at2)["active"], "a client cannot revoke another's token")
	clk.Advance(defaultAccessTokenTTL + time.Second)
	assert.Equal(t, false, introspect(t, op, c, at2)["active"])
}

func TestKeyRotationKeepsOldKeyForOneRotation(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	tok := codeFlow(t, op, c, "openid")
	_, kid1 := verifyIDToken(t, op, tok["id_token"].(string))

	op.RotateKeys()
	_, kidAgain := verifyIDToken(t, op, tok["id_token"].(string)) // still verifies
	assert.Equal(t, kid1, kidAgain)
	tok2 := codeFlow(t, op, c, "openid")
	_, kid2 := verifyIDToken(t, op, tok2["id_token"].(string))
	assert.NotEqual(t, kid1, kid2, "new tokens use the new key")

	// The old ID token still works as an id_token_hint during the grace period.
	res, _ := get(t, browser(t), op.Issuer()+"/end_session?"+url.Values{"id_token_hint": {tok["id_token"].(string)}, "post_logout_redirect_uri": {testPostLogout}}.Encode())
	assert.Equal(t, http.StatusFound, res.StatusCode)

	op.RotateKeys()
	res, b := doJSON(t, http.MethodGet, op.Issuer()+"/jwks", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(b, &set))
	assert.Len(t, set.Keys, 2)
	assert.Empty(t, set.Key(kid1), "the key before last is dropped")
	assert.Len(t, set.Key(kid2), 1)
}

func TestFaultInjectionAndCallCounters(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	disco := op.Issuer() + "/.well-known/openid-configuration"
	before := op.Calls(EndpointDiscovery)
	doJSON(t, http.MethodGet, disco, "", nil)
	assert.Equal(t, before+1, op.Calls(EndpointDiscovery))

	op.SetFault(EndpointDiscovery, FaultGarbage)
	res, b := doJSON(t, http.MethodGet, disco, "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.False(t, json.Valid(b))

	op.SetFault(EndpointDiscovery, FaultHTTP500)
	res, b = doJSON(t, http.MethodGet, disco, "", nil)
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Equal(t, "server_error", decode(t, b)["error"])

	op.SetFault(EndpointDiscovery, FaultSlow)
	cl := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := cl.Get(disco)
	assert.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)

	op.SetFault(EndpointDiscovery, FaultNone)
	res, _ = doJSON(t, http.MethodGet, disco, "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, before+5, op.Calls(EndpointDiscovery))

	// Unknown key: the ID token's kid is not in the JWKS.
	c := register(t, op, defaultMeta())
	op.SetFault(EndpointToken, FaultUnknownKey)
	tok := codeFlow(t, op, c, "openid")
	op.SetFault(EndpointToken, FaultNone)
	res, b = doJSON(t, http.MethodGet, op.Issuer()+"/jwks", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(b, &set))
	parts := strings.Split(tok["id_token"].(string), ".")
	require.Len(t, parts, 3)
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(hdr, &h))
	assert.NotEmpty(t, h["kid"])
	assert.Empty(t, set.Key(h["kid"].(string)))
}

func TestSlowFaultReleasedByClose(t *testing.T) {
	op, err := StartOP(OPConfig{})
	require.NoError(t, err)
	op.SetFault(EndpointJWKS, FaultSlow)
	done := make(chan error, 1)
	go func() {
		res, err := http.Get(op.Issuer() + "/jwks")
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	for op.Calls(EndpointJWKS) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	op.Close()
	op.Close() // idempotent
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the slow request")
	}
}

// TestIssuerWithPathOverTLS serves the OP at https://host/op, as the demo
// does, and runs a login through it.
func TestIssuerWithPathOverTLS(t *testing.T) {
	var op *OP
	mux := http.NewServeMux()
	mux.Handle("/op/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.ServeHTTP(w, r) }))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	var err error
	op, err = NewOP(srv.URL+"/op/", OPConfig{})
	require.NoError(t, err)
	defer op.Close()
	assert.Equal(t, srv.URL+"/op", op.Issuer())

	hc := srv.Client()
	res, err := hc.Get(op.Issuer() + "/.well-known/openid-configuration")
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&d))
	res.Body.Close()
	assert.Equal(t, srv.URL+"/op/token", d["token_endpoint"])

	b, _ := json.Marshal(defaultMeta())
	res, err = hc.Post(op.Issuer()+"/register", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	var reg map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&reg))
	res.Body.Close()
	c := regClient{ID: reg["client_id"].(string), Secret: reg["client_secret"].(string), RedirectURI: testRedirect}

	cl := browser(t)
	cl.Transport = hc.Transport
	_, challenge := pkcePair()
	res, page := get(t, cl, authURL(op, c, authParams{challenge: challenge}))
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, ck := range res.Cookies() {
		assert.True(t, ck.Secure, "https issuer: Secure cookies")
		assert.Equal(t, "/op", ck.Path)
	}
	assert.Contains(t, page, `action="`+srv.URL+`/op/login"`)
	loc := loginThroughForm(t, cl, authURL(op, c, authParams{challenge: challenge}), "bob", "bob-password")
	assert.NotEmpty(t, loc.Query().Get("code"))
	res, err = cl.Get(authURL(op, c, authParams{challenge: challenge}))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusFound, res.StatusCode, "session cookie is sent back under /op")
}

func TestLoginHelper(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	_, challenge := pkcePair()
	loc, err := op.Login(context.Background(), authURL(op, c, authParams{state: "st", challenge: challenge}), "bob", "bob-password")
	require.NoError(t, err)
	assert.NotEmpty(t, loc.Query().Get("code"))
	assert.Equal(t, "st", loc.Query().Get("state"))
	_, err = op.Login(context.Background(), authURL(op, c, authParams{challenge: challenge}), "bob", "nope")
	assert.ErrorIs(t, err, ErrLoginFailed)
	_, err = op.Login(context.Background(), "https://elsewhere.example/authorize", "bob", "bob-password")
	assert.Error(t, err)
	// An authorization error comes back as the redirect it is.
	loc, err = op.Login(context.Background(), authURL(op, c, authParams{state: "e", prompt: "none"}), "bob", "bob-password")
	require.NoError(t, err)
	assert.Equal(t, "login_required", loc.Query().Get("error"))
}

func TestSecretsNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	op := newTestOP(t, OPConfig{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := register(t, op, defaultMeta())
	tok := codeFlow(t, op, c, "openid profile")
	pat := clientToken(t, op, c, "uma_protection")
	require.NotEmpty(t, logs.String())
	for _, secret := range []string{c.Secret, c.RegToken, tok["access_token"].(string), tok["refresh_token"].(string), tok["id_token"].(string), pat, "alice-password"} {
		assert.NotContains(t, logs.String(), secret)
	}
}

// TestBadInputNeverFails sends malformed requests to every endpoint: each
// answers with a 2xx–4xx status (a panic would drop the connection).
func TestBadInputNeverFails(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	c := register(t, op, defaultMeta())
	pat := clientToken(t, op, c, "uma_protection")
	paths := []string{
		"/.well-known/openid-configuration", "/.well-known/uma2-configuration", "/jwks", "/register",
		"/register/" + c.ID, "/register/x/y", "/authorize", "/login", "/token", "/userinfo", "/end_session",
		"/introspect", "/revoke", "/uma/resource_set", "/uma/resource_set/x", "/uma/permission", "/uma/claims_gathering",
	}
	bodies := []struct{ ctype, body string }{
		{"", ""},
		{"application/json", "{"},
		{"application/json", "null"},
		{"application/json", "[]"},
		{"application/json", `[null, 1, "x", {"resource_id": 5}]`},
		{"application/json", `{"resource_scopes": [1, 2], "redirect_uris": {"a": 1}, "scope": 5, "scope_expression": null}`},
		{"application/x-www-form-urlencoded", "%zz&&=&grant_type=" + url.QueryEscape(GrantTypeUMATicket) + "&ticket=x&claim_token=a.b.c&claim_token_format=x"},
		{"application/x-www-form-urlencoded", "grant_type=authorization_code&code=x&code=y"},
		{"application/x-www-form-urlencoded", "interaction=x&xsrf=y&oxdtest_interaction=z"},
		{"application/x-www-form-urlencoded", strings.Repeat("a=b&", maxBodyBytes/4+10)},
		{"text/plain", "\x00\xff\xfe"},
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			for _, b := range bodies {
				for _, auth := range []string{"", "Bearer " + pat, "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":x"))} {
					req, err := http.NewRequest(m, op.Issuer()+p+"?client_id="+c.ID+"&redirect_uri=%zz&ticket=", strings.NewReader(b.body))
					require.NoError(t, err)
					if b.ctype != "" {
						req.Header.Set("Content-Type", b.ctype)
					}
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					res, err := http.DefaultClient.Do(req)
					require.NoError(t, err, "%s %s", m, p)
					res.Body.Close()
					assert.Less(t, res.StatusCode, 500, "%s %s %q", m, p, b.body)
				}
			}
		}
	}
}
