package oxdchi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func hello(w http.ResponseWriter, r *http.Request) {
	u, ok := oxdchi.User(r)
	if !ok {
		http.Error(w, "no user", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "hello %s", u.Name())
}

func item(w http.ResponseWriter, r *http.Request) {
	d, _ := oxd.UMAResult(r)
	fmt.Fprintf(w, "item %s via %s", chi.URLParam(r, "id"), d.Template)
}

func TestLoginThroughChi(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
		r.With(auth.RequireLogin).Get("/private", hello)
		r.Get(adaptertest.LoggedOutPath, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "bye") })
		return r
	})
	res := env.Login(t, "/private", "alice", "alice-password")
	if res.Status != http.StatusOK || res.Body != "hello Alice Example" {
		t.Fatalf("after login: %d %q", res.Status, res.Body)
	}
	// The explicit login route: a signed-in browser goes to return_to.
	res = env.Navigate(t, "/login?return_to=/private")
	if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/private" {
		t.Fatalf("login while signed in: %d %q", res.Status, res.Header.Get("Location"))
	}
	// A GET logout is refused by default.
	if res := env.Navigate(t, "/logout"); res.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /logout: %d", res.Status)
	}
	res = env.Logout(t)
	if loc := res.Header.Get("Location"); res.Status != http.StatusSeeOther || !strings.HasPrefix(loc, env.Server.OP.Issuer()) {
		t.Fatalf("logout: %d %q", res.Status, loc)
	}
	if q := adaptertest.Query(res.Header.Get("Location")); q.Get("post_logout_redirect_uri") != env.URL+adaptertest.LoggedOutPath {
		t.Fatalf("logout URL without our post_logout_redirect_uri: %v", q)
	}
	if res := env.Navigate(t, "/private"); res.Status != http.StatusSeeOther {
		t.Fatalf("after logout /private: %d, want a redirect to the OP", res.Status)
	}
}

// Two concrete paths of one chi route are one UMA resource: the RPT
// obtained for /api/photos/1 opens /api/photos/2, oxd knows one path, and
// every check names the template.
func TestUMAOneResourcePerChiRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Route("/api", func(r chi.Router) {
			r.With(oxdchi.UMAProtect(auth, "GET /api/photos/{id}", "photos.read")).Get("/photos/{id}", item)
		})
		return r
	})
	rpt := env.RPT(t, "/api/photos/1")
	for _, p := range []string{"/api/photos/1", "/api/photos/2"} {
		res := env.WithRPT(t, p, rpt)
		want := "item " + strings.TrimPrefix(p, "/api/photos/") + " via /api/photos/{id}"
		if res.Status != http.StatusOK || res.Body != want {
			t.Fatalf("GET %s with the RPT: %d %q, want %q", p, res.Status, res.Body, want)
		}
	}
	if got := env.ProtectedPaths(); !slices.Equal(got, []string{"/api/photos/{id}"}) {
		t.Fatalf("registered resources %q", got)
	}
	checked := env.CheckedPaths()
	if len(checked) == 0 {
		t.Fatal("no uma_rs_check_access call")
	}
	for _, p := range checked {
		if p != "/api/photos/{id}" {
			t.Fatalf("uma_rs_check_access with path %q", p)
		}
	}
}

// A guard attached with Use inside a sub-router runs before chi has
// routed the sub-router: RouteTemplates gives it the complete pattern;
// without it the partial pattern is refused, never let through.
func TestRouteTemplatesInSubRouterMiddleware(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Route("/v2", func(r chi.Router) {
			r.Use(oxdchi.RouteTemplates, auth.UMAProtect("GET /v2/items/{id}", "items.read"))
			r.Get("/items/{id}", item)
		})
		r.Route("/v3", func(r chi.Router) {
			r.Use(auth.UMAProtect("GET /v3/items/{id}", "items.read"))
			r.Get("/items/{id}", item)
		})
		return r
	})
	rpt := env.RPT(t, "/v2/items/a")
	if res := env.WithRPT(t, "/v2/items/b", rpt); res.Status != http.StatusOK {
		t.Fatalf("/v2/items/b: %d %q", res.Status, res.Body)
	}
	res := env.Do(t, http.MethodGet, "/v3/items/a", http.Header{"Accept": {"application/json"}})
	if res.Status != http.StatusInternalServerError {
		t.Fatalf("/v3 without RouteTemplates: %d, want 500 (partial pattern refused)", res.Status)
	}
}

// RoutePattern in a root middleware equals chi's own pattern once routing
// is done, for nested, mounted and wildcard routes.
func TestRoutePatternMatchesChi(t *testing.T) {
	var early, late string
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			early = oxdchi.RoutePattern(req)
			next.ServeHTTP(w, req)
		})
	})
	record := func(w http.ResponseWriter, req *http.Request) {
		late = chi.RouteContext(req.Context()).RoutePattern()
	}
	r.Get("/", record)
	r.Get("/a/{x}", record)
	r.Get("/files/*", record)
	r.Route("/api", func(r chi.Router) {
		r.Get("/", record)
		r.Get("/users/{id}/", record)
		r.Route("/v1", func(r chi.Router) {
			r.Get("/things/{id:[0-9]+}", record)
		})
	})
	sub := chi.NewRouter()
	sub.Get("/deep/{y}", record)
	r.Mount("/m", sub)
	r.With(func(h http.Handler) http.Handler { return h }).Get("/inline/{z}", record)

	for _, p := range []string{"/", "/a/1", "/files/x/y.txt", "/api/", "/api/users/7/", "/api/v1/things/42", "/m/deep/q", "/inline/k"} {
		early, late = "", ""
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", p, rec.Code)
		}
		if early == "" || early != late {
			t.Errorf("%s: RoutePattern before routing %q, chi after routing %q", p, early, late)
		}
	}
	// No match, no chi: "".
	early = "unset"
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if early != "" {
		t.Errorf("unmatched path: %q", early)
	}
	if p := oxdchi.RoutePattern(httptest.NewRequest(http.MethodGet, "/", nil)); p != "" {
		t.Errorf("outside chi: %q", p)
	}
}
