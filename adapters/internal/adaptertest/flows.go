package adaptertest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oxdgo/oxd"
)

// Hello is the body of a handler behind RequireLogin in CheckLogin.
func Hello(u *oxd.User, ok bool) string {
	if !ok {
		return "no user"
	}
	return "hello " + u.Claim("name")
}

// CheckLogin checks a router with the adapter's Mount(DefaultRoutes),
// PrivatePath behind RequireLogin answering Hello, and LoggedOutPath: a
// browser signs in at the OP as alice and reaches PrivatePath; an API
// request with the session passes; the explicit login route sends a
// signed-in browser to return_to; GET logout is refused; the logout
// sends the browser to the OP's end-session endpoint with our
// post_logout_redirect_uri; afterwards a browser is sent to the OP again
// and an API request gets 401 without reaching the handler.
func (e *Env) CheckLogin(t *testing.T) {
	t.Helper()
	api := http.Header{"Accept": {"application/json"}}
	res := e.Login(t, PrivatePath, "alice", "alice-password")
	if res.Status != http.StatusOK || res.Body != "hello Alice Example" {
		t.Fatalf("after login: %d %q", res.Status, res.Body)
	}
	if res := e.Do(t, http.MethodGet, PrivatePath, api); res.Status != http.StatusOK {
		t.Fatalf("API request with the session: %d", res.Status)
	}
	res = e.Navigate(t, LoginPath+"?return_to="+PrivatePath)
	if res.Status != http.StatusSeeOther || res.Header.Get("Location") != PrivatePath {
		t.Fatalf("login while signed in: %d %q", res.Status, res.Header.Get("Location"))
	}
	if res := e.Navigate(t, LogoutPath); res.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", LogoutPath, res.Status)
	}
	res = e.Logout(t)
	if loc := res.Header.Get("Location"); res.Status != http.StatusSeeOther || !strings.HasPrefix(loc, e.Server.OP.Issuer()) {
		t.Fatalf("logout: %d %q", res.Status, loc)
	}
	if q := Query(res.Header.Get("Location")); q.Get("post_logout_redirect_uri") != e.URL+LoggedOutPath {
		t.Fatalf("logout URL without our post_logout_redirect_uri: %v", q)
	}
	if res := e.Navigate(t, PrivatePath); res.Status != http.StatusSeeOther {
		t.Fatalf("after logout, browser: %d, want a redirect to the OP", res.Status)
	}
	if res := e.Do(t, http.MethodGet, PrivatePath, api); res.Status != http.StatusUnauthorized || strings.Contains(res.Body, "hello") {
		t.Fatalf("after logout, API request: %d %q", res.Status, res.Body)
	}
}

// PrivatePath is the route behind RequireLogin in CheckLogin.
const PrivatePath = "/private"

// Item is the body of a guarded handler in CheckOneResource: the id path
// parameter and the template of the UMA decision.
func Item(r *http.Request, id string) string {
	d, _ := oxd.UMAResult(r)
	return fmt.Sprintf("item %s via %s", id, d.Template)
}

// CheckOneResource checks that the concrete paths prefix+id (each id a
// path segment) of one guarded route are one UMA resource: the RPT
// obtained for the first opens all of them and each answers Item with
// template, every uma_rs_check_access names template, and without an RPT
// the chain stops at the guard (401, empty body).
func (e *Env) CheckOneResource(t *testing.T, prefix, template string, ids ...string) {
	t.Helper()
	before := len(e.CheckedPaths())
	rpt := e.RPT(t, prefix+ids[0])
	for _, id := range ids {
		res := e.WithRPT(t, prefix+id, rpt)
		if want := "item " + id + " via " + template; res.Status != http.StatusOK || res.Body != want {
			t.Fatalf("GET %s%s with the RPT: %d %q, want %q", prefix, id, res.Status, res.Body, want)
		}
	}
	if !slices.Contains(e.ProtectedPaths(), template) {
		t.Fatalf("registered resources %q, without %q", e.ProtectedPaths(), template)
	}
	checked := e.CheckedPaths()[before:]
	if len(checked) == 0 {
		t.Fatalf("no uma_rs_check_access for %s", template)
	}
	for _, p := range checked {
		if p != template {
			t.Fatalf("uma_rs_check_access with path %q, want %q", p, template)
		}
	}
	res := e.Do(t, http.MethodGet, prefix+"none", nil)
	if res.Status != http.StatusUnauthorized || res.Body != "" {
		t.Fatalf("no RPT: %d %q", res.Status, res.Body)
	}
}

// CheckRefused checks that a GET of path (an API request without RPT) is
// refused by a guard whose declared template is not the route's: not a
// 2xx, and the handler (answering Item) did not run.
func (e *Env) CheckRefused(t *testing.T, path string) {
	t.Helper()
	res := e.Do(t, http.MethodGet, path, http.Header{"Accept": {"application/json"}})
	if res.Status < 300 || strings.HasPrefix(res.Body, "item ") {
		t.Fatalf("GET %s through a guard declared for another template: %d %q, want a refusal", path, res.Status, res.Body)
	}
}
