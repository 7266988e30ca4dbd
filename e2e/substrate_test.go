package e2e_test

// These tests prove that every real component of the end-to-end substrate
// works on this machine: the certified OP with its UMA 2.0 layer, Redis,
// Chromium through chromedp, and oxd-node. They also check that the harness
// leaves no process behind.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/e2e/harness"
)

// ---- small OAuth helpers (plain net/http, so the test checks the OP, not a client library) ----

type tokenReply struct {
	Status int
	Body   map[string]any
}

func (r tokenReply) str(k string) string { s, _ := r.Body[k].(string); return s }

func postForm(t *testing.T, ctx context.Context, endpoint string, c *harness.Client, form url.Values) tokenReply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) tokenReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := tokenReply{Status: resp.StatusCode}
	if len(raw) > 0 && raw[0] != '[' {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: HTTP %d, not JSON: %.200s", req.Method, req.URL.Path, resp.StatusCode, raw)
		}
	}
	return r
}

func jsonRequest(t *testing.T, ctx context.Context, method, endpoint, bearer string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// jwtClaims decodes the payload of a JWT (the signature is the OP's business
// here; the engine's tests verify id_tokens).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact serialization (%d parts)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newJarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---- the OP ----

const (
	rpBase      = "http://127.0.0.1:1" // never contacted: the drivers stop at the redirect
	redirectURI = rpBase + "/callback"
	logoutURI   = rpBase + "/logged-out"
	claimsURI   = rpBase + "/claims-callback"
)

func TestOIDCProvider(t *testing.T) {
	op := harness.StartOIDCProvider(t,
		harness.WithOPEnv("OP_TTL_CLIENT_CREDENTIALS", "123"),
		harness.WithOPEnv("OP_UMA_RPT_TTL", "321"),
	)
	ctx := testCtx(t)

	disc, err := op.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Discovery", func(t *testing.T) {
		if disc["issuer"] != op.Issuer() || !strings.HasPrefix(op.Issuer(), "http://127.0.0.1:") {
			t.Fatalf("issuer %v, want %s on 127.0.0.1", disc["issuer"], op.Issuer())
		}
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
			"registration_endpoint", "introspection_endpoint", "revocation_endpoint", "end_session_endpoint"} {
			if v, _ := disc[k].(string); !strings.HasPrefix(v, op.Issuer()+"/") {
				t.Errorf("%s = %v", k, disc[k])
			}
		}
		scopes, _ := disc["scopes_supported"].([]any)
		for _, s := range []string{"openid", "profile", "email", "offline_access", "uma_protection", "uma_authorization", "oxd"} {
			if !slices.Contains(scopes, any(s)) {
				t.Errorf("scope %q not supported: %v", s, scopes)
			}
		}
		if m, _ := disc["code_challenge_methods_supported"].([]any); !slices.Contains(m, any("S256")) {
			t.Errorf("PKCE S256 not advertised: %v", m)
		}
		grants, _ := disc["grant_types_supported"].([]any)
		if !slices.Contains(grants, any(harness.UMAGrantType)) || !slices.Contains(grants, any("client_credentials")) {
			t.Errorf("grant types %v", grants)
		}
	})

	rp := op.MustRegisterClient(t, map[string]any{
		"client_name":               "e2e-rp",
		"redirect_uris":             []string{redirectURI},
		"post_logout_redirect_uris": []string{logoutURI},
		"claims_redirect_uri":       []string{claimsURI},
		"grant_types":               []string{"authorization_code", "refresh_token", "client_credentials", harness.UMAGrantType},
		"response_types":            []string{"code"},
		"scope":                     "openid profile email offline_access uma_authorization oxd",
	})
	token := disc["token_endpoint"].(string)
	introspect := disc["introspection_endpoint"].(string)

	authURL := func(state, nonce, challenge string) string {
		return disc["authorization_endpoint"].(string) + "?" + url.Values{
			"client_id":             {rp.ID},
			"response_type":         {"code"},
			"scope":                 {"openid profile email"},
			"redirect_uri":          {redirectURI},
			"state":                 {state},
			"nonce":                 {nonce},
			"code_challenge":        {challenge},
			"code_challenge_method": {"S256"},
		}.Encode()
	}

	var idToken string
	browser := newJarClient(t)
	t.Run("CodeFlowPKCE", func(t *testing.T) {
		state, nonce, verifier := randomString(t), randomString(t), randomString(t)+randomString(t)
		back, err := op.LoginHTTP(ctx, browser, authURL(state, nonce, s256(verifier)), "alice", "any-password")
		if err != nil {
			t.Fatal(err)
		}
		if got := back.Scheme + "://" + back.Host + back.Path; got != redirectURI {
			t.Fatalf("redirected to %s, want %s", got, redirectURI)
		}
		q := back.Query()
		if q.Get("state") != state || q.Get("iss") != op.Issuer() || q.Get("code") == "" {
			t.Fatalf("callback query: state ok=%v iss=%q code set=%v error=%q",
				q.Get("state") == state, q.Get("iss"), q.Get("code") != "", q.Get("error"))
		}
		code := q.Get("code")

		tok := postForm(t, ctx, token, rp, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		if tok.Status != 200 {
			t.Fatalf("token: HTTP %d %v", tok.Status, tok.Body["error"])
		}
		for _, k := range []string{"access_token", "id_token", "refresh_token"} {
			if tok.str(k) == "" {
				t.Fatalf("token response has no %s (keys %v)", k, keys(tok.Body))
			}
		}
		if tok.str("token_type") != "Bearer" {
			t.Errorf("token_type %q", tok.str("token_type"))
		}
		idToken = tok.str("id_token")
		claims := jwtClaims(t, idToken)
		if claims["iss"] != op.Issuer() || claims["aud"] != rp.ID || claims["nonce"] != nonce || claims["sub"] != "alice" {
			t.Errorf("id_token iss=%v aud=%v nonce ok=%v sub=%v", claims["iss"], claims["aud"], claims["nonce"] == nonce, claims["sub"])
		}
		if claims["email"] != "alice@example.test" || claims["name"] != "Alice Example" {
			t.Errorf("id_token lacks the requested profile/email claims: email=%v name=%v", claims["email"], claims["name"])
		}

		// userinfo
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, disc["userinfo_endpoint"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
		ui := do(t, req)
		if ui.Status != 200 || ui.Body["sub"] != "alice" || ui.Body["email"] != "alice@example.test" ||
			ui.Body["name"] != "Alice Example" || ui.Body["email_verified"] != true {
			t.Errorf("userinfo: HTTP %d %v", ui.Status, ui.Body)
		}

		// refresh
		ref := postForm(t, ctx, token, rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}})
		if ref.Status != 200 || ref.str("access_token") == "" || ref.str("access_token") == tok.str("access_token") {
			t.Fatalf("refresh: HTTP %d %v", ref.Status, ref.Body["error"])
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, disc["userinfo_endpoint"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+ref.str("access_token"))
		if ui := do(t, req); ui.Status != 200 || ui.Body["sub"] != "alice" {
			t.Errorf("userinfo with the refreshed token: HTTP %d %v", ui.Status, ui.Body)
		}

		// A code is single use, and replaying it revokes what it gave.
		replay := postForm(t, ctx, token, rp, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		if replay.Status != 400 || replay.str("error") != "invalid_grant" {
			t.Errorf("code replay: HTTP %d %v, want 400 invalid_grant", replay.Status, replay.Body["error"])
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, disc["userinfo_endpoint"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
		if ui := do(t, req); ui.Status != 401 {
			t.Errorf("access token still valid after the code was replayed: HTTP %d", ui.Status)
		}
	})

	t.Run("PKCEVerifierMismatchIsRejected", func(t *testing.T) {
		// Same browser: the OP session exists, so the walk has no login page now.
		back, err := op.LoginHTTP(ctx, browser, authURL("s2", "n2", s256("the-right-verifier-0123456789-0123456789")), "alice", "x")
		if err != nil {
			t.Fatal(err)
		}
		code := back.Query().Get("code")
		if code == "" {
			t.Fatalf("no code: error=%q", back.Query().Get("error"))
		}
		bad := postForm(t, ctx, token, rp, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirectURI}, "code_verifier": {"a-wrong-verifier-0123456789-0123456789-abcdef"}})
		if bad.Status != 400 || bad.str("error") != "invalid_grant" {
			t.Errorf("wrong code_verifier: HTTP %d %v, want 400 invalid_grant", bad.Status, bad.Body["error"])
		}
	})

	t.Run("DemoUsers", func(t *testing.T) {
		c := newJarClient(t)
		verifier := randomString(t) + randomString(t)
		back, err := op.LoginHTTP(ctx, c, authURL("s3", "n3", s256(verifier)), "bob", "x")
		if err != nil {
			t.Fatal(err)
		}
		tok := postForm(t, ctx, token, rp, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
			"redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		claims := jwtClaims(t, tok.str("id_token"))
		if claims["sub"] != "bob" || claims["email"] != "bob@example.test" || claims["email_verified"] != false {
			t.Errorf("bob's id_token claims: %v", claims)
		}
	})

	t.Run("ClientCredentialsIntrospectionRevocation", func(t *testing.T) {
		cc := postForm(t, ctx, token, rp, url.Values{"grant_type": {"client_credentials"}, "scope": {"oxd"}})
		if cc.Status != 200 || cc.str("access_token") == "" || cc.str("scope") != "oxd" {
			t.Fatalf("client_credentials: HTTP %d %v scope=%q", cc.Status, cc.Body["error"], cc.str("scope"))
		}
		if cc.Body["expires_in"] != float64(123) {
			t.Errorf("expires_in %v, want 123 from OP_TTL_CLIENT_CREDENTIALS", cc.Body["expires_in"])
		}
		in := postForm(t, ctx, introspect, rp, url.Values{"token": {cc.str("access_token")}})
		if in.Status != 200 || in.Body["active"] != true || in.Body["client_id"] != rp.ID || in.Body["scope"] != "oxd" {
			t.Errorf("introspection: HTTP %d %v", in.Status, in.Body)
		}
		if in := postForm(t, ctx, introspect, rp, url.Values{"token": {"not-a-token"}}); in.Body["active"] != false {
			t.Errorf("introspection of garbage: %v", in.Body)
		}
		if in := postForm(t, ctx, introspect, nil, url.Values{"token": {cc.str("access_token")}}); in.Status < 400 || in.Body["active"] != nil {
			t.Errorf("introspection without client authentication: HTTP %d %v", in.Status, in.Body)
		}
		rv := postForm(t, ctx, disc["revocation_endpoint"].(string), rp, url.Values{"token": {cc.str("access_token")}})
		if rv.Status != 200 {
			t.Errorf("revocation: HTTP %d %v", rv.Status, rv.Body)
		}
		if in := postForm(t, ctx, introspect, rp, url.Values{"token": {cc.str("access_token")}}); in.Body["active"] != false {
			t.Errorf("revoked token still active: %v", in.Body)
		}
	})

	t.Run("RPInitiatedLogout", func(t *testing.T) {
		if idToken == "" {
			t.Fatal("needs the id_token of CodeFlowPKCE, which did not produce one")
		}
		end := disc["end_session_endpoint"].(string) + "?" + url.Values{
			"id_token_hint": {idToken}, "post_logout_redirect_uri": {logoutURI}, "state": {"bye"}}.Encode()
		back, err := op.LogoutHTTP(ctx, browser, end)
		if err != nil {
			t.Fatal(err)
		}
		if back.Scheme+"://"+back.Host+back.Path != logoutURI || back.Query().Get("state") != "bye" {
			t.Fatalf("post-logout redirect to %s", back.Redacted())
		}
		// The OP session is gone: a new authorization request shows the login page again.
		u := authURL("s4", "n4", s256(randomString(t)+randomString(t))) + "&prompt=none"
		c := *browser
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("error") != "login_required" {
			t.Errorf("prompt=none after logout: %d %s, want error=login_required", resp.StatusCode, loc)
		}
	})

	t.Run("UMA", func(t *testing.T) { testUMA(t, ctx, op, rp) })
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func testUMA(t *testing.T, ctx context.Context, op *harness.OIDCProvider, rp *harness.Client) {
	uma, err := op.UMAConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"resource_registration_endpoint", "permission_endpoint", "claims_interaction_endpoint",
		"token_endpoint", "introspection_endpoint"} {
		if v, _ := uma[k].(string); !strings.HasPrefix(v, op.Issuer()+"/") {
			t.Fatalf("uma2-configuration %s = %v", k, uma[k])
		}
	}
	rsetURL := uma["resource_registration_endpoint"].(string)
	permURL := uma["permission_endpoint"].(string)
	token := uma["token_endpoint"].(string)
	introspect := uma["introspection_endpoint"].(string)

	// The resource server has its own client and a PAT (scope uma_protection).
	rs := op.MustRegisterClient(t, map[string]any{
		"redirect_uris": []string{rpBase + "/rs"},
		"grant_types":   []string{"client_credentials"},
		"scope":         "uma_protection oxd",
	})
	patReply := postForm(t, ctx, token, rs, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}})
	pat := patReply.str("access_token")
	if pat == "" {
		t.Fatalf("PAT: HTTP %d %v", patReply.Status, patReply.Body["error"])
	}

	// resource_set CRUD
	st, raw := jsonRequest(t, ctx, http.MethodPost, rsetURL, pat, map[string]any{
		"name": "photos", "resource_scopes": []string{"view", "edit", "deny_all", "claims_email"}})
	var created struct {
		ID string `json:"_id"`
	}
	if st != 201 || json.Unmarshal(raw, &created) != nil || created.ID == "" {
		t.Fatalf("create resource: HTTP %d %s", st, raw)
	}
	rid := created.ID
	if st, raw := jsonRequest(t, ctx, http.MethodGet, rsetURL, pat, nil); st != 200 || !strings.Contains(string(raw), rid) {
		t.Errorf("list resources: HTTP %d %s", st, raw)
	}
	if st, raw := jsonRequest(t, ctx, http.MethodPut, rsetURL+"/"+rid, pat, map[string]any{
		"name": "photos2", "resource_scopes": []string{"view", "edit", "deny_all", "claims_email"}}); st != 200 {
		t.Errorf("update resource: HTTP %d %s", st, raw)
	}
	if st, raw := jsonRequest(t, ctx, http.MethodGet, rsetURL+"/"+rid, pat, nil); st != 200 || !strings.Contains(string(raw), `"photos2"`) {
		t.Errorf("read resource: HTTP %d %s", st, raw)
	}
	if st, _ := jsonRequest(t, ctx, http.MethodGet, rsetURL, "", nil); st != 401 {
		t.Errorf("resource_set without PAT: HTTP %d, want 401", st)
	}
	// A token without uma_protection is not a PAT.
	notPAT := postForm(t, ctx, token, rp, url.Values{"grant_type": {"client_credentials"}, "scope": {"oxd"}}).str("access_token")
	if st, _ := jsonRequest(t, ctx, http.MethodGet, rsetURL, notPAT, nil); st != 401 {
		t.Errorf("resource_set with a non-PAT token: HTTP %d, want 401", st)
	}
	// Another client's PAT does not see the resource.
	other := op.MustRegisterClient(t, map[string]any{"redirect_uris": []string{rpBase + "/o"}, "grant_types": []string{"client_credentials"}, "scope": "uma_protection"})
	otherPAT := postForm(t, ctx, token, other, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}}).str("access_token")
	if st, _ := jsonRequest(t, ctx, http.MethodGet, rsetURL+"/"+rid, otherPAT, nil); st != 404 {
		t.Errorf("foreign PAT reads resource: HTTP %d, want 404", st)
	}

	// The helpers take the t of the (sub)test that calls them: a Fatal on the
	// parent's t from a subtest would stop the wrong goroutine.
	ticketFor := func(t *testing.T, scopes ...string) string {
		t.Helper()
		st, raw := jsonRequest(t, ctx, http.MethodPost, permURL, pat, map[string]any{"resource_id": rid, "resource_scopes": scopes})
		var r struct {
			Ticket string `json:"ticket"`
		}
		if st != 201 || json.Unmarshal(raw, &r) != nil || r.Ticket == "" {
			t.Fatalf("permission %v: HTTP %d %s", scopes, st, raw)
		}
		return r.Ticket
	}
	rptGrant := func(t *testing.T, form url.Values) tokenReply {
		form.Set("grant_type", harness.UMAGrantType)
		return postForm(t, ctx, token, rp, form)
	}
	checkRPT := func(t *testing.T, rpt string, wantScopes ...string) {
		t.Helper()
		in := postForm(t, ctx, introspect, rs, url.Values{"token": {rpt}})
		perms, _ := in.Body["permissions"].([]any)
		if in.Body["active"] != true || len(perms) != 1 {
			t.Fatalf("RPT introspection: %v", in.Body)
		}
		p, _ := perms[0].(map[string]any)
		got := fmt.Sprint(p["resource_scopes"])
		if p["resource_id"] != rid || got != fmt.Sprint(toAny(wantScopes)) || p["exp"] == nil {
			t.Errorf("RPT permission %v, want %s %v", p, rid, wantScopes)
		}
		if _, has := in.Body["scope"]; has {
			t.Errorf("RPT introspection must not carry scope: %v", in.Body)
		}
	}

	t.Run("TicketToRPT", func(t *testing.T) {
		ticket := ticketFor(t, "view")
		r := rptGrant(t, url.Values{"ticket": {ticket}})
		if r.Status != 200 || r.str("access_token") == "" || r.str("token_type") != "Bearer" || r.Body["upgraded"] != false {
			t.Fatalf("uma-ticket grant: HTTP %d %v", r.Status, r.Body["error"])
		}
		if r.Body["expires_in"] != float64(321) {
			t.Errorf("RPT expires_in %v, want 321 from OP_UMA_RPT_TTL", r.Body["expires_in"])
		}
		checkRPT(t, r.str("access_token"), "view")
		if again := rptGrant(t, url.Values{"ticket": {ticket}}); again.Status != 400 || again.str("error") != "invalid_grant" {
			t.Errorf("ticket reuse: HTTP %d %v, want 400 invalid_grant", again.Status, again.Body["error"])
		}
	})

	t.Run("UpgradeRPT", func(t *testing.T) {
		first := rptGrant(t, url.Values{"ticket": {ticketFor(t, "view")}})
		up := rptGrant(t, url.Values{"ticket": {ticketFor(t, "edit")}, "rpt": {first.str("access_token")}})
		if up.Status != 200 || up.Body["upgraded"] != true {
			t.Fatalf("upgrade: HTTP %d %v", up.Status, up.Body)
		}
		checkRPT(t, up.str("access_token"), "view", "edit")
		// An RPT of another client is not upgraded.
		otherRPT := postForm(t, ctx, token, rs, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}}).str("access_token")
		if r := rptGrant(t, url.Values{"ticket": {ticketFor(t, "edit")}, "rpt": {otherRPT}}); r.Body["upgraded"] != false {
			t.Errorf("upgrade of a foreign token: %v", r.Body)
		}
	})

	t.Run("PermissionRequestValidation", func(t *testing.T) {
		if st, _ := jsonRequest(t, ctx, http.MethodPost, permURL, pat, map[string]any{"resource_id": rid, "resource_scopes": []string{"fly"}}); st != 400 {
			t.Errorf("unknown scope: HTTP %d, want 400", st)
		}
		if st, _ := jsonRequest(t, ctx, http.MethodPost, permURL, pat, map[string]any{"resource_id": "nope", "resource_scopes": []string{"view"}}); st != 400 {
			t.Errorf("unknown resource: HTTP %d, want 400", st)
		}
		if st, _ := jsonRequest(t, ctx, http.MethodPost, permURL, otherPAT, map[string]any{"resource_id": rid, "resource_scopes": []string{"view"}}); st != 400 {
			t.Errorf("foreign resource: HTTP %d, want 400", st)
		}
	})

	t.Run("Denied", func(t *testing.T) {
		r := rptGrant(t, url.Values{"ticket": {ticketFor(t, "deny_all")}})
		if r.Status != 403 || r.str("error") != "request_denied" {
			t.Errorf("deny: HTTP %d %v", r.Status, r.Body)
		}
	})

	t.Run("NeedInfoThenClaimsGathering", func(t *testing.T) {
		ticket := ticketFor(t, "claims_email")
		r := rptGrant(t, url.Values{"ticket": {ticket}})
		if r.Status != 403 || r.str("error") != "need_info" {
			t.Fatalf("need_info: HTTP %d %v", r.Status, r.Body)
		}
		newTicket := r.str("ticket")
		if newTicket == "" || newTicket == ticket {
			t.Fatalf("need_info must carry a new ticket")
		}
		if rc, _ := r.Body["required_claims"].([]any); len(rc) != 1 {
			t.Errorf("required_claims %v", r.Body["required_claims"])
		}
		if r.str("redirect_user") != uma["claims_interaction_endpoint"] {
			t.Errorf("redirect_user %q", r.str("redirect_user"))
		}
		gather := func(redirect string) string {
			return uma["claims_interaction_endpoint"].(string) + "?" + url.Values{
				"client_id": {rp.ID}, "ticket": {newTicket}, "claims_redirect_uri": {redirect}, "state": {"cg-state"}}.Encode()
		}
		// An unregistered claims_redirect_uri is refused, without redirecting.
		if _, err := op.GatherClaimsHTTP(ctx, newJarClient(t), gather("http://127.0.0.1:1/evil"), "alice@example.test"); err == nil {
			t.Errorf("claims gathering accepted an unregistered claims_redirect_uri")
		}
		back, err := op.GatherClaimsHTTP(ctx, newJarClient(t), gather(claimsURI), "alice@example.test")
		if err != nil {
			t.Fatal(err)
		}
		if back.Scheme+"://"+back.Host+back.Path != claimsURI || back.Query().Get("state") != "cg-state" {
			t.Fatalf("claims redirect to %s", back.Redacted())
		}
		gathered := back.Query().Get("ticket")
		if gathered == "" || gathered == newTicket {
			t.Fatalf("claims redirect must carry a new ticket")
		}
		ok := rptGrant(t, url.Values{"ticket": {gathered}})
		if ok.Status != 200 {
			t.Fatalf("RPT after claims gathering: HTTP %d %v", ok.Status, ok.Body)
		}
		checkRPT(t, ok.str("access_token"), "claims_email")
	})

	t.Run("NeedInfoWithPushedClaims", func(t *testing.T) {
		r := rptGrant(t, url.Values{"ticket": {ticketFor(t, "claims_email")}})
		if r.str("error") != "need_info" {
			t.Fatalf("need_info: HTTP %d %v", r.Status, r.Body)
		}
		ok := rptGrant(t, url.Values{"ticket": {r.str("ticket")}, "claim_token": {"eyJhbGciOiJub25lIn0.e30."},
			"claim_token_format": {harness.IDTokenClaimFormat}})
		if ok.Status != 200 || ok.str("access_token") == "" {
			t.Fatalf("RPT with pushed claims: HTTP %d %v", ok.Status, ok.Body)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if st, _ := jsonRequest(t, ctx, http.MethodDelete, rsetURL+"/"+rid, pat, nil); st != 204 {
			t.Errorf("delete: HTTP %d", st)
		}
		if st, _ := jsonRequest(t, ctx, http.MethodGet, rsetURL+"/"+rid, pat, nil); st != 404 {
			t.Errorf("read after delete: HTTP %d", st)
		}
	})
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ---- Redis ----

func TestRedis(t *testing.T) {
	addr := harness.StartRedis(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("redis on %s", addr)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := testCtx(t)
	if err := rdb.Set(ctx, "e2e:key", "value-1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.Get(ctx, "e2e:key").Result()
	if err != nil || got != "value-1" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if n, err := rdb.Exists(ctx, "e2e:missing").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS missing = %d, %v", n, err)
	}
}

// ---- Chromium ----

func TestChromium(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			fmt.Fprintf(w, `<!DOCTYPE html><title>done</title><h1 id="greeting">Hello, %s!</h1>`, template(r.PostForm.Get("name")))
			return
		}
		fmt.Fprint(w, `<!DOCTYPE html><title>form</title>
<form method="post"><input id="name" name="name"><button id="go" type="submit">Go</button></form>`)
	}))
	defer srv.Close()

	ctx := harness.NewBrowser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#greeting")),
	)
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#greeting")))
	if err != nil || text != "Hello, Ada!" {
		t.Fatalf("greeting %q, %v", text, err)
	}
	p := harness.Screenshot(ctx, t, "greeting")
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 100 || string(b[:8]) != "\x89PNG\r\n\x1a\n" {
		t.Fatalf("screenshot %s is not a PNG (%d bytes, %v)", p, len(b), err)
	}
	if filepath.Base(filepath.Dir(p)) != "artifacts" {
		t.Errorf("screenshot saved to %s, want e2e/artifacts", p)
	}
}

func template(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")
	return r.Replace(s)
}

// TestChromiumLoginAtOP runs the real browser through the real OP's login and
// consent pages to a redirect_uri served by the test.
func TestChromiumLoginAtOP(t *testing.T) {
	op := harness.StartOIDCProvider(t)
	codes := make(chan url.Values, 1)
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case codes <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, `<!DOCTYPE html><title>back</title><h1 id="done">code received</h1>`)
	}))
	defer rpSrv.Close()
	rp := op.MustRegisterClient(t, map[string]any{
		"redirect_uris": []string{rpSrv.URL + "/callback"},
		"grant_types":   []string{"authorization_code"},
		"scope":         "openid email",
	})
	auth := op.URL("/auth") + "?" + url.Values{"client_id": {rp.ID}, "response_type": {"code"}, "scope": {"openid email"},
		"redirect_uri": {rpSrv.URL + "/callback"}, "state": {"st-b"}, "nonce": {"n-b"}}.Encode()

	ctx := harness.NewBrowser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(auth),
		chromedp.WaitVisible(chromedp.CSS(`input[name="login"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), "carol"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "secret"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS(`input[name="prompt"][value="consent"]`)),
	)
	if err != nil {
		harness.Screenshot(ctx, t, "login-failed")
		t.Fatal(err)
	}
	harness.Screenshot(ctx, t, "consent")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)),
	); err != nil {
		harness.Screenshot(ctx, t, "consent-failed")
		t.Fatal(err)
	}
	select {
	case q := <-codes:
		if q.Get("code") == "" || q.Get("state") != "st-b" {
			t.Fatalf("callback: state=%q code set=%v error=%q", q.Get("state"), q.Get("code") != "", q.Get("error"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
}

// ---- oxd-node ----

func TestOxdNodeImportable(t *testing.T) {
	dir := harness.OxdNodeDir(t)
	node := harness.NodePath(t)
	cmd := exec.Command(node, "-e", `const o = require('oxd-node'); if (typeof o !== 'function') { throw new Error('oxd-node does not export a function'); }
process.stdout.write(require('oxd-node/package.json').version)`)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("require('oxd-node'): %v\n%s", err, out)
	}
	if string(out) != "3.1.4" {
		t.Fatalf("oxd-node version %q, want 3.1.4", out)
	}
}

// ---- process hygiene ----

func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == syscall.ESRCH
}

// TestHarnessLeavesNoProcess checks that the OP and Redis started in a subtest
// are gone (process and process group) once the subtest is over.
func TestHarnessLeavesNoProcess(t *testing.T) {
	var opPID int
	var redisAddr string
	t.Run("start", func(t *testing.T) {
		op := harness.StartOIDCProvider(t)
		opPID = op.Process().PID()
		redisAddr = harness.StartRedis(t)
	})
	if t.Failed() || opPID == 0 {
		return
	}
	if !processGone(opPID) || syscall.Kill(-opPID, 0) != syscall.ESRCH {
		t.Errorf("oidc-provider (pid %d) still running after its test ended", opPID)
	}
	if err := harness.RedisPing(context.Background(), redisAddr); err == nil {
		t.Errorf("redis on %s still answers after its test ended", redisAddr)
	}
}
