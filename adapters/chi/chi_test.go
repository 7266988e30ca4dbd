package oxdchi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func hello(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, adaptertest.Hello(oxdchi.User(r))) }

func item(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, adaptertest.Item(r, chi.URLParam(r, "id")))
}

func TestLoginThroughChi(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
		r.With(auth.RequireLogin).Get(adaptertest.PrivatePath, hello)
		r.Get(adaptertest.LoggedOutPath, hello)
		return r
	})
	env.CheckLogin(t)
}

// Two concrete paths of one chi route are one UMA resource; a guard
// declared for another template than its route's is refused.
func TestUMAOneResourcePerChiRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Route("/api", func(r chi.Router) {
			r.With(oxdchi.UMAProtect(auth, "GET /api/photos/{id}", "photos.read")).Get("/photos/{id}", item)
		})
		r.With(oxdchi.UMAProtect(auth, "GET /photos/:id", "photos.read")).Get("/photos/{id}", item)
		return r
	})
	env.CheckOneResource(t, "/api/photos/", "/api/photos/{id}", "1", "2")
	env.CheckRefused(t, "/photos/1")
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
