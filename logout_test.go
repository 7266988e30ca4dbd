package oxd

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestLogout: POST /logout asks oxd for the OP's end-session URL with
// id_token_hint and post_logout_redirect_uri, destroys the session and
// redirects there.
func TestLogout(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	r := rg.do(b, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "https://op.example/end_session?") {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	if h, _ := rg.fake.param(oxdclient.CmdGetLogoutURI, "id_token_hint").(string); !strings.HasPrefix(h, "IDT-") {
		t.Fatalf("id_token_hint %q", h)
	}
	if p := rg.fake.param(oxdclient.CmdGetLogoutURI, "post_logout_redirect_uri"); p != "https://app.example/logged-out" {
		t.Fatalf("post_logout_redirect_uri %v", p)
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("still logged in")
	}
	// Logging out without a session: no oxd call, straight to the landing.
	calls := rg.fake.count(oxdclient.CmdGetLogoutURI)
	r = rg.do(rg.browser(), "POST", "/logout", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "https://app.example/logged-out" || rg.fake.count(oxdclient.CmdGetLogoutURI) != calls {
		t.Fatalf("anonymous logout: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestLogoutCrossOriginRefused: a cross-site POST (logout CSRF) is refused
// and the user stays logged in.
func TestLogoutCrossOriginRefused(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		r := rg.do(b, "POST", "/logout", h)
		if r.status != http.StatusForbidden || !errors.Is(rg.lastErr(), ErrCrossOrigin) {
			t.Fatalf("%v: %d", h, r.status)
		}
	}
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatal("logged out by a cross-site request")
	}
	if rg.fake.count(oxdclient.CmdGetLogoutURI) != 0 {
		t.Fatal("oxd called")
	}
}

// TestLogoutMethods: GET is refused unless configured.
func TestLogoutMethods(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	if r := rg.get(b, "/logout"); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", r.status)
	}
	if r := rg.get(b, "/private/"); r.status != 200 {
		t.Fatal("logged out by GET")
	}
	rg2 := newRig(t, rigOpts{cfg: func(c *Config) { c.LogoutMethods = []string{"GET", "POST"} }})
	b2 := rg2.browser()
	rg2.login(b2, "/private/", "alice")
	if r := rg2.get(b2, "/logout"); r.status != http.StatusSeeOther {
		t.Fatalf("configured GET: %d", r.status)
	}
	if r := rg2.get(b2, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("still logged in")
	}
}

// TestLogoutLocalOnly: when oxd cannot give the end-session URL (no
// end_session_endpoint at the OP, oxd down), the local session is still
// destroyed and the error handler is told with ErrLocalLogoutOnly and
// status 200: never a silent local-only logout.
func TestLogoutLocalOnly(t *testing.T) {
	for name, fail := range map[string]error{
		"no end_session_endpoint": &oxdclient.Error{Code: oxdclient.CodeNoEndSessionEndpoint},
		"oxd down":                oxdclient.ErrUnavailable,
	} {
		t.Run(name, func(t *testing.T) {
			rg := newRig(t, rigOpts{})
			b := rg.browser()
			rg.login(b, "/private/", "alice")
			rg.fake.setFail(oxdclient.CmdGetLogoutURI, fail)
			r := rg.do(b, "POST", "/logout", nil)
			if r.status != http.StatusOK || r.header.Get("Location") != "" || !errors.Is(rg.lastErr(), ErrLocalLogoutOnly) {
				t.Fatalf("%d %q %v", r.status, r.header.Get("Location"), rg.lastErr())
			}
			if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
				t.Fatal("still logged in")
			}
		})
	}
}
