package e2e_test

// The client authentication methods of internal/clientauth, proven against
// the certified OP (oidc-provider) in its "static" profile: no registration
// endpoint, one pre-registered client per token_endpoint_auth_method.

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/internal/clientauth"
)

// postAuth posts form to endpoint, authenticated with creds by clientauth.Apply.
func postAuth(t *testing.T, ctx context.Context, endpoint string, creds clientauth.Credentials, form url.Values) tokenReply {
	t.Helper()
	h := http.Header{}
	if err := clientauth.Apply(h, form, endpoint, creds); err != nil {
		t.Fatalf("clientauth.Apply: %v", err)
	}
	return postRaw(t, ctx, endpoint, h, form)
}

func postRaw(t *testing.T, ctx context.Context, endpoint string, h http.Header, form url.Values) tokenReply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func discString(t *testing.T, disc map[string]any, k string) string {
	t.Helper()
	s, _ := disc[k].(string)
	if s == "" {
		t.Fatalf("discovery has no %s", k)
	}
	return s
}

func discList(disc map[string]any, k string) []string {
	var out []string
	l, _ := disc[k].([]any)
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestCertifiedOPClientAuthMethods: every method of internal/clientauth
// authenticates at the certified OP's token, introspection and revocation
// endpoints, through a code flow with PKCE, refresh, client_credentials,
// introspection, revocation and RP-initiated logout; a forged and a
// replayed assertion are refused.
func TestCertifiedOPClientAuthMethods(t *testing.T) {
	op := harness.StartOIDCProvider(t, harness.WithStaticProfile())
	ctx := testCtx(t)
	disc, err := op.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tokenEP := discString(t, disc, "token_endpoint")
	introspectEP := discString(t, disc, "introspection_endpoint")
	revokeEP := discString(t, disc, "revocation_endpoint")
	endSessionEP := discString(t, disc, "end_session_endpoint")
	userinfoEP := discString(t, disc, "userinfo_endpoint")

	t.Run("Discovery", func(t *testing.T) {
		if _, ok := disc["registration_endpoint"]; ok {
			t.Errorf("the static profile advertises registration_endpoint %v", disc["registration_endpoint"])
		}
		status, _ := jsonRequest(t, ctx, http.MethodPost, op.URL("/reg"), "", map[string]any{"redirect_uris": []string{harness.DefaultStaticRedirectURI}})
		if status != http.StatusNotFound {
			t.Errorf("POST /reg answered %d, want 404", status)
		}
		methods := discList(disc, "token_endpoint_auth_methods_supported")
		for _, m := range clientauth.Methods() {
			if !slices.Contains(methods, string(m)) {
				t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", methods, m)
			}
		}
		if m, err := clientauth.ChooseMethod(methods); err != nil || m != clientauth.MethodPrivateKeyJWT {
			t.Errorf("ChooseMethod(%v) = %s, %v; want private_key_jwt", methods, m, err)
		}
		algs := discList(disc, "token_endpoint_auth_signing_alg_values_supported")
		for _, tc := range []struct {
			m    clientauth.Method
			want string
		}{{clientauth.MethodPrivateKeyJWT, "ES256"}, {clientauth.MethodSecretJWT, "HS256"}} {
			if got, err := clientauth.SigningAlg(tc.m, "", algs); err != nil || got != tc.want {
				t.Errorf("SigningAlg(%s, %v) = %s, %v; want %s", tc.m, algs, got, err, tc.want)
			}
		}
		uma, err := op.UMAConfiguration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := uma["registration_endpoint"]; ok {
			t.Errorf("the static profile's UMA metadata advertises registration_endpoint")
		}
		if m := discList(uma, "token_endpoint_auth_methods_supported"); !slices.Contains(m, string(clientauth.MethodPrivateKeyJWT)) {
			t.Errorf("UMA token_endpoint_auth_methods_supported %v lacks private_key_jwt", m)
		}
		if disc["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("authorization_response_iss_parameter_supported = %v", disc["authorization_response_iss_parameter_supported"])
		}
	})

	clients := op.StaticClients()
	if len(clients) != 5 {
		t.Fatalf("%d static clients, want 5", len(clients))
	}
	for _, c := range clients {
		t.Run(string(c.Method), func(t *testing.T) {
			creds := c.Credentials(tokenEP)
			start := time.Now()
			// Code flow with PKCE; the callback carries iss (RFC 9207).
			state, nonce, verifier := randomString(t), randomString(t), randomString(t)+randomString(t)
			authURL := discString(t, disc, "authorization_endpoint") + "?" + url.Values{
				"client_id": {c.ID}, "response_type": {"code"}, "scope": {"openid profile"},
				"redirect_uri": {c.RedirectURIs[0]}, "state": {state}, "nonce": {nonce},
				"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
			}.Encode()
			browser := newJarClient(t)
			back, err := op.LoginHTTP(ctx, browser, authURL, "alice", "any-password")
			if err != nil {
				t.Fatal(err)
			}
			q := back.Query()
			if q.Get("state") != state || q.Get("iss") != op.Issuer() || q.Get("code") == "" {
				t.Fatalf("callback: state ok=%v iss=%q code set=%v error=%q", q.Get("state") == state, q.Get("iss"), q.Get("code") != "", q.Get("error"))
			}
			tok := postAuth(t, ctx, tokenEP, creds, url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier},
			})
			if tok.Status != http.StatusOK || tok.str("access_token") == "" || tok.str("refresh_token") == "" || tok.str("id_token") == "" {
				t.Fatalf("code exchange: HTTP %d, error %q %q", tok.Status, tok.str("error"), tok.str("error_description"))
			}
			idToken := tok.str("id_token")
			if jwtClaims(t, idToken)["aud"] != c.ID {
				t.Errorf("id_token aud %v", jwtClaims(t, idToken)["aud"])
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, userinfoEP, nil)
			req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
			if ui := do(t, req); ui.Status != http.StatusOK || ui.str("sub") != "alice" {
				t.Errorf("userinfo: HTTP %d sub %q", ui.Status, ui.str("sub"))
			}

			// Refresh.
			ref := postAuth(t, ctx, tokenEP, creds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}})
			if ref.Status != http.StatusOK || ref.str("access_token") == "" {
				t.Fatalf("refresh: HTTP %d, error %q %q", ref.Status, ref.str("error"), ref.str("error_description"))
			}
			at := ref.str("access_token")
			rt := ref.str("refresh_token")
			if rt == "" {
				rt = tok.str("refresh_token") // not rotated for confidential clients
			}

			// client_credentials (confidential clients only).
			cc := postAuth(t, ctx, tokenEP, creds, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}})
			if c.Method == clientauth.MethodNone {
				if cc.Status == http.StatusOK {
					t.Error("a public client obtained a client_credentials token")
				}
			} else if cc.Status != http.StatusOK || cc.str("scope") != "uma_protection" {
				t.Errorf("client_credentials: HTTP %d, error %q %q", cc.Status, cc.str("error"), cc.str("error_description"))
			}

			// Introspection of its own token.
			in := postAuth(t, ctx, introspectEP, creds, url.Values{"token": {at}})
			if in.Status != http.StatusOK || in.Body["active"] != true || in.str("client_id") != c.ID {
				t.Errorf("introspection: HTTP %d active=%v client_id=%q error %q", in.Status, in.Body["active"], in.str("client_id"), in.str("error_description"))
			}

			// Revocation: access token, then refresh token.
			if rv := postAuth(t, ctx, revokeEP, creds, url.Values{"token": {at}, "token_type_hint": {"access_token"}}); rv.Status != http.StatusOK {
				t.Errorf("revoke access token: HTTP %d %q", rv.Status, rv.str("error_description"))
			}
			if in := postAuth(t, ctx, introspectEP, creds, url.Values{"token": {at}}); in.Status != http.StatusOK || in.Body["active"] != false {
				t.Errorf("revoked access token: HTTP %d active=%v", in.Status, in.Body["active"])
			}
			if rv := postAuth(t, ctx, revokeEP, creds, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); rv.Status != http.StatusOK {
				t.Errorf("revoke refresh token: HTTP %d %q", rv.Status, rv.str("error_description"))
			}
			if ref := postAuth(t, ctx, tokenEP, creds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); ref.Status != http.StatusBadRequest || ref.str("error") != "invalid_grant" {
				t.Errorf("refresh with a revoked token: HTTP %d %q", ref.Status, ref.str("error"))
			}

			// RP-initiated logout with client_id only, post-logout URI and state.
			logoutURL := endSessionEP + "?" + url.Values{
				"client_id": {c.ID}, "post_logout_redirect_uri": {c.PostLogoutRedirectURIs[0]}, "state": {"bye-" + state},
			}.Encode()
			out, err := op.LogoutHTTP(ctx, browser, logoutURL)
			if err != nil {
				t.Fatalf("logout: %v", err)
			}
			if got := out.Scheme + "://" + out.Host + out.Path; got != c.PostLogoutRedirectURIs[0] || out.Query().Get("state") != "bye-"+state {
				t.Errorf("logout ended at %s (state ok=%v)", got, out.Query().Get("state") == "bye-"+state)
			}
			t.Logf("%s: login, code, userinfo, refresh, client_credentials, introspection, revocation, logout in %s", c.Method, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("LogoutWithIDTokenHintOnly", func(t *testing.T) {
		c := op.StaticClient(t, clientauth.MethodPrivateKeyJWT)
		verifier := randomString(t) + randomString(t)
		browser := newJarClient(t)
		back, err := op.LoginHTTP(ctx, browser, discString(t, disc, "authorization_endpoint")+"?"+url.Values{
			"client_id": {c.ID}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {c.RedirectURIs[0]},
			"state": {"s"}, "nonce": {"n"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
		}.Encode(), "bob", "x")
		if err != nil {
			t.Fatal(err)
		}
		tok := postAuth(t, ctx, tokenEP, c.Credentials(tokenEP), url.Values{
			"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier},
		})
		if tok.Status != http.StatusOK {
			t.Fatalf("code exchange: HTTP %d %q", tok.Status, tok.str("error_description"))
		}
		out, err := op.LogoutHTTP(ctx, browser, endSessionEP+"?"+url.Values{"id_token_hint": {tok.str("id_token")}}.Encode())
		if err != nil {
			t.Fatalf("logout with id_token_hint only: %v", err)
		}
		if !strings.HasPrefix(out.String(), op.Issuer()) {
			t.Errorf("without post_logout_redirect_uri the logout left the OP for %s", out.Redacted())
		}
	})

	t.Run("ForgedAssertionRefused", func(t *testing.T) {
		c := op.StaticClient(t, clientauth.MethodPrivateKeyJWT)
		other, err := clientauth.GenerateKeySet("ES256", time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		forged := c.Credentials(tokenEP)
		forged.Keys = other
		r := postAuth(t, ctx, tokenEP, forged, url.Values{"grant_type": {"client_credentials"}})
		if r.Status != http.StatusUnauthorized || r.str("error") != "invalid_client" {
			t.Errorf("forged private_key_jwt assertion: HTTP %d %q", r.Status, r.str("error"))
		}
		s := op.StaticClient(t, clientauth.MethodSecretJWT)
		wrong := s.Credentials(tokenEP)
		wrong.Secret = strings.Repeat("w", 64)
		r = postAuth(t, ctx, tokenEP, wrong, url.Values{"grant_type": {"client_credentials"}})
		if r.Status != http.StatusUnauthorized || r.str("error") != "invalid_client" {
			t.Errorf("client_secret_jwt with a wrong secret: HTTP %d %q", r.Status, r.str("error"))
		}
	})

	t.Run("ReplayedAssertionRefused", func(t *testing.T) {
		for _, m := range []clientauth.Method{clientauth.MethodPrivateKeyJWT, clientauth.MethodSecretJWT} {
			creds := op.StaticClient(t, m).Credentials(tokenEP)
			a, err := creds.Assertion(tokenEP)
			if err != nil {
				t.Fatal(err)
			}
			form := func() url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "client_id": {creds.ClientID},
					"client_assertion_type": {clientauth.AssertionType}, "client_assertion": {a}}
			}
			if r := postRaw(t, ctx, tokenEP, http.Header{}, form()); r.Status != http.StatusOK {
				t.Fatalf("%s: first use: HTTP %d %q", m, r.Status, r.str("error_description"))
			}
			if r := postRaw(t, ctx, tokenEP, http.Header{}, form()); r.Status != http.StatusUnauthorized || r.str("error") != "invalid_client" {
				t.Errorf("%s: replayed assertion: HTTP %d %q", m, r.Status, r.str("error"))
			}
		}
	})

	t.Run("AudienceIssuer", func(t *testing.T) {
		creds := op.StaticClient(t, clientauth.MethodPrivateKeyJWT).Credentials(tokenEP)
		creds.Audience, creds.Issuer = clientauth.AudienceIssuer, op.Issuer()
		if r := postAuth(t, ctx, tokenEP, creds, url.Values{"grant_type": {"client_credentials"}}); r.Status != http.StatusOK {
			t.Errorf("aud = issuer: HTTP %d %q", r.Status, r.str("error_description"))
		}
	})
}

// TestCertifiedOPPrivateKeyJWTAlgorithms: RS256 and PS256 keys (ES256 is
// the default of the matrix above) sign assertions the certified OP accepts.
func TestCertifiedOPPrivateKeyJWTAlgorithms(t *testing.T) {
	for _, alg := range []string{"RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			op := harness.StartOIDCProvider(t, harness.WithStaticProfile(harness.WithStaticKeyAlg(alg)))
			ctx := testCtx(t)
			creds := op.StaticClient(t, clientauth.MethodPrivateKeyJWT).Credentials(op.URL("/token"))
			if _, got := creds.Keys.SigningKID(time.Now()); got != alg {
				t.Fatalf("key set signs %s, want %s", got, alg)
			}
			r := postAuth(t, ctx, op.URL("/token"), creds, url.Values{"grant_type": {"client_credentials"}, "scope": {"oxd"}})
			if r.Status != http.StatusOK || r.str("access_token") == "" {
				t.Errorf("client_credentials: HTTP %d %q", r.Status, r.str("error_description"))
			}
		})
	}
}
