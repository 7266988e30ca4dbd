package glue_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
	"github.com/oxdgo/oxd/adapters/internal/glue"
)

func paths(rs []glue.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Path)
	}
	return out
}

// Handlers are auth's handlers at the set paths, in a fixed order; the
// empty paths are left out.
func TestHandlers(t *testing.T) {
	var got []glue.Route
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		got = glue.Handlers(auth, glue.Routes{Login: "/in", Callback: adaptertest.CallbackPath, Logout: "/out", ClaimsCallback: adaptertest.ClaimsPath})
		mux := http.NewServeMux()
		for _, r := range got {
			mux.Handle(r.Path, r.Handler)
		}
		return mux
	})
	if p := paths(got); !slices.Equal(p, []string{"/in", adaptertest.CallbackPath, "/out", adaptertest.ClaimsPath}) {
		t.Fatalf("paths %q", p)
	}
	// Each path has its handler: login sends the browser to the OP, the
	// callback and the claims callback refuse a request without state,
	// logout refuses GET.
	if r := env.Navigate(t, "/in"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), env.Server.OP.Issuer()) {
		t.Errorf("login: %d %q", r.Status, r.Header.Get("Location"))
	}
	for _, p := range []string{adaptertest.CallbackPath, adaptertest.ClaimsPath} {
		if r := env.Navigate(t, p); r.Status != http.StatusBadRequest {
			t.Errorf("%s without state: %d", p, r.Status)
		}
	}
	if r := env.Navigate(t, "/out"); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") == "" {
		t.Errorf("GET logout: %d %q", r.Status, r.Header.Get("Allow"))
	}

	auth := env.Auth
	if p := paths(glue.Handlers(auth, glue.DefaultRoutes)); !slices.Equal(p, []string{"/login", "/callback", "/logout"}) {
		t.Errorf("DefaultRoutes: %q", p)
	}
	if p := paths(glue.Handlers(auth, glue.Routes{Logout: "/bye"})); !slices.Equal(p, []string{"/bye"}) {
		t.Errorf("logout only: %q", p)
	}
	if p := paths(glue.Handlers(auth, glue.Routes{BackChannelLogout: "/bc", FrontChannelLogout: "/fc", Logout: "/out"})); !slices.Equal(p, []string{"/out", "/bc", "/fc"}) {
		t.Errorf("logout channels: %q", p)
	}
	if p := paths(glue.Handlers(auth, glue.Routes{})); len(p) != 0 {
		t.Errorf("no paths: %q", p)
	}
}

// WithTemplate gives the guard the router's template; for no route it
// gives one that no declaration has, so the guard refuses even when
// another router's Request.Pattern (here a ServeMux's) names the
// declared template.
func TestWithTemplate(t *testing.T) {
	const tmpl = "/photos/{id}"
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		guard := auth.UMAProtect("GET "+tmpl, "photos.read")
		// inner is a ServeMux whose route has the declared template as
		// Request.Pattern; with a router template, WithTemplate gives it.
		inner := func(template *string) http.Handler {
			h := guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) }))
			m := http.NewServeMux()
			m.Handle(tmpl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if template != nil {
					r = glue.WithTemplate(r, *template)
				}
				h.ServeHTTP(w, r)
			}))
			return m
		}
		none, other, same := "", "/other/{id}", tmpl
		mux := http.NewServeMux()
		for prefix, template := range map[string]*string{"/pattern": nil, "/matched": &same, "/none": &none, "/other": &other} {
			mux.Handle(prefix+"/", http.StripPrefix(prefix, inner(template)))
		}
		return mux
	})
	api := http.Header{"Accept": {"application/json"}}
	// Request.Pattern alone, and the router's template: a decision (the
	// UMA challenge).
	for _, p := range []string{"/pattern/photos/1", "/matched/photos/1"} {
		if r := env.Do(t, http.MethodGet, p, api); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d, want the UMA challenge", p, r.Status)
		}
	}
	// No route, or another route, in the router: refused although
	// Request.Pattern is the declared template; the handler never runs,
	// no challenge.
	for _, p := range []string{"/none/photos/1", "/other/photos/1"} {
		r := env.Do(t, http.MethodGet, p, api)
		if r.Status < 300 || r.Status == http.StatusUnauthorized || strings.Contains(r.Body, "served") {
			t.Errorf("%s: %d %q, want a refusal", p, r.Status, r.Body)
		}
	}
	if glue.NoRoute == "" || strings.Contains(glue.NoRoute, "/") {
		t.Errorf("NoRoute %q could be a declared template", glue.NoRoute)
	}
}

// TestLogoutChannelHandlers: the back- and front-channel paths get those
// handlers (without a session index both answer 501, never a redirect to
// the OP as the login handlers would).
func TestLogoutChannelHandlers(t *testing.T) {
	var auth *oxd.Auth
	adaptertest.New(t, func(a *oxd.Auth) http.Handler { auth = a; return http.NewServeMux() })
	mux := http.NewServeMux()
	for _, r := range glue.Handlers(auth, glue.Routes{BackChannelLogout: "/bc", FrontChannelLogout: "/fc"}) {
		mux.Handle(r.Path, r.Handler)
	}
	for _, c := range []struct{ method, path, ctype string }{
		{http.MethodPost, "/bc", "application/json"},
		{http.MethodGet, "/fc", "text/plain"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, c.path, strings.NewReader("logout_token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotImplemented || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d %q %q; want 501 %s, no-store", c.method, c.path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"), c.ctype)
		}
	}
}
