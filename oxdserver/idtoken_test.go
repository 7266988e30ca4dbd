package oxdserver_test

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

func requireOxdCode(t testing.TB, err error, code string) *oxdclient.Error {
	t.Helper()
	var oe *oxdclient.Error
	require.True(t, errors.As(err, &oe), "want oxd error %s, got %v", code, err)
	require.Equal(t, code, oe.Code, "description: %s", oe.Description)
	return oe
}

func TestCodeExchangeSendsPKCEVerifierAndBasicAuth(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	state, _, challenge := fakeLogin(t, f, e, id)
	tok, err := fakeTokens(t, e, id, state)
	require.NoError(t, err)
	assert.Equal(t, "at-123", tok.AccessToken.Reveal())

	form := f.lastForm("token")
	assert.Equal(t, "authorization_code", form.Get("grant_type"))
	assert.Equal(t, "the-code", form.Get("code"))
	assert.Equal(t, "https://rp.example/cb", form.Get("redirect_uri"))
	verifier := form.Get("code_verifier")
	require.NotEmpty(t, verifier)
	sum := sha256.Sum256([]byte(verifier))
	assert.Equal(t, challenge, base64.RawURLEncoding.EncodeToString(sum[:]), "S256(code_verifier) must equal the code_challenge of the authorization URL")
	assert.Empty(t, form.Get("client_secret"), "client_secret_basic, not in the body")
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", f.lastAuth("token"))
	user, pass, ok := req.BasicAuth()
	require.True(t, ok)
	assert.Equal(t, fakeClientID, user)
	assert.Equal(t, fakeClientSecret, pass)

	// Claims in the 3.x shape: arrays of strings.
	assert.Equal(t, []string{"pwd", "otp"}, tok.IDTokenClaims.Strings("amr"))
	assert.Equal(t, []string{"true"}, tok.IDTokenClaims.Strings("email_verified"))
	exp, ok := tok.IDTokenClaims.Int("exp")
	assert.True(t, ok)
	assert.Greater(t, exp, time.Now().Unix())
	assert.Equal(t, int64(300), tok.ExpiresIn)
}

func TestIDTokenES256Accepted(t *testing.T) {
	f := newFakeOP(t)
	f.useECKey("ec1")
	e, id := fakeSite(t, f, oxdserver.Config{})
	state, _, _ := fakeLogin(t, f, e, id)
	_, err := fakeTokens(t, e, id, state)
	require.NoError(t, err)
}

// TestIDTokenValidationErrors covers OIDC Core §3.1.3.7: each failed check
// gives its specific code (3.1.4 collapsed them to invalid_id_token_unknown).
func TestIDTokenValidationErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t testing.TB, f *fakeOP)
		code  string
	}{
		{"expired", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
				c["iat"] = time.Now().Add(-20 * time.Minute).Unix()
			})
		}, oxdclient.CodeInvalidIDTokenExpired},
		{"bad issuer", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["iss"] = "https://evil.example" })
		}, oxdclient.CodeInvalidIDTokenBadIssuer},
		{"bad audience", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { c["aud"] = "someone-else" }) }, oxdclient.CodeInvalidIDTokenBadAudience},
		{"several audiences without azp", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["aud"] = []string{fakeClientID, "other"} })
		}, oxdclient.CodeInvalidIDTokenBadAudience},
		{"azp of another client", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["aud"] = []string{fakeClientID, "other"}; c["azp"] = "other" })
		}, oxdclient.CodeInvalidIDTokenBadAudience},
		{"wrong nonce", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["nonce"] = "not-the-one-issued" })
		}, oxdclient.CodeInvalidNonce},
		{"no nonce", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "nonce") }) }, oxdclient.CodeInvalidNonce},
		{"at_hash mismatch", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" })
		}, oxdclient.CodeInvalidAccessTokenBadHash},
		{"issued in the future", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				c["iat"] = time.Now().Add(time.Hour).Unix()
				c["exp"] = time.Now().Add(2 * time.Hour).Unix()
			})
		}, oxdclient.CodeInvalidIDToken},
		{"signed by an unpublished key with a known kid", func(_ testing.TB, f *fakeOP) {
			f.mu.Lock()
			pub := f.keys
			f.mu.Unlock()
			f.useRSAKey("k1") // same kid, new key…
			f.mu.Lock()
			f.keys = pub // …but the JWKS still has the old one
			f.mu.Unlock()
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"no exp", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "exp") }) }, oxdclient.CodeInvalidIDToken},
		{"exp not a number", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["exp"] = fmt.Sprint(time.Now().Add(time.Hour).Unix()) })
		}, oxdclient.CodeInvalidIDToken},
		{"no iat", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "iat") }) }, oxdclient.CodeInvalidIDToken},
		{"expires before it was issued", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				// Both within the default clock skew of a minute.
				c["iat"] = time.Now().Add(30 * time.Second).Unix()
				c["exp"] = time.Now().Add(10 * time.Second).Unix()
			})
		}, oxdclient.CodeInvalidIDToken},
		{"expired beyond the clock skew by a second", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				c["exp"] = time.Now().Add(-oxdserver.DefaultClockSkew - time.Second).Unix()
				c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
			})
		}, oxdclient.CodeInvalidIDTokenExpired},
		{"no issuer", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "iss") }) }, oxdclient.CodeInvalidIDTokenBadIssuer},
		{"issuer with a trailing slash", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["iss"] = c["iss"].(string) + "/" })
		}, oxdclient.CodeInvalidIDTokenBadIssuer},
		{"no audience", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "aud") }) }, oxdclient.CodeInvalidIDTokenBadAudience},
		{"azp of another client with the one audience", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["azp"] = "other" })
		}, oxdclient.CodeInvalidIDTokenBadAudience},
		{"at_hash of another access token", func(_ testing.TB, f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				sum := sha256.Sum256([]byte("another-access-token"))
				c["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
			})
		}, oxdclient.CodeInvalidAccessTokenBadHash},
		{"at_hash not a string", func(_ testing.TB, f *fakeOP) { f.setMutate(func(c map[string]any) { c["at_hash"] = 42 }) }, oxdclient.CodeInvalidAccessTokenBadHash},
		{"not a JWT", func(_ testing.TB, f *fakeOP) {
			f.setTokenResponse(func(w http.ResponseWriter, r *http.Request) bool {
				writeJSON(w, 200, map[string]any{"access_token": "at", "id_token": "not.a.jwt"})
				return true
			})
		}, oxdclient.CodeInvalidIDToken},
		{"no id_token", func(_ testing.TB, f *fakeOP) {
			f.setTokenResponse(func(w http.ResponseWriter, r *http.Request) bool {
				writeJSON(w, 200, map[string]any{"access_token": "at", "token_type": "Bearer"})
				return true
			})
		}, oxdclient.CodeNoIDToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOP(t)
			e, id := fakeSite(t, f, oxdserver.Config{})
			state, _, _ := fakeLogin(t, f, e, id)
			tc.setup(t, f)
			_, err := fakeTokens(t, e, id, state)
			requireOxdCode(t, err, tc.code)
			// The state was used up: the same callback cannot be retried.
			_, err = fakeTokens(t, e, id, state)
			oe := requireOxdCode(t, err, oxdclient.CodeBadRequest)
			assert.Equal(t, oxdclient.DescStateNotRegistered, oe.Description)
		})
	}
}

func TestIDTokenSeveralAudiencesWithAZP(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	state, _, _ := fakeLogin(t, f, e, id)
	f.setMutate(func(c map[string]any) { c["aud"] = []string{"other", fakeClientID}; c["azp"] = fakeClientID })
	_, err := fakeTokens(t, e, id, state)
	require.NoError(t, err)
}

// TestUnknownKIDRefetchesJWKSOnce: a kid the cached JWKS does not have
// makes the engine refetch the JWKS exactly once (rotation), then succeed
// or fail with bad_signature.
func TestUnknownKIDRefetchesJWKSOnce(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	state, _, _ := fakeLogin(t, f, e, id)
	_, err := fakeTokens(t, e, id, state)
	require.NoError(t, err)
	require.Equal(t, 1, f.count("jwks"))

	// The OP rotates: new key, new kid, published.
	f.useRSAKey("k2")
	state, _, _ = fakeLogin(t, f, e, id)
	_, err = fakeTokens(t, e, id, state)
	require.NoError(t, err)
	assert.Equal(t, 2, f.count("jwks"), "one refetch for the unknown kid")

	// A token signed with a key that is never published: one refetch, then
	// bad_signature, no loop.
	f.mu.Lock()
	pub := f.keys
	f.mu.Unlock()
	f.useRSAKey("k-unknown")
	f.mu.Lock()
	f.keys = pub
	f.mu.Unlock()
	state, _, _ = fakeLogin(t, f, e, id)
	_, err = fakeTokens(t, e, id, state)
	requireOxdCode(t, err, oxdclient.CodeInvalidIDTokenBadSignature)
	assert.Equal(t, 3, f.count("jwks"))
}

func TestCodeExchangeOPErrors(t *testing.T) {
	cases := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request) bool
		check  func(t *testing.T, err error)
	}{
		{"invalid_grant", func(w http.ResponseWriter, r *http.Request) bool {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "code expired"})
			return true
		}, func(t *testing.T, err error) {
			oe := requireOxdCode(t, err, oxdclient.CodeBadRequest)
			assert.Equal(t, "'code' is invalid.", oe.Description)
		}},
		{"server error", func(w http.ResponseWriter, r *http.Request) bool {
			writeJSON(w, 500, map[string]any{"error": "server_error"})
			return true
		}, func(t *testing.T, err error) {
			oe := requireOxdCode(t, err, "http_status_500")
			assert.Contains(t, oe.Description, "server_error")
			assert.Equal(t, 500, oxdclient.HTTPStatus(err))
		}},
		{"garbage", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("\x00<html>garbage"))
			return true
		}, func(t *testing.T, err error) {
			oe := requireOxdCode(t, err, oxdclient.CodeInternalError)
			assert.False(t, oxdclient.IsGenericInternalError(err), "a garbage answer is a specific error, not the generic one")
			assert.Contains(t, oe.Description, "invalid response")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOP(t)
			e, id := fakeSite(t, f, oxdserver.Config{})
			state, _, _ := fakeLogin(t, f, e, id)
			f.setTokenResponse(tc.handle)
			_, err := fakeTokens(t, e, id, state)
			tc.check(t, err)
		})
	}
}

func TestSlowOPTimesOutWithSpecificError(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{OPTimeout: time.Second})
	state, _, _ := fakeLogin(t, f, e, id)
	release := make(chan struct{})
	defer close(release)
	f.setTokenResponse(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	start := time.Now()
	_, err := fakeTokens(t, e, id, state)
	oe := requireOxdCode(t, err, oxdclient.CodeInternalError)
	assert.False(t, oxdclient.IsGenericInternalError(err))
	assert.Contains(t, oe.Description, "did not answer in time")
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestUserInfoClaimsAreStringArrays(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	m, oe := exec(t, e, "get_user_info", map[string]any{"oxd_id": id, "access_token": "at-123"})
	require.Nil(t, oe)
	assert.Equal(t, map[string]any{
		"sub": []any{"u1"}, "age": []any{"42"}, "tags": []any{"a", "b"}, "address": []any{`{"country":"DE"}`},
	}, m["claims"])
	assert.Contains(t, m, "refresh_token")
	assert.Nil(t, m["refresh_token"])
	assert.Contains(t, m, "access_token")
	assert.Equal(t, "Bearer at-123", f.lastAuth("userinfo"))
}

// unsignedJWT is a compact JWS with the given header and an empty (or the
// given) signature, as an attacker builds it by hand.
func unsignedJWT(header map[string]any, claims []byte, sig string) string {
	h, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + sig
}

// hmacSigned signs claims with HMAC-SHA256 and key, with the kid of the
// OP's published RSA key in the header (the key-confusion attack: a
// verifier that picked the algorithm from the header would use the public
// key bytes as the HMAC secret).
func hmacSigned(t testing.TB, key []byte, kid string, claims []byte) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Errorf("HS256 signer: %v", err)
		return ""
	}
	jws, err := s.Sign(claims)
	if err != nil {
		t.Errorf("HS256 sign: %v", err)
		return ""
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Errorf("HS256 serialize: %v", err)
	}
	return out
}

// TestIDTokenForgedSignaturesRefused: an id_token that is not signed with
// the OP's published key under an accepted algorithm (RS256, ES256) is
// refused whatever its claims: alg "none" in any spelling, with or without
// a signature, and HS256 keyed with the client secret or with the bytes of
// the OP's RSA public key in every usual encoding (key confusion). Every
// other claim of these tokens is valid, so only the signature check can
// refuse them.
func TestIDTokenForgedSignaturesRefused(t *testing.T) {
	f0 := newFakeOP(t)
	f0.mu.Lock()
	pub, ok := f0.keys[0].Key.(*rsa.PublicKey)
	kid := f0.keys[0].KeyID
	f0.mu.Unlock()
	require.True(t, ok, "the fake OP publishes an RSA key")
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	jwkJSON, err := (&jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}).MarshalJSON()
	require.NoError(t, err)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	cases := []struct {
		name string
		sign func(t testing.TB, claims []byte) string
		code string
	}{
		{"alg none without signature", func(_ testing.TB, c []byte) string {
			return unsignedJWT(map[string]any{"alg": "none", "typ": "JWT"}, c, "")
		}, oxdclient.CodeInvalidIDToken},
		{"alg none with the published kid", func(_ testing.TB, c []byte) string {
			return unsignedJWT(map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, c, "")
		}, oxdclient.CodeInvalidIDToken},
		{"alg None in another case", func(_ testing.TB, c []byte) string {
			return unsignedJWT(map[string]any{"alg": "None", "kid": kid}, c, "")
		}, oxdclient.CodeInvalidIDToken},
		{"alg none with a signature", func(_ testing.TB, c []byte) string {
			return unsignedJWT(map[string]any{"alg": "none", "kid": kid}, c, base64.RawURLEncoding.EncodeToString([]byte("sig")))
		}, oxdclient.CodeInvalidIDToken},
		{"no alg", func(_ testing.TB, c []byte) string {
			return unsignedJWT(map[string]any{"kid": kid}, c, "")
		}, oxdclient.CodeInvalidIDToken},
		{"HS256 with the client secret", func(t testing.TB, c []byte) string {
			return hmacSigned(t, []byte(strings.Repeat(fakeClientSecret, 4)), kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the RSA public key as PKIX PEM", func(t testing.TB, c []byte) string {
			return hmacSigned(t, pemOf("PUBLIC KEY", pkix), kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the RSA public key as PKCS#1 PEM", func(t testing.TB, c []byte) string {
			return hmacSigned(t, pemOf("RSA PUBLIC KEY", pkcs1), kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the RSA public key as DER", func(t testing.TB, c []byte) string {
			return hmacSigned(t, pkix, kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the RSA public key as JWK", func(t testing.TB, c []byte) string {
			return hmacSigned(t, jwkJSON, kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the RSA modulus", func(t testing.TB, c []byte) string {
			return hmacSigned(t, pub.N.Bytes(), kid, c)
		}, oxdclient.CodeInvalidIDTokenBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOP(t)
			e, id := fakeSite(t, f, oxdserver.Config{})
			f.mu.Lock()
			f.keys = f0.keys // the key the forgeries were built from
			f.mu.Unlock()
			// A genuine login first: the JWKS is cached, the flow works.
			state, _, _ := fakeLogin(t, f, e, id)
			_, err := fakeTokens(t, e, id, state)
			require.NoError(t, err, "the genuine token of the fake must be accepted")

			state, _, _ = fakeLogin(t, f, e, id)
			f.setSign(func(claims []byte) string { return tc.sign(t, claims) })
			tok, err := fakeTokens(t, e, id, state)
			requireOxdCode(t, err, tc.code)
			assert.Nil(t, tok)
		})
	}
}

// TestIDTokenUnknownKIDRefusedAfterOneRefetch: a token whose kid is in no
// JWKS the OP publishes is refused with bad_signature after exactly one
// refetch of the JWKS (key rotation), with and without a cached JWKS.
func TestIDTokenUnknownKIDRefusedAfterOneRefetch(t *testing.T) {
	forge := func(f *fakeOP) {
		f.mu.Lock()
		pub := f.keys
		f.mu.Unlock()
		f.useRSAKey("k-never-published") // signs with a new key and kid…
		f.mu.Lock()
		f.keys = pub // …the JWKS keeps the old one
		f.mu.Unlock()
	}
	t.Run("cached JWKS", func(t *testing.T) {
		f := newFakeOP(t)
		e, id := fakeSite(t, f, oxdserver.Config{})
		state, _, _ := fakeLogin(t, f, e, id)
		_, err := fakeTokens(t, e, id, state)
		require.NoError(t, err)
		require.Equal(t, 1, f.count("jwks"))
		forge(f)
		state, _, _ = fakeLogin(t, f, e, id)
		_, err = fakeTokens(t, e, id, state)
		requireOxdCode(t, err, oxdclient.CodeInvalidIDTokenBadSignature)
		assert.Equal(t, 2, f.count("jwks"), "one refetch for the unknown kid, no more")
	})
	t.Run("first token of the site", func(t *testing.T) {
		f := newFakeOP(t)
		e, id := fakeSite(t, f, oxdserver.Config{})
		forge(f)
		state, _, _ := fakeLogin(t, f, e, id)
		_, err := fakeTokens(t, e, id, state)
		requireOxdCode(t, err, oxdclient.CodeInvalidIDTokenBadSignature)
		assert.Equal(t, 2, f.count("jwks"), "the fetch and one refetch, no more")
	})
}

// TestIDTokenNonceOfAnotherPendingLoginRefused: two logins of the same site
// are pending; the callback of the first presents a code whose id_token
// carries the nonce issued for the second. That nonce is registered for
// this site and unused, so only the comparison with the nonce issued for
// this state refuses it. The second login still completes afterwards: the
// refused callback did not consume its nonce.
func TestIDTokenNonceOfAnotherPendingLoginRefused(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	stateA, nonceA, _ := fakeLogin(t, f, e, id)
	stateB, nonceB, _ := fakeLogin(t, f, e, id) // the fake now puts nonce B into its id_tokens
	require.NotEqual(t, stateA, stateB)
	require.NotEqual(t, nonceA, nonceB)

	_, err := fakeTokens(t, e, id, stateA)
	requireOxdCode(t, err, oxdclient.CodeInvalidNonce)
	// State A was used up by the refused callback.
	_, err = fakeTokens(t, e, id, stateA)
	oe := requireOxdCode(t, err, oxdclient.CodeBadRequest)
	assert.Equal(t, oxdclient.DescStateNotRegistered, oe.Description)

	// Login B, with its own nonce, completes.
	tok, err := fakeTokens(t, e, id, stateB)
	require.NoError(t, err)
	assert.Equal(t, []string{nonceB}, tok.IDTokenClaims.Strings("nonce"))

	// And the reverse: login A's nonce presented at B's callback.
	stateC, nonceC, _ := fakeLogin(t, f, e, id)
	stateD, _, _ := fakeLogin(t, f, e, id)
	f.setNonce(nonceC)
	_, err = fakeTokens(t, e, id, stateD)
	requireOxdCode(t, err, oxdclient.CodeInvalidNonce)
	tok, err = fakeTokens(t, e, id, stateC)
	require.NoError(t, err)
	assert.Equal(t, []string{nonceC}, tok.IDTokenClaims.Strings("nonce"))
}

// TestIDTokenNonceOfAnotherSiteRefused: a nonce issued for a login of
// another site of the same engine is refused at this site's callback.
func TestIDTokenNonceOfAnotherSiteRefused(t *testing.T) {
	f := newFakeOP(t)
	e, id := fakeSite(t, f, oxdserver.Config{})
	c := oxdclient.New(e, oxdclient.Config{})
	other, err := c.RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: f.issuer(), AuthorizationRedirectURI: "https://rp2.example/cb",
	}})
	require.NoError(t, err)
	state, _, _ := fakeLogin(t, f, e, id)
	_, otherNonce, _ := fakeLogin(t, f, e, other.OxdID)
	f.setNonce(otherNonce)
	_, err = fakeTokens(t, e, id, state)
	requireOxdCode(t, err, oxdclient.CodeInvalidNonce)
}

// TestIDTokenOnlyRS256AndES256Accepted: signed with the OP's own published
// key (published without "alg", as many OPs do) but under another
// algorithm, an id_token is refused with bad_signature; RS256 with the same
// key is accepted.
func TestIDTokenOnlyRS256AndES256Accepted(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512} {
		t.Run(string(alg), func(t *testing.T) {
			f := newFakeOP(t)
			f.mu.Lock()
			key := rsaKeys[0]
			f.mu.Unlock()
			f.setKey(jose.JSONWebKey{Key: key, KeyID: "k1", Use: "sig"}, alg, true)
			e, id := fakeSite(t, f, oxdserver.Config{})
			state, _, _ := fakeLogin(t, f, e, id)
			_, err := fakeTokens(t, e, id, state)
			if alg == jose.RS256 {
				require.NoError(t, err)
				return
			}
			requireOxdCode(t, err, oxdclient.CodeInvalidIDTokenBadSignature)
		})
	}
}
