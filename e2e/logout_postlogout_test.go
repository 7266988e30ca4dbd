package e2e_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// TestLogoutWithoutPostLogoutURICertifiedOP: a site registered without a
// post-logout redirect URI, whose client at the certified OP has none
// registered either (static profile), logs out at the OP: get_logout_uri
// answers (no refusal) with id_token_hint and no post_logout_redirect_uri,
// or with client_id when no ID token is known (RP-Initiated Logout 1.0
// §2), the OP accepts both (its sign-out confirmation, then its own
// "signed out" page, never its error page) and its session ends.
func TestLogoutWithoutPostLogoutURICertifiedOP(t *testing.T) {
	op := harness.StartOIDCProvider(t, harness.WithStaticProfile(
		harness.WithStaticURIs([]string{harness.DefaultStaticRedirectURI}, []string{})))
	sc := op.StaticClient(t, clientauth.MethodSecretBasic)
	ctx := testCtx(t)
	c := oxdclient.New(matrixEngine(t), oxdclient.Config{})
	p := oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: sc.RedirectURIs[0], Scope: []string{"openid", "profile"},
		ClientID: sc.ID, ClientSecret: oxdclient.Secret(sc.Secret), ClientTokenEndpointAuthMethod: string(sc.Method),
	}
	reg, err := c.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: p})
	if err != nil {
		t.Fatal(err)
	}

	for _, withIDToken := range []bool{true, false} {
		browser := newJarClient(t)
		au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: reg.OxdID})
		if err != nil {
			t.Fatal(err)
		}
		back, err := op.LoginHTTP(ctx, browser, au.AuthorizationURL, "alice", "x")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: reg.OxdID, Code: oxdclient.Secret(back.Query().Get("code")), State: back.Query().Get("state")})
		if err != nil {
			t.Fatal(err)
		}
		lp := oxdclient.GetLogoutURIParams{OxdID: reg.OxdID, State: "bye"}
		if withIDToken {
			lp.IDTokenHint = tok.IDToken
		}
		lo, err := c.GetLogoutURI(ctx, lp)
		if err != nil {
			t.Fatalf("get_logout_uri without a post-logout URI (id token %v): %v", withIDToken, err)
		}
		u, err := url.Parse(lo.URI)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Has("post_logout_redirect_uri") || q.Has("id_token_hint") != withIDToken || q.Has("client_id") == withIDToken ||
			(!withIDToken && q.Get("client_id") != sc.ID) || q.Get("state") != "bye" {
			t.Fatalf("logout URL parameters (id token %v): %v", withIDToken, keysOf(q))
		}
		end, err := op.LogoutHTTP(ctx, browser, lo.URI)
		if err != nil {
			t.Fatalf("the OP refused the logout (id token %v): %v", withIDToken, err)
		}
		if !strings.HasPrefix(end.String(), op.Issuer()) {
			t.Errorf("the logout left the OP for %s", end.Redacted())
		}
		// The OP's session is gone: a silent authorization needs a login.
		au, err = c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: reg.OxdID, Prompt: "none"})
		if err != nil {
			t.Fatal(err)
		}
		silent, err := op.LoginHTTP(ctx, browser, au.AuthorizationURL, "alice", "x")
		if err != nil {
			t.Fatal(err)
		}
		if e := silent.Query().Get("error"); e != "login_required" {
			t.Errorf("after logout (id token %v) prompt=none answered %q, want login_required", withIDToken, e)
		}
	}
}

func keysOf(q url.Values) []string {
	var k []string
	for key := range q {
		k = append(k, key)
	}
	return k
}
