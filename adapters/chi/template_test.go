package oxdchi_test

import (
	"fmt"
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

const (
	photos = "/photos/{id}"
	admin  = "/admin/{id}"
	items  = "/api/items/{id}"
	public = "/public/*"
)

func serve(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, adaptertest.Served(r, route)) }
}

// templateRouter has a guarded route per way of attaching the guard (With
// and the Use of a sub-router), a second guarded route with another scope
// and an open wildcard route, behind the path-rewriting middleware mw.
func templateRouter(mw ...func(http.Handler) http.Handler) func(*oxd.Auth) http.Handler {
	return func(auth *oxd.Auth) http.Handler {
		r := chi.NewRouter()
		r.Use(mw...)
		r.With(oxdchi.UMAProtect(auth, "GET "+photos, "photos.read")).Get(photos, serve(photos))
		r.With(oxdchi.UMAProtect(auth, "GET "+admin, "admin.all")).Get(admin, serve(admin))
		r.Route("/api", func(r chi.Router) {
			r.Use(oxdchi.RouteTemplates, auth.UMAProtect("GET "+items, "items.read"))
			r.Get("/items/{id}", serve(items))
		})
		r.Get(public, serve(public))
		return r
	}
}

// The UMA decision is made for the template of the route chi serves the
// request with, whatever path-rewriting middleware runs before routing and
// whatever the path looks like (dot segments, escapes, slashes, case):
// never for another route, never a 500, nothing logged at ERROR.
func TestTemplateOfTheRouteChiServes(t *testing.T) {
	const ok, denied, notFound, moved = http.StatusOK, http.StatusUnauthorized, http.StatusNotFound, http.StatusMovedPermanently
	type c = adaptertest.Case
	for _, tc := range []struct {
		name  string
		mw    []func(http.Handler) http.Handler
		cases func(p, i string) []c
	}{
		{"no middleware", nil, func(p, i string) []c {
			return []c{
				{Path: "/photos/1/", RPT: p, Status: notFound},
				{Path: "//photos/1", RPT: p, Status: notFound},
				{Path: "/photos/../admin/1", RPT: p, Status: notFound},
				{Path: "/public/../photos/1", RPT: p, Status: ok, Route: public},
			}
		}},
		{"CleanPath", []func(http.Handler) http.Handler{middleware.CleanPath}, func(p, i string) []c {
			return []c{
				{Path: "/photos/1/", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "//photos/1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/./1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/../admin/1", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/public/../admin/1", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/public/../photos/1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/1/../../admin/1", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/api/../photos/1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/../api/items/1", RPT: p, Status: denied, Route: items, Guarded: true},
				{Path: "/photos/../api/items/1", RPT: i, Status: ok, Route: items, Guarded: true},
				{Path: "//api//items/1/", RPT: i, Status: ok, Route: items, Guarded: true},
				{Path: "/api/items/1/../../../admin/1", RPT: i, Status: denied, Route: admin, Guarded: true},
			}
		}},
		{"StripSlashes", []func(http.Handler) http.Handler{middleware.StripSlashes}, func(p, i string) []c {
			return []c{
				{Path: "/photos/1/", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/admin/1/", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/api/items/1/", RPT: i, Status: ok, Route: items, Guarded: true},
				{Path: "/api/items/1/", RPT: p, Status: denied, Route: items, Guarded: true},
				{Path: "//photos/1", RPT: p, Status: notFound},
				{Path: "/photos/../admin/1", RPT: p, Status: notFound},
			}
		}},
		{"CleanPath and StripSlashes", []func(http.Handler) http.Handler{middleware.CleanPath, middleware.StripSlashes}, func(p, i string) []c {
			return []c{
				{Path: "//photos//1/", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/../admin/1/", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/x/../api/items/1/", RPT: i, Status: ok, Route: items, Guarded: true},
			}
		}},
		{"RedirectSlashes", []func(http.Handler) http.Handler{middleware.RedirectSlashes}, func(p, i string) []c {
			return []c{
				{Path: "/photos/1/", RPT: p, Status: moved},
				{Path: "/api/items/1/", RPT: i, Status: moved},
				{Path: "//photos/1", RPT: p, Status: notFound},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := adaptertest.New(t, templateRouter(tc.mw...))
			p, i := env.RPT(t, "/photos/1"), env.RPT(t, "/api/items/1")
			// Under every middleware: the plain paths, escapes and case.
			cases := []c{
				{Path: "/photos/1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/2", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/2", Status: denied, Route: photos, Guarded: true},
				{Path: "/admin/1", RPT: p, Status: denied, Route: admin, Guarded: true},
				{Path: "/api/items/1", RPT: i, Status: ok, Route: items, Guarded: true},
				{Path: "/api/items/1", RPT: p, Status: denied, Route: items, Guarded: true},
				{Path: "/photos/1%2F..%2F..%2Fadmin%2F1", RPT: p, Status: ok, Route: photos, Guarded: true},
				{Path: "/photos/%2e%2e/admin/1", RPT: p, Status: notFound},
				{Path: "/public/%2e%2e/admin/1", RPT: p, Status: ok, Route: public},
				{Path: "/PHOTOS/1", RPT: p, Status: notFound},
				{Path: "/Admin/1", RPT: p, Status: notFound},
			}
			env.Check(t, append(cases, tc.cases(p, i)...))
		})
	}
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
			r.Get("/files/*", serve("/api/files/*"))
			r.Get("/secret", serve("/api/secret"))
		})
		return r
	})
	rpt := env.RPT(t, "/api/files/a")
	env.Check(t, []adaptertest.Case{
		{Path: "/api/files/a/b", RPT: rpt, Status: http.StatusOK, Route: "/api/files/*", Guarded: true},
		{Path: "/api//files/../files/a", RPT: rpt, Status: http.StatusOK, Route: "/api/files/*", Guarded: true},
		// chi routes the cleaned escaped path: /api/files/secret.
		{Path: "/api/files/%2e%2e/../secret", RPT: rpt, Status: http.StatusOK, Route: "/api/files/*", Guarded: true},
	})
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
	var atRoot, inSub, late string
	record := func(w http.ResponseWriter, req *http.Request) {
		late = chi.RouteContext(req.Context()).RoutePattern()
	}
	for _, mw := range [][]func(http.Handler) http.Handler{nil, {middleware.CleanPath}, {middleware.StripSlashes}, {middleware.CleanPath, middleware.StripSlashes}} {
		r := chi.NewRouter()
		r.Use(mw...)
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				atRoot = oxdchi.RoutePattern(req)
				next.ServeHTTP(w, req)
			})
		})
		r.Get("/a/{x}", record)
		r.Get("/files/*", record)
		r.Route("/api", func(r chi.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					inSub = oxdchi.RoutePattern(req)
					next.ServeHTTP(w, req)
				})
			})
			r.Get("/", record)
			r.Get("/users/{id}", record)
			r.Route("/v1", func(r chi.Router) { r.Get("/things/{id:[0-9]+}", record) })
		})
		for _, p := range []string{"/a/1", "/a/1/", "//a//1", "/files/../a/1", "/a/%2e%2e", "/a/x%2Fy", "/files/x/../y",
			"/api", "/api/", "/api/users/7", "/api/users/7/", "/api//users/7", "/api/v1/things/42", "/x/../api/v1/things/42/", "/api/v1/things/x", "/nope"} {
			atRoot, inSub, late = "unset", "unset", ""
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != http.StatusOK {
				late = ""
			}
			if atRoot != late || inSub != "unset" && inSub != late {
				t.Errorf("%d middleware, %s (%d): at the root %q, in the sub-router %q, chi after routing %q", len(mw), p, rec.Code, atRoot, inSub, late)
			}
		}
	}
}
