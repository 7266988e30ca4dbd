package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestLoginFlowReturnToAndClaims: a browser asking for a protected page is
// sent to the OP, comes back through the callback and lands on the page it
// asked for, with the user in the request context.
func TestLoginFlowReturnToAndClaims(t *testing.T) {
	for _, wrapped := range []bool{true, false} {
		name := "LoadAndSave"
		if !wrapped {
			name = "self-loading"
		}
		t.Run(name, func(t *testing.T) {
			rg := newRig(t, rigOpts{noLoadAndSave: !wrapped})
			b := rg.browser()
			r := rg.login(b, "/private/page?x=1&y=%2F", "alice")
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/page?x=1&y=%2F" {
				t.Fatalf("callback: %d %q", r.status, r.header.Get("Location"))
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("callback Cache-Control %q", r.header.Get("Cache-Control"))
			}
			r = rg.get(b, "/private/page?x=1&y=%2F")
			if r.status != 200 || !strings.Contains(r.body, "sub=alice email=alice@example.test name=User alice at=AT-") {
				t.Fatalf("protected page: %d %q", r.status, r.body)
			}
			if got := rg.fake.param(oxdclient.CmdGetAuthorizationURL, "oxd_id"); got != "oxd-id-1" {
				t.Fatalf("oxd_id sent %v", got)
			}
			if n := rg.fake.count(oxdclient.CmdGetTokensByCode); n != 1 {
				t.Fatalf("get_tokens_by_code calls %d", n)
			}
			// Logged-in requests make no oxd call.
			before := rg.fake.total()
			for range 5 {
				rg.get(b, "/private/other")
			}
			if rg.fake.total() != before {
				t.Fatal("oxd called on a logged-in request")
			}
		})
	}
}

// TestSeveralTabsLogInAtOnce: logins started in several tabs of one browser
// complete in any order, each to its own return-to.
func TestSeveralTabsLogInAtOnce(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	s1 := rg.startLogin(b, "/private/one")
	s2 := rg.startLogin(b, "/private/two")
	s3 := rg.startLogin(b, "/private/three")
	for _, c := range []struct{ st, want string }{{s2, "/private/two"}, {s1, "/private/one"}, {s3, "/private/three"}} {
		r := rg.finish(b, c.st, "alice")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != c.want {
			t.Fatalf("%s: %d %q (%v)", c.want, r.status, r.header.Get("Location"), rg.lastErr())
		}
	}
}

// TestPendingLoginLimit: beyond the limit the oldest pending login is
// dropped.
func TestPendingLoginLimit(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.PendingLoginLimit = 3 }})
	b := rg.browser()
	var states []string
	for i := range 5 {
		states = append(states, rg.startLogin(b, "/private/"+string(rune('a'+i))))
	}
	r := rg.finish(b, states[0], "alice")
	if r.status != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrStateMismatch) {
		t.Fatalf("oldest: %d %v", r.status, rg.lastErr())
	}
	r = rg.finish(b, states[4], "alice")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/e" {
		t.Fatalf("newest: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestAuthorizationURLWithoutState: an oxd answer without a usable state is
// a 502, not a login that can never complete.
func TestAuthorizationURLWithoutState(t *testing.T) {
	rg := newRig(t, rigOpts{})
	for _, u := range []string{"https://op.example/authorize?client_id=x", "/relative?state=x", "https://op.example/a?state=1&state=2", "javascript:alert(1)//?state=x"} {
		a, err := New(oxdclient.New(&fixedAuthURL{u}, oxdclient.Config{}), rg.sm, Config{OxdID: "x", PostLogoutRedirectURI: "https://app.example/"})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "https://app.example/private/", nil)
		rg.sm.LoadAndSave(a.RequireLogin(http.NotFoundHandler())).ServeHTTP(w, req)
		if w.Code != http.StatusBadGateway || w.Header().Get("Location") != "" {
			t.Fatalf("%q: %d %q", u, w.Code, w.Header().Get("Location"))
		}
	}
}

type fixedAuthURL struct{ u string }

func (f *fixedAuthURL) Do(_ context.Context, _ string, _, result any) error {
	b, _ := json.Marshal(map[string]string{"authorization_url": f.u})
	return json.Unmarshal(b, result)
}

// TestLoginHandler: a logged-in browser goes straight to the (validated)
// return-to; methods other than GET/HEAD are refused.
func TestLoginHandler(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	r := rg.login(b, "/login?return_to="+url.QueryEscape("/private/from-link"), "alice")
	if r.header.Get("Location") != "/private/from-link" {
		t.Fatalf("return_to: %q", r.header.Get("Location"))
	}
	calls := rg.fake.total()
	for q, want := range map[string]string{"/private/x": "/private/x", "//evil.example": "/", "": "/"} {
		r := rg.get(b, "/login?return_to="+url.QueryEscape(q))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Fatalf("%q: %d %q", q, r.status, r.header.Get("Location"))
		}
	}
	if rg.fake.total() != calls {
		t.Fatal("oxd called for a logged-in browser")
	}
	if r := rg.do(b, "POST", "/login", nil); r.status != http.StatusMethodNotAllowed || !errors.Is(rg.lastErr(), ErrMethodNotAllowed) {
		t.Fatalf("POST: %d", r.status)
	}
}
