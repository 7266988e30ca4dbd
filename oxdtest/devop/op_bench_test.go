package devop

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkOPCodeFlow measures one full login against the OP alone:
// authorization request and login form (in process), code exchange with
// PKCE and userinfo (over loopback HTTP). It is the "directly against the
// OP" side of a login-through-the-engine comparison.
func BenchmarkOPCodeFlow(b *testing.B) {
	op := newTestOP(b, OPConfig{})
	c := register(b, op, defaultMeta())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		verifier, challenge := pkcePair()
		loc, err := op.Login(ctx, authURL(op, c, authParams{state: "s", nonce: "n", challenge: challenge}), "alice", "alice-password")
		if err != nil {
			b.Fatal(err)
		}
		res, tok := token(b, op, c, url.Values{
			"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {testRedirect}, "code_verifier": {verifier},
		})
		if res.StatusCode != http.StatusOK {
			b.Fatal(tok)
		}
		if res, _ := doJSON(b, http.MethodGet, op.Issuer()+"/userinfo", tok["access_token"].(string), nil); res.StatusCode != http.StatusOK {
			b.Fatal(res.Status)
		}
	}
}

// BenchmarkOPUMAGrant measures permission ticket + uma-ticket grant +
// RPT introspection, the AS side of one uncached UMA check.
func BenchmarkOPUMAGrant(b *testing.B) {
	op := newTestOP(b, OPConfig{})
	rs := register(b, op, defaultMeta())
	pat := clientToken(b, op, rs, "uma_protection")
	res, body := doJSON(b, http.MethodPost, op.Issuer()+"/uma/resource_set", pat, map[string]any{"resource_scopes": []string{"view"}})
	if res.StatusCode != http.StatusCreated {
		b.Fatal(string(body))
	}
	rid := decode(b, body)["_id"].(string)
	b.ReportAllocs()
	for b.Loop() {
		res, body := doJSON(b, http.MethodPost, op.Issuer()+"/uma/permission", pat, map[string]any{"resource_id": rid, "resource_scopes": []string{"view"}})
		if res.StatusCode != http.StatusCreated {
			b.Fatal(string(body))
		}
		res, m := token(b, op, rs, url.Values{"grant_type": {GrantTypeUMATicket}, "ticket": {decode(b, body)["ticket"].(string)}})
		if res.StatusCode != http.StatusOK {
			b.Fatal(m)
		}
		if in := introspect(b, op, rs, m["access_token"].(string)); in["active"] != true {
			b.Fatal(in)
		}
	}
}
