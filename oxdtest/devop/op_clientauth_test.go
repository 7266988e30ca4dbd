package devop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
)

// The client side of these tests is internal/clientauth; the OP's
// verification is its own code (op_clientauth.go), so each checks the other.

const longSecret = "static-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKL" // 64 bytes

func publicJWKS(t testing.TB, ks *clientauth.KeySet) []byte {
	t.Helper()
	b, err := ks.PublicJWKS(time.Now())
	require.NoError(t, err)
	return b
}

// authForm posts form to the OP endpoint path authenticated with creds.
func authForm(t testing.TB, op *OP, path string, creds clientauth.Credentials, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	h := http.Header{}
	require.NoError(t, clientauth.Apply(h, form, op.Issuer()+path, creds))
	return rawPost(t, op.Issuer()+path, h, form)
}

func rawPost(t testing.TB, u string, h http.Header, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if len(strings.TrimSpace(string(b))) == 0 {
		return res, nil
	}
	return res, decode(t, b)
}

// staticMatrix is one static client per method, and how to authenticate
// as it.
type staticMatrix struct {
	op    *OP
	creds map[string]clientauth.Credentials
	keys  *clientauth.KeySet
	jwks  *httptest.Server
}

func newStaticMatrix(t *testing.T, cfg OPConfig) *staticMatrix {
	t.Helper()
	ksInline, err := clientauth.GenerateKeySet("ES256", time.Now())
	require.NoError(t, err)
	ksURI, err := clientauth.GenerateKeySet("RS256", time.Now())
	require.NoError(t, err)
	var served atomic.Pointer[clientauth.KeySet]
	served.Store(ksURI)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := served.Load().PublicJWKS(time.Now())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(jwksSrv.Close)
	grants := []string{"authorization_code", "refresh_token", "client_credentials"}
	scope := "openid profile email offline_access uma_protection oxd"
	cfg.Clients = []StaticClient{
		{ClientID: "c-basic", ClientSecret: "basic secret:with/odd+chars", TokenEndpointAuthMethod: "client_secret_basic", RedirectURIs: []string{testRedirect}, GrantTypes: grants, Scope: scope},
		{ClientID: "c-post", ClientSecret: "post-secret", TokenEndpointAuthMethod: "client_secret_post", RedirectURIs: []string{testRedirect}, GrantTypes: grants, Scope: scope},
		{ClientID: "c-secret-jwt", ClientSecret: longSecret, TokenEndpointAuthMethod: "client_secret_jwt", RedirectURIs: []string{testRedirect}, GrantTypes: grants, Scope: scope},
		{ClientID: "c-pkjwt", TokenEndpointAuthMethod: "private_key_jwt", JWKS: publicJWKS(t, ksInline), RedirectURIs: []string{testRedirect}, GrantTypes: grants, Scope: scope},
		{ClientID: "c-pkjwt-uri", TokenEndpointAuthMethod: "private_key_jwt", TokenEndpointAuthSigningAlg: "RS256", JWKSURI: jwksSrv.URL + "/jwks", RedirectURIs: []string{testRedirect}, GrantTypes: grants, Scope: scope},
		{ClientID: "c-public", TokenEndpointAuthMethod: "none", RedirectURIs: []string{testRedirect}, PostLogoutRedirectURIs: []string{testPostLogout}, GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile"},
	}
	op := newTestOP(t, cfg)
	te := op.Issuer() + pathToken
	m := &staticMatrix{op: op, keys: ksURI, jwks: jwksSrv, creds: map[string]clientauth.Credentials{
		"client_secret_basic":      {ClientID: "c-basic", Method: clientauth.MethodSecretBasic, Secret: "basic secret:with/odd+chars"},
		"client_secret_post":       {ClientID: "c-post", Method: clientauth.MethodSecretPost, Secret: "post-secret"},
		"client_secret_jwt":        {ClientID: "c-secret-jwt", Method: clientauth.MethodSecretJWT, Secret: longSecret, TokenEndpoint: te},
		"private_key_jwt":          {ClientID: "c-pkjwt", Method: clientauth.MethodPrivateKeyJWT, Keys: ksInline, TokenEndpoint: te},
		"private_key_jwt jwks_uri": {ClientID: "c-pkjwt-uri", Method: clientauth.MethodPrivateKeyJWT, Keys: ksURI, TokenEndpoint: te},
		"none":                     {ClientID: "c-public", Method: clientauth.MethodNone, PKCE: true},
	}}
	return m
}

// codeFlowAs logs alice in for the client and exchanges the code with creds.
func codeFlowAs(t *testing.T, op *OP, creds clientauth.Credentials) map[string]any {
	t.Helper()
	verifier, challenge := pkcePair()
	c := regClient{ID: creds.ClientID, RedirectURI: testRedirect}
	loc := loginThroughForm(t, browser(t), authURL(op, c, authParams{scope: "openid profile", state: "s", nonce: "n", challenge: challenge}), "alice", "alice-password")
	code := loc.Query().Get("code")
	require.NotEmpty(t, code, loc.String())
	res, tok := authForm(t, op, pathToken, creds, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, tok)
	return tok
}

// TestStaticClientsEveryMethod: with registration disabled, one static
// client per method runs the code flow, refresh, client_credentials,
// introspection and revocation, each authenticated with its method.
func TestStaticClientsEveryMethod(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{DisableRegistration: true})
	op := m.op
	for name, creds := range m.creds {
		t.Run(name, func(t *testing.T) {
			tok := codeFlowAs(t, op, creds)
			at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
			require.NotEmpty(t, rt)
			res, _ := doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", at, nil)
			assert.Equal(t, http.StatusOK, res.StatusCode)

			res, ref := authForm(t, op, pathToken, creds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			require.Equal(t, http.StatusOK, res.StatusCode, ref)
			at, rt = ref["access_token"].(string), ref["refresh_token"].(string)

			if creds.Method == clientauth.MethodNone {
				res, cc := authForm(t, op, pathToken, creds, url.Values{"grant_type": {"client_credentials"}})
				assert.Equal(t, http.StatusBadRequest, res.StatusCode, cc)
				res, in := authForm(t, op, pathIntrospection, creds, url.Values{"token": {at}})
				assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "public clients may not introspect: %v", in)
			} else {
				res, cc := authForm(t, op, pathToken, creds, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}})
				require.Equal(t, http.StatusOK, res.StatusCode, cc)
				assert.Equal(t, "uma_protection", cc["scope"])
				res, in := authForm(t, op, pathIntrospection, creds, url.Values{"token": {at}})
				require.Equal(t, http.StatusOK, res.StatusCode, in)
				assert.Equal(t, true, in["active"])
				assert.Equal(t, creds.ClientID, in["client_id"])
			}
			// Revoke the refresh token: the grant's tokens die with it.
			res, _ = authForm(t, op, pathRevocation, creds, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}})
			require.Equal(t, http.StatusOK, res.StatusCode)
			res, ref = authForm(t, op, pathToken, creds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			assert.Equal(t, http.StatusBadRequest, res.StatusCode)
			assert.Equal(t, "invalid_grant", ref["error"])
			res, _ = doJSON(t, http.MethodGet, op.Issuer()+"/userinfo", at, nil)
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		})
	}
}

// TestRevokedAccessTokenFailsIntrospectionAndUserinfo: RFC 7009 revocation
// of an access token alone.
func TestRevokedAccessTokenFailsIntrospectionAndUserinfo(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{})
	creds := m.creds["client_secret_basic"]
	tok := codeFlowAs(t, m.op, creds)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	res, _ := authForm(t, m.op, pathRevocation, creds, url.Values{"token": {at}, "token_type_hint": {"access_token"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	_, in := authForm(t, m.op, pathIntrospection, creds, url.Values{"token": {at}})
	assert.Equal(t, map[string]any{"active": false}, in)
	res, _ = doJSON(t, http.MethodGet, m.op.Issuer()+"/userinfo", at, nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	// The refresh token lives on (only the access token was revoked).
	res, ref := authForm(t, m.op, pathToken, creds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	assert.Equal(t, http.StatusOK, res.StatusCode, ref)
	// Unknown tokens answer 200 too (RFC 7009 §2.2).
	res, _ = authForm(t, m.op, pathRevocation, creds, url.Values{"token": {"no-such-token"}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	// Revocation needs client authentication.
	res, body := rawPost(t, m.op.Issuer()+pathRevocation, http.Header{}, url.Values{"token": {rt}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
}

// signWith signs claims as a compact JWS with key and kid.
func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	var sk jose.SigningKey
	if kid != "" {
		sk = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}}
	} else {
		sk = jose.SigningKey{Algorithm: alg, Key: key}
	}
	s, err := jose.NewSigner(sk, opts)
	require.NoError(t, err)
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	require.NoError(t, err)
	return out
}

func assertionForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {clientauth.AssertionType}, "client_assertion": {a}}
}

func goodClaims(op *OP, clientID string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": op.Issuer() + pathToken,
		"jti": randomValue(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

// TestForgedClientAssertionRefused: an assertion signed with a key the
// client did not register is refused with invalid_client and a
// description that says why, whether it names an unknown kid or copies
// the registered one.
func TestForgedClientAssertionRefused(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{DisableRegistration: true})
	op := m.op
	registered := m.creds["private_key_jwt"]
	kid, _ := registered.Keys.SigningKID(time.Now())
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		kid  string
		want string
	}{
		"registered kid, wrong key": {kid, "signature does not verify with the client's registered keys"},
		"unknown kid":               {"attacker-key", `no ES256 key with kid "attacker-key"`},
		"no kid":                    {"", "signature does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			a := signWith(t, jose.ES256, attacker, tc.kid, goodClaims(op, "c-pkjwt"))
			res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
			assert.Equal(t, "invalid_client", body["error"])
			assert.Contains(t, body["error_description"], tc.want)
		})
	}
	// client_secret_jwt with a wrong secret.
	a := signWith(t, jose.HS256, []byte(strings.Repeat("x", 64)), "", goodClaims(op, "c-secret-jwt"))
	res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body["error_description"], "does not verify with the client secret")

	// The same forgery through clientauth: a key set the OP does not know.
	other, err := clientauth.GenerateKeySet("ES256", time.Now())
	require.NoError(t, err)
	forged := registered
	forged.Keys = other
	res, body = authForm(t, op, pathToken, forged, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body["error_description"], "registered keys")
}

// TestClientAssertionReplayRefused: a jti is single use, also across
// endpoints, and also after the assertion expired.
func TestClientAssertionReplayRefused(t *testing.T) {
	clk := newClock()
	m := newStaticMatrix(t, OPConfig{Now: clk.Now})
	op := m.op
	for _, name := range []string{"client_secret_jwt", "private_key_jwt"} {
		creds := m.creds[name]
		a, err := creds.Assertion(op.Issuer() + pathToken)
		require.NoError(t, err)
		res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		res, body = rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Contains(t, body["error_description"], "jti was already used")
		f := assertionForm(a)
		f.Del("grant_type")
		f.Set("token", "x")
		res, body = rawPost(t, op.Issuer()+pathIntrospection, http.Header{}, f)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "replay at another endpoint: %v", body)
	}
	// Expired: refused as expired (the sweep may have dropped the jti).
	creds := m.creds["client_secret_jwt"]
	a, err := creds.Assertion(op.Issuer() + pathToken)
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)
	res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body["error_description"], "expired")
}

// TestClientAssertionClaimChecks: every RFC 7523 §3 check has its own
// refusal.
func TestClientAssertionClaimChecks(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{})
	op := m.op
	key := []byte(longSecret)
	patch := func(f func(map[string]any)) map[string]any {
		c := goodClaims(op, "c-secret-jwt")
		f(c)
		return c
	}
	cases := map[string]struct {
		claims map[string]any
		alg    jose.SignatureAlgorithm
		want   string
	}{
		"wrong aud":      {patch(func(c map[string]any) { c["aud"] = "https://elsewhere.example/token" }), jose.HS256, "aud must be the token endpoint"},
		"iss not client": {patch(func(c map[string]any) { c["iss"] = "someone" }), jose.HS256, "iss and sub"},
		"no exp":         {patch(func(c map[string]any) { delete(c, "exp") }), jose.HS256, "no exp"},
		"expired":        {patch(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() }), jose.HS256, "expired"},
		"no jti":         {patch(func(c map[string]any) { delete(c, "jti") }), jose.HS256, "no jti"},
		"future iat":     {patch(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), jose.HS256, "future"},
		"nbf ahead":      {patch(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), jose.HS256, "nbf"},
		"no sub":         {patch(func(c map[string]any) { delete(c, "sub") }), jose.HS256, "no sub"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := signWith(t, tc.alg, key, "", tc.claims)
			res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
			assert.Contains(t, body["error_description"], tc.want)
		})
	}
	// Issuer and the called endpoint are accepted audiences too.
	for _, aud := range []string{op.Issuer(), op.Issuer() + pathToken} {
		a := signWith(t, jose.HS256, key, "", patch(func(c map[string]any) { c["aud"] = []string{"x", aud} }))
		res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
		assert.Equal(t, http.StatusOK, res.StatusCode, "aud %s: %v", aud, body)
	}
	// Wrong assertion type, client_id mismatch, two methods at once.
	a := signWith(t, jose.HS256, key, "", goodClaims(op, "c-secret-jwt"))
	f := assertionForm(a)
	f.Set("client_assertion_type", "urn:other")
	res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, f)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
	f = assertionForm(a)
	f.Set("client_id", "c-basic")
	res, _ = rawPost(t, op.Issuer()+pathToken, http.Header{}, f)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	h := http.Header{"Authorization": {clientauth.BasicAuthorization("c-secret-jwt", longSecret)}}
	res, _ = rawPost(t, op.Issuer()+pathToken, h, assertionForm(a))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	// "none" and garbage are not JWS.
	for _, junk := range []string{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJjLXNlY3JldC1qd3QifQ.", "not-a-jwt", strings.Repeat("a.", 3)} {
		res, body = rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(junk))
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
	}
}

// TestAlgorithmConfusionRefused: a private_key_jwt client's public key
// used as an HMAC secret, or an algorithm other than the registered one,
// is refused.
func TestAlgorithmConfusionRefused(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{})
	op := m.op
	// c-pkjwt-uri registered RS256 only; its JWKS is public.
	jwks := publicJWKS(t, m.keys)
	a := signWith(t, jose.HS256, jwks, "", goodClaims(op, "c-pkjwt-uri"))
	res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body["error_description"], "RS256")
	// c-pkjwt (no registered alg) refuses HMAC too.
	a = signWith(t, jose.HS256, []byte(strings.Repeat("k", 64)), "", goodClaims(op, "c-pkjwt"))
	res, body = rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body["error_description"], "not HS256")
}

// TestRegisteredMethodIsEnforced: JWT and public clients use exactly
// their method; basic/post clients either, unless StrictClientAuthMethod.
func TestRegisteredMethodIsEnforced(t *testing.T) {
	for _, strict := range []bool{false, true} {
		m := newStaticMatrix(t, OPConfig{StrictClientAuthMethod: strict})
		op := m.op
		cc := url.Values{"grant_type": {"client_credentials"}}
		// client_secret_jwt client presenting its secret directly.
		for _, method := range []clientauth.Method{clientauth.MethodSecretBasic, clientauth.MethodSecretPost} {
			c := m.creds["client_secret_jwt"]
			c.Method = method
			res, body := authForm(t, op, pathToken, c, url.Values{"grant_type": {"client_credentials"}})
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
			assert.Contains(t, body["error_description"], "registered with token_endpoint_auth_method client_secret_jwt")
		}
		// basic client with an HMAC assertion over its secret.
		c := m.creds["client_secret_basic"]
		a := signWith(t, jose.HS256, []byte(strings.Repeat(c.Secret, 3)), "", goodClaims(op, "c-basic"))
		res, body := rawPost(t, op.Issuer()+pathToken, http.Header{}, assertionForm(a))
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Contains(t, body["error_description"], "not a client assertion")
		// confidential client sending only client_id.
		res, body = rawPost(t, op.Issuer()+pathToken, http.Header{}, url.Values{"grant_type": {"client_credentials"}, "client_id": {"c-pkjwt"}})
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Contains(t, body["error_description"], "confidential")
		// basic client using post.
		c.Method = clientauth.MethodSecretPost
		res, body = authForm(t, op, pathToken, c, cc)
		if strict {
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
		} else {
			assert.Equal(t, http.StatusOK, res.StatusCode, body)
		}
	}
}

// TestPrivateKeyJWTRotationThroughJWKSURI: the OP reads the client's
// jwks_uri at each authentication, so a key published before it signs
// (clientauth.KeySet.Rotate with a lead) takes over without a failure.
func TestPrivateKeyJWTRotationThroughJWKSURI(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{})
	creds := m.creds["private_key_jwt jwks_uri"]
	ks := creds.Keys
	now := time.Now()
	newKID, err := ks.Rotate("RS256", now, 2*time.Second)
	require.NoError(t, err)
	cc := func(at time.Time) (int, string) {
		c := creds
		c.Now = func() time.Time { return at }
		res, body := authForm(t, m.op, pathToken, c, url.Values{"grant_type": {"client_credentials"}})
		d, _ := body["error_description"].(string)
		return res.StatusCode, d
	}
	kidAt := func(at time.Time) string { k, _ := ks.SigningKID(at); return k }
	require.NotEqual(t, newKID, kidAt(now))
	st, d := cc(now)
	assert.Equal(t, http.StatusOK, st, d)
	later := now.Add(2 * time.Second)
	require.Equal(t, newKID, kidAt(later))
	st, d = cc(later)
	assert.Equal(t, http.StatusOK, st, "new key after rotation: %s", d)
	// A key that was never published is refused.
	unpublished, err := clientauth.GenerateKeySet("RS256", now)
	require.NoError(t, err)
	c := creds
	c.Keys = unpublished
	res, body := authForm(t, m.op, pathToken, c, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
}

// TestStaticClientValidation: NewOP refuses unusable static clients and
// says which field is wrong.
func TestStaticClientValidation(t *testing.T) {
	ks, err := clientauth.GenerateKeySet("ES256", time.Now())
	require.NoError(t, err)
	stored, err := json.Marshal(ks)
	require.NoError(t, err)
	var privJWKS struct {
		Keys []struct {
			JWK json.RawMessage `json:"jwk"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(stored, &privJWKS))
	private := []byte(`{"keys":[` + string(privJWKS.Keys[0].JWK) + `]}`)
	cases := map[string]struct {
		c    []StaticClient
		want string
	}{
		"no id":                     {[]StaticClient{{ClientSecret: "x"}}, "ClientID is required"},
		"basic without secret":      {[]StaticClient{{ClientID: "a"}}, "needs a ClientSecret"},
		"none with secret":          {[]StaticClient{{ClientID: "a", ClientSecret: "x", TokenEndpointAuthMethod: "none", RedirectURIs: []string{testRedirect}}}, "has no ClientSecret"},
		"pkjwt with secret":         {[]StaticClient{{ClientID: "a", ClientSecret: "x", TokenEndpointAuthMethod: "private_key_jwt", JWKS: publicJWKS(t, ks)}}, "has no ClientSecret"},
		"pkjwt without keys":        {[]StaticClient{{ClientID: "a", TokenEndpointAuthMethod: "private_key_jwt"}}, "exactly one of jwks and jwks_uri"},
		"pkjwt private jwks":        {[]StaticClient{{ClientID: "a", TokenEndpointAuthMethod: "private_key_jwt", JWKS: private}}, "private keys"},
		"pkjwt HS256":               {[]StaticClient{{ClientID: "a", TokenEndpointAuthMethod: "private_key_jwt", JWKS: publicJWKS(t, ks), TokenEndpointAuthSigningAlg: "HS256"}}, "RS256, PS256, ES256"},
		"short jwt secret":          {[]StaticClient{{ClientID: "a", ClientSecret: "short", TokenEndpointAuthMethod: "client_secret_jwt"}}, "at least 32 bytes"},
		"unknown method":            {[]StaticClient{{ClientID: "a", ClientSecret: "x", TokenEndpointAuthMethod: "tls_client_auth"}}, "unsupported token_endpoint_auth_method"},
		"duplicate":                 {[]StaticClient{{ClientID: "a", ClientSecret: "x"}, {ClientID: "a", ClientSecret: "y"}}, "duplicate ClientID"},
		"bad redirect":              {[]StaticClient{{ClientID: "a", ClientSecret: "x", RedirectURIs: []string{"/cb"}}}, "redirect URIs"},
		"method not offered":        {[]StaticClient{{ClientID: "a", ClientSecret: longSecret, TokenEndpointAuthMethod: "client_secret_jwt"}}, "not offered"},
		"public client_credentials": {[]StaticClient{{ClientID: "a", TokenEndpointAuthMethod: "none", GrantTypes: []string{"client_credentials"}}}, "public clients cannot"},
	}
	for name, tc := range cases {
		for i := range tc.c {
			if tc.c[i].RedirectURIs == nil {
				tc.c[i].RedirectURIs = []string{testRedirect}
			}
		}
		cfg := OPConfig{Clients: tc.c}
		if name == "method not offered" {
			cfg.ClientAuthMethods = []string{"client_secret_basic"}
		}
		_, err := NewOP("http://127.0.0.1:1", cfg)
		if assert.Error(t, err, name) {
			assert.True(t, errors.Is(err, ErrInvalidClient), "%s: %v", name, err)
			assert.Contains(t, err.Error(), tc.want, name)
			if tc.c[0].ClientSecret != "" && len(tc.c[0].ClientSecret) > 4 {
				assert.NotContains(t, err.Error(), tc.c[0].ClientSecret, name)
			}
		}
	}
	_, err = NewOP("http://127.0.0.1:1", OPConfig{ClientAuthMethods: []string{"mtls"}})
	assert.ErrorContains(t, err, "unknown method")
}

// TestDisabledEndpoints: without registration, end_session or revocation
// the discovery document does not list them and they answer 404; static
// clients keep working.
func TestDisabledEndpoints(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{DisableRegistration: true, DisableEndSession: true, DisableRevocation: true})
	op := m.op
	res, b := doJSON(t, http.MethodGet, op.Issuer()+pathDiscovery, "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	d := decode(t, b)
	for _, k := range []string{"registration_endpoint", "end_session_endpoint", "revocation_endpoint"} {
		assert.NotContains(t, d, k)
	}
	res, b = doJSON(t, http.MethodGet, op.Issuer()+pathUMADiscovery, "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotContains(t, decode(t, b), "registration_endpoint")
	res, _ = doJSON(t, http.MethodPost, op.Issuer()+pathRegistration, "", defaultMeta())
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = doJSON(t, http.MethodGet, op.Issuer()+pathEndSession, "", nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = authForm(t, op, pathRevocation, m.creds["client_secret_basic"], url.Values{"token": {"x"}})
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	// Static clients cannot be managed through RFC 7592 either.
	op2 := newTestOP(t, OPConfig{Clients: []StaticClient{{ClientID: "s", ClientSecret: "x", RedirectURIs: []string{testRedirect}}}})
	res, _ = doJSON(t, http.MethodGet, op2.Issuer()+pathRegistration+"/s", "anything", nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	codeFlowAs(t, op, m.creds["private_key_jwt"])
}

// TestDiscoveryListsClientAuth: every method and assertion algorithm is
// listed, and ClientAuthMethods narrows the list and registration.
func TestDiscoveryListsClientAuth(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	_, b := doJSON(t, http.MethodGet, op.Issuer()+pathDiscovery, "", nil)
	d := decode(t, b)
	assert.ElementsMatch(t, []any{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}, d["token_endpoint_auth_methods_supported"])
	assert.ElementsMatch(t, []any{"HS256", "HS384", "HS512", "RS256", "PS256", "ES256"}, d["token_endpoint_auth_signing_alg_values_supported"])
	assert.NotContains(t, d["introspection_endpoint_auth_methods_supported"], "none")
	m, err := clientauth.ChooseMethod(toStrings(d["token_endpoint_auth_methods_supported"]))
	require.NoError(t, err)
	assert.Equal(t, clientauth.MethodPrivateKeyJWT, m)

	op = newTestOP(t, OPConfig{ClientAuthMethods: []string{"client_secret_post"}})
	_, b = doJSON(t, http.MethodGet, op.Issuer()+pathDiscovery, "", nil)
	d = decode(t, b)
	assert.Equal(t, []any{"client_secret_post"}, d["token_endpoint_auth_methods_supported"])
	meta := defaultMeta()
	res, b := doJSON(t, http.MethodPost, op.Issuer()+pathRegistration, "", meta)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "the default client_secret_basic is not offered: %s", b)
	meta["token_endpoint_auth_method"] = "client_secret_post"
	register(t, op, meta)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestDynamicRegistrationOfJWTClients: private_key_jwt clients register
// keys and get no secret; client_secret_jwt clients get a 512-bit secret.
func TestDynamicRegistrationOfJWTClients(t *testing.T) {
	op := newTestOP(t, OPConfig{})
	ks, err := clientauth.GenerateKeySet("PS256", time.Now())
	require.NoError(t, err)
	meta := defaultMeta()
	meta["token_endpoint_auth_method"] = "private_key_jwt"
	meta["token_endpoint_auth_signing_alg"] = "PS256"
	meta["jwks"] = json.RawMessage(publicJWKS(t, ks))
	pk := register(t, op, meta)
	assert.Empty(t, pk.Secret)
	assert.Equal(t, "private_key_jwt", pk.Raw["token_endpoint_auth_method"])
	assert.Equal(t, "PS256", pk.Raw["token_endpoint_auth_signing_alg"])
	assert.NotNil(t, pk.Raw["jwks"])
	te := op.Issuer() + pathToken
	res, body := authForm(t, op, pathToken, clientauth.Credentials{ClientID: pk.ID, Method: clientauth.MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: te},
		url.Values{"grant_type": {"client_credentials"}, "scope": {"oxd"}})
	assert.Equal(t, http.StatusOK, res.StatusCode, body)

	meta = defaultMeta()
	meta["token_endpoint_auth_method"] = "client_secret_jwt"
	sj := register(t, op, meta)
	assert.GreaterOrEqual(t, len(sj.Secret), 64)
	for _, alg := range []string{"HS256", "HS512"} {
		res, body = authForm(t, op, pathToken, clientauth.Credentials{ClientID: sj.ID, Method: clientauth.MethodSecretJWT, Secret: sj.Secret, SigningAlg: alg, TokenEndpoint: te},
			url.Values{"grant_type": {"client_credentials"}})
		assert.Equal(t, http.StatusOK, res.StatusCode, body)
	}
	// Both jwks and jwks_uri, or a jwks_uri that is not a URL: refused.
	for _, patch := range []map[string]any{
		{"jwks_uri": "https://rp.example/jwks"},
		{"jwks": nil, "jwks_uri": "not a url"},
		{"jwks": map[string]any{"keys": []any{}}},
	} {
		meta = defaultMeta()
		meta["token_endpoint_auth_method"] = "private_key_jwt"
		meta["jwks"] = json.RawMessage(publicJWKS(t, ks))
		for k, v := range patch {
			if v == nil {
				delete(meta, k)
			} else {
				meta[k] = v
			}
		}
		res, b := doJSON(t, http.MethodPost, op.Issuer()+pathRegistration, "", meta)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%v: %s", patch, b)
	}
	// Switching a private_key_jwt client to client_secret_basic issues a secret.
	upd := defaultMeta()
	upd["token_endpoint_auth_method"] = "client_secret_basic"
	res, b := doJSON(t, http.MethodPut, pk.RegURI, pk.RegToken, upd)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	secret, _ := decode(t, b)["client_secret"].(string)
	require.NotEmpty(t, secret)
	res, body = authForm(t, op, pathToken, clientauth.Credentials{ClientID: pk.ID, Secret: secret}, url.Values{"grant_type": {"client_credentials"}})
	assert.Equal(t, http.StatusOK, res.StatusCode, body)
}

// TestAuthorizationResponseIss is RFC 9207: iss on every authorization
// response by default, advertised in discovery; off with
// DisableAuthorizationResponseIss.
func TestAuthorizationResponseIss(t *testing.T) {
	for _, off := range []bool{false, true} {
		op := newTestOP(t, OPConfig{DisableAuthorizationResponseIss: off})
		_, b := doJSON(t, http.MethodGet, op.Issuer()+pathDiscovery, "", nil)
		assert.Equal(t, !off, decode(t, b)["authorization_response_iss_parameter_supported"])
		c := register(t, op, defaultMeta())
		_, challenge := pkcePair()
		loc := loginThroughForm(t, browser(t), authURL(op, c, authParams{state: "s", challenge: challenge}), "alice", "alice-password")
		require.NotEmpty(t, loc.Query().Get("code"))
		// Error response (prompt=none without a session).
		res, _ := get(t, browser(t), authURL(op, c, authParams{state: "s", challenge: challenge, prompt: "none"}))
		eloc, err := res.Location()
		require.NoError(t, err)
		require.Equal(t, "login_required", eloc.Query().Get("error"))
		for _, q := range []url.Values{loc.Query(), eloc.Query()} {
			if off {
				assert.False(t, q.Has("iss"))
			} else {
				assert.Equal(t, op.Issuer(), q.Get("iss"))
			}
		}
	}
}

// TestEndSessionVariants is RP-Initiated Logout 1.0 §2–§3: id_token_hint
// alone signs out at once; client_id alone asks for confirmation; without
// post_logout_redirect_uri the OP shows its own page; client_id with a
// registered URI redirects with state after confirmation.
func TestEndSessionVariants(t *testing.T) {
	m := newStaticMatrix(t, OPConfig{DisableRegistration: true})
	op := m.op
	creds := m.creds["none"]
	pub := regClient{ID: creds.ClientID, RedirectURI: testRedirect}
	signIn := func() (*http.Client, string) {
		cl := browser(t)
		verifier, ch := pkcePair()
		loc := loginThroughForm(t, cl, authURL(op, pub, authParams{challenge: ch}), "alice", "alice-password")
		res, tok := authForm(t, op, pathToken, creds, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}})
		require.Equal(t, http.StatusOK, res.StatusCode, tok)
		return cl, tok["id_token"].(string)
	}
	signedIn := func(cl *http.Client) bool {
		_, ch := pkcePair()
		res, _ := get(t, cl, authURL(op, pub, authParams{challenge: ch}))
		return res.StatusCode == http.StatusFound
	}

	// id_token_hint only.
	cl, idt := signIn()
	res, page := get(t, cl, op.Issuer()+pathEndSession+"?"+url.Values{"id_token_hint": {idt}}.Encode())
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "signed out")
	assert.False(t, signedIn(cl))

	// client_id only: confirmation, then the OP's page.
	cl, _ = signIn()
	res, page = get(t, cl, op.Issuer()+pathEndSession+"?"+url.Values{"client_id": {creds.ClientID}}.Encode())
	require.Equal(t, http.StatusOK, res.StatusCode)
	xsrf := field(t, reXSRF, page)
	assert.True(t, signedIn(cl))
	res, page = submit(t, cl, op.Issuer()+pathEndSession, url.Values{"xsrf": {xsrf}, "logout": {"yes"}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "signed out")
	assert.False(t, signedIn(cl))

	// client_id + registered post_logout_redirect_uri + state.
	cl, _ = signIn()
	res, page = get(t, cl, op.Issuer()+pathEndSession+"?"+url.Values{"client_id": {creds.ClientID}, "post_logout_redirect_uri": {testPostLogout}, "state": {"st-1"}}.Encode())
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = submit(t, cl, op.Issuer()+pathEndSession, url.Values{"xsrf": {field(t, reXSRF, page)}, "logout": {"yes"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, _ := res.Location()
	assert.Equal(t, "st-1", loc.Query().Get("state"))
	assert.Equal(t, testPostLogout, loc.Scheme+"://"+loc.Host+loc.Path)

	// Neither hint nor client_id: still a confirmed logout.
	cl, _ = signIn()
	res, page = get(t, cl, op.Issuer()+pathEndSession)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = submit(t, cl, op.Issuer()+pathEndSession, url.Values{"xsrf": {field(t, reXSRF, page)}, "logout": {"yes"}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.False(t, signedIn(cl))
}
