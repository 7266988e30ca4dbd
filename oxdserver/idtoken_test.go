package oxdserver_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
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
		setup func(f *fakeOP)
		code  string
	}{
		{"expired", func(f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
				c["iat"] = time.Now().Add(-20 * time.Minute).Unix()
			})
		}, oxdclient.CodeInvalidIDTokenExpired},
		{"bad issuer", func(f *fakeOP) { f.setMutate(func(c map[string]any) { c["iss"] = "https://evil.example" }) }, oxdclient.CodeInvalidIDTokenBadIssuer},
		{"bad audience", func(f *fakeOP) { f.setMutate(func(c map[string]any) { c["aud"] = "someone-else" }) }, oxdclient.CodeInvalidIDTokenBadAudience},
		{"several audiences without azp", func(f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["aud"] = []string{fakeClientID, "other"} })
		}, oxdclient.CodeInvalidIDTokenBadAudience},
		{"azp of another client", func(f *fakeOP) {
			f.setMutate(func(c map[string]any) { c["aud"] = []string{fakeClientID, "other"}; c["azp"] = "other" })
		}, oxdclient.CodeInvalidIDTokenBadAudience},
		{"wrong nonce", func(f *fakeOP) { f.setMutate(func(c map[string]any) { c["nonce"] = "not-the-one-issued" }) }, oxdclient.CodeInvalidNonce},
		{"no nonce", func(f *fakeOP) { f.setMutate(func(c map[string]any) { delete(c, "nonce") }) }, oxdclient.CodeInvalidNonce},
		{"at_hash mismatch", func(f *fakeOP) { f.setMutate(func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }) }, oxdclient.CodeInvalidAccessTokenBadHash},
		{"issued in the future", func(f *fakeOP) {
			f.setMutate(func(c map[string]any) {
				c["iat"] = time.Now().Add(time.Hour).Unix()
				c["exp"] = time.Now().Add(2 * time.Hour).Unix()
			})
		}, oxdclient.CodeInvalidIDToken},
		{"signed by an unpublished key with a known kid", func(f *fakeOP) {
			f.mu.Lock()
			pub := f.keys
			f.mu.Unlock()
			f.useRSAKey("k1") // same kid, new key…
			f.mu.Lock()
			f.keys = pub // …but the JWKS still has the old one
			f.mu.Unlock()
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"HS256 with the client secret", func(f *fakeOP) {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat(fakeClientSecret, 4))}, nil)
			require.NoError(t, err)
			f.mu.Lock()
			f.signer = s
			f.mu.Unlock()
		}, oxdclient.CodeInvalidIDTokenBadSignature},
		{"not a JWT", func(f *fakeOP) {
			f.setTokenResponse(func(w http.ResponseWriter, r *http.Request) bool {
				writeJSON(w, 200, map[string]any{"access_token": "at", "id_token": "not.a.jwt"})
				return true
			})
		}, oxdclient.CodeInvalidIDToken},
		{"no id_token", func(f *fakeOP) {
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
			tc.setup(f)
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
