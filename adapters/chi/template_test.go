package oxdchi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

var routes = adaptertest.StandardRoutes("/photos/{id}", "/admin/{id}", "/api/items/{id}", "/v2/items/{id}", "/public/*")

// templateRouter has the routes of adaptertest.StandardRoutes ("items"
// guarded in the Use of its sub-router) behind the path-rewriting
// middleware mw.
func templateRouter(mw ...func(http.Handler) http.Handler) func(*oxd.Auth) http.Handler {
	return func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Use(mw...)
		for _, name := range []string{"photos", "admin"} {
			t := routes[name].Template
			r.With(oxdchi.UMAProtect(auth, "GET "+t, name+".read")).Get(t, adaptertest.Serve(t))
		}
		r.Route("/api", func(r chi.Router) {
			r.Use(oxdchi.RouteTemplates, auth.UMAProtect("GET /api/items/{id}", "items.read"))
			r.Get("/items/{id}", adaptertest.Serve("/api/items/{id}"))
		})
		r.Group(func(r chi.Router) {
			r.Use(oxdchi.RouteTemplates)
			r.With(auth.UMAProtect("GET /v2/items/{id}", "items.read")).Get("/v2/items/{id}", adaptertest.Serve("/v2/items/{id}"))
		})
		r.Get("/public/*", adaptertest.Serve("/public/*"))
		return r
	}
}

// The UMA decision is made for the template of the route chi serves the
// request with, whatever path-rewriting middleware runs before routing and
// whatever the path looks like (dot segments, escapes, slashes, case):
// never for another route, never a 500, nothing logged at ERROR.
func TestTemplateOfTheRouteChiServes(t *testing.T) {
	// Under every middleware: escapes (chi routes the escaped path) and
	// case.
	always := []string{
		"/photos/1%2F..%2F..%2Fadmin%2F1 photos 200 photos",
		"/photos/%2e%2e/admin/1 photos 404 -",
		"/public/%2e%2e/admin/1 photos 200 public",
		"/PHOTOS/1 photos 404 -",
		"/Admin/1 photos 404 -",
	}
	adaptertest.CheckTemplates(t, routes, always,
		adaptertest.Setup{Name: "no middleware", Router: templateRouter(), Cases: []string{
			"/photos/1/ photos 404 -",
			"//photos/1 photos 404 -",
			"/photos/../admin/1 photos 404 -",
			"/public/../photos/1 photos 200 public",
		}},
		adaptertest.Setup{Name: "CleanPath", Router: templateRouter(middleware.CleanPath), Cases: []string{
			"/photos/1/ photos 200 photos",
			"//photos/1 photos 200 photos",
			"/photos/./1 photos 200 photos",
			"/photos/../admin/1 photos 401 admin",
			"/public/../admin/1 photos 401 admin",
			"/public/../photos/1 photos 200 photos",
			"/photos/1/../../admin/1 photos 401 admin",
			"/api/../photos/1 photos 200 photos",
			"/photos/../api/items/1 photos 401 items",
			"/photos/../api/items/1 items 200 items",
			"//api//items/1/ items 200 items",
			"/api/items/1/../../../admin/1 items 401 admin",
			"/api/items/../../v2/items/1 plain 200 plain",
			"/v2/items/../../api/items/1 plain 401 items",
		}},
		adaptertest.Setup{Name: "StripSlashes", Router: templateRouter(middleware.StripSlashes), Cases: []string{
			"/photos/1/ photos 200 photos",
			"/admin/1/ photos 401 admin",
			"/api/items/1/ items 200 items",
			"/api/items/1/ photos 401 items",
			"/v2/items/1/ plain 200 plain",
			"//photos/1 photos 404 -",
			"/photos/../admin/1 photos 404 -",
		}},
		adaptertest.Setup{Name: "CleanPath and StripSlashes", Router: templateRouter(middleware.CleanPath, middleware.StripSlashes), Cases: []string{
			"//photos//1/ photos 200 photos",
			"/photos/../admin/1/ photos 401 admin",
			"/x/../api/items/1/ items 200 items",
		}},
		adaptertest.Setup{Name: "RedirectSlashes", Router: templateRouter(middleware.RedirectSlashes), Cases: []string{
			"/photos/1/ photos 301 -",
			"/api/items/1/ items 301 -",
			"//photos/1 photos 404 -",
		}},
	)
}

// A guard in the Use of a sub-router runs before chi routes the request
// to its route; under CleanPath, /api/files/../secret matches the guarded
// wildcard route by its URL path but chi serves /api/secret. The guard
// decides for the route chi serves, so it refuses: never a pass for
// another route than its own.
func TestSubRouterGuardRefusesAnotherRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Use(middleware.CleanPath)
		r.Route("/api", func(r chi.Router) {
			r.Use(oxdchi.RouteTemplates, auth.UMAProtect("GET /api/files/*", "files.read"))
			r.Get("/files/*", adaptertest.Serve("/api/files/*"))
			r.Get("/secret", adaptertest.Serve("/api/secret"))
		})
		return r
	})
	rpt := env.RPT(t, "/api/files/a")
	env.Check(t, adaptertest.Routes{"files": {Template: "/api/files/*", Path: "/api/files/a"}}, map[string]string{"files": rpt}, adaptertest.Cases(
		"/api/files/a/b files 200 files",
		"/api//files/../files/a files 200 files",
		// chi routes the cleaned escaped path: /api/files/secret.
		"/api/files/%2e%2e/../secret files 200 files",
	))
	for _, p := range []string{"/api/files/../secret", "/api/files/a/../../secret", "/api/files//../secret/"} {
		res := env.WithRPT(t, p, rpt)
		if res.Status == http.StatusOK || strings.Contains(res.Body, "route=") {
			t.Errorf("GET %s with the RPT of /api/files/*: %d %q, want a refusal", p, res.Status, res.Body)
		}
	}
}

// RoutePattern in middleware attached with Use, before chi routes (in the
// root router behind path-rewriting middleware, and in a sub-router), is
// the pattern chi reports once it has routed the request.
func TestRoutePatternBeforeRoutingIsChisAfter(t *testing.T) {
	var atRoot, inSub, onMount, late string
	record := func(w http.ResponseWriter, req *http.Request) {
		late = chi.RouteContext(req.Context()).RoutePattern()
	}
	patternTo := func(dst *string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				*dst = oxdchi.RoutePattern(req)
				next.ServeHTTP(w, req)
			})
		}
	}
	for _, mw := range [][]func(http.Handler) http.Handler{nil, {middleware.CleanPath}, {middleware.StripSlashes}, {middleware.CleanPath, middleware.StripSlashes}} {
		r := chi.NewRouter()
		r.Use(mw...)
		r.Use(patternTo(&atRoot))
		r.Get("/a/{x}", record)
		r.Get("/files/*", record)
		r.Route("/api", func(r chi.Router) {
			r.Use(patternTo(&inSub))
			r.Get("/", record)
			r.Get("/users/{id}", record)
			r.Route("/v1", func(r chi.Router) { r.Get("/things/{id:[0-9]+}", record) })
		})
		// Middleware attached with With to a Route runs before chi
		// shifts the routing path to the sub-router's.
		r.With(patternTo(&onMount)).Route("/w", func(r chi.Router) {
			r.Get("/", record)
			r.Get("/{id}", record)
			r.With(patternTo(&onMount)).Route("/x", func(r chi.Router) { r.Get("/{id}/y", record) })
		})
		for _, p := range []string{"/a/1", "/a/1/", "//a//1", "/files/../a/1", "/a/%2e%2e", "/a/x%2Fy", "/files/x/../y",
			"/api", "/api/", "/api/users/7", "/api/users/7/", "/api//users/7", "/api/v1/things/42", "/x/../api/v1/things/42/", "/api/v1/things/x", "/nope",
			"/w", "/w/", "/w/1", "/w/1/", "//w/1", "/w/x/2/y", "/w/x/2/y/", "/w/x/../x/2/y", "/w/x/2"} {
			atRoot, inSub, onMount, late = "unset", "unset", "unset", ""
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != http.StatusOK {
				late = ""
			}
			if atRoot != late || inSub != "unset" && inSub != late || onMount != "unset" && onMount != late {
				t.Errorf("%d middleware, %s (%d): at the root %q, in the sub-router %q, on the mount %q, chi after routing %q", len(mw), p, rec.Code, atRoot, inSub, onMount, late)
			}
		}
	}
}
