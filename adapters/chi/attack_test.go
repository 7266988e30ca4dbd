package oxdchi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	oxdchi "github.com/oxdgo/oxd/adapters/chi"
)

// TestRoutePatternDifferentialMethodsAndShapes: for every method and
// router shape (405 and 404 handlers, GetHead, mounts of plain handlers,
// regexp and wildcard routes, nested mounts, routes registered for some
// methods only), RoutePattern in the root's Use is either chi's pattern of
// the route that serves the request, or "" — never another route's.
func TestRoutePatternDifferentialMethodsAndShapes(t *testing.T) {
	for _, mw := range [][]func(http.Handler) http.Handler{nil, {middleware.GetHead}, {middleware.CleanPath}, {middleware.StripSlashes, middleware.GetHead}} {
		var early, late string
		served := false
		record := func(w http.ResponseWriter, req *http.Request) {
			served = true
			late = chi.RouteContext(req.Context()).RoutePattern()
		}
		r := chi.NewRouter()
		r.Use(mw...)
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				early = oxdchi.RoutePattern(req)
				next.ServeHTTP(w, req)
			})
		})
		r.NotFound(func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(404) })
		r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(405) })
		r.Get("/photos/{id}", record)
		r.Post("/photos/{id}", record)
		r.Delete("/photos/{id:[0-9]+}", record)
		r.Get("/photos/{id}/raw", record)
		r.Head("/head/{id}", record)
		r.Get("/files/*", record)
		r.Options("/files/*", record)
		r.Handle("/any/{x}", http.HandlerFunc(record))
		r.Mount("/static", http.StripPrefix("/static", http.HandlerFunc(record)))
		r.Route("/api", func(r chi.Router) {
			r.Get("/", record)
			r.Get("/{id}", record)
			r.Put("/items/{id}", record)
			r.Get("/items/*", record)
			r.Route("/v1/{tenant}", func(r chi.Router) {
				r.Get("/docs/{doc}", record)
				r.Mount("/m", http.HandlerFunc(record))
			})
		})
		sub := chi.NewRouter()
		sub.Get("/x/{y}", record)
		sub.NotFound(func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(404) })
		r.Mount("/sub/", sub)
		methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND"}
		paths := []string{"/photos/1", "/photos/abc", "/photos/1/raw", "/photos/1/raw/", "/head/1", "/files/a/b", "/files/", "/files",
			"/any/1", "/static", "/static/", "/static/a/b", "/api", "/api/", "/api/1", "/api/items/1", "/api/items/", "/api/items",
			"/api/v1/t/docs/d", "/api/v1/t/m", "/api/v1/t/m/x", "/api/v1//docs/d", "/sub/x/1", "/sub", "/sub/", "/sub/x/1/",
			"/photos/%31", "/api/%2F", "/api/items%2F1", "/photos/1%2Fraw", "//api/items/1", "/api/./items/1"}
		for _, m := range methods {
			for _, p := range paths {
				early, late, served = "unset", "", false
				req := httptest.NewRequest(m, "http://example"+p, nil)
				req.RequestURI = ""
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				if !served {
					late = ""
				}
				if early != "" && early != late && (served || testing.Verbose()) {
					t.Errorf("%d mw, %s %s (%d): RoutePattern before routing %q, chi served %q", len(mw), m, p, rec.Code, early, late)
				}
			}
		}
	}
}

// TestRoutePatternOnMountsUnderRewriters: in middleware attached with With
// to a Route or Mount, where chi has not yet shifted the routing path, the
// pattern is the one of the route that serves the request, also when a
// sub-router has both "/" and "/*" and the routing path was rewritten
// (CleanPath, StripSlashes) to end at the mount's prefix.
func TestRoutePatternOnMountsUnderRewriters(t *testing.T) {
	for _, mw := range [][]func(http.Handler) http.Handler{nil, {middleware.CleanPath}, {middleware.StripSlashes}, {middleware.RedirectSlashes}} {
		var onMount, late string
		served := false
		record := func(w http.ResponseWriter, req *http.Request) {
			served = true
			late = chi.RouteContext(req.Context()).RoutePattern()
		}
		pat := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				onMount = oxdchi.RoutePattern(req)
				next.ServeHTTP(w, req)
			})
		}
		r := chi.NewRouter()
		r.Use(mw...)
		r.With(pat).Route("/w", func(r chi.Router) {
			r.Get("/", record)
			r.Get("/*", record)
			r.Get("/{id}", record)
			r.With(pat).Route("/x", func(r chi.Router) { r.Get("/", record); r.Get("/*", record) })
		})
		sub := chi.NewRouter()
		sub.Get("/", record)
		sub.Get("/*", record)
		r.With(pat).Mount("/m", sub)
		for _, p := range []string{"/w", "/w/", "/w//", "/w/a", "/w/a/", "/w/a/b", "/w/x", "/w/x/", "/w/x/a", "/w/x//", "//w/", "/w/./", "/w/x/.", "/m", "/m/", "/m//", "/m/a", "/m/.", "/m/x/..", "/w/x/..", "/w/x/../"} {
			onMount, late, served = "unset", "", false
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
			if !served {
				late = ""
			}
			if onMount != "unset" && onMount != "" && onMount != late {
				t.Errorf("%d mw %s (%d): on mount %q, chi served %q", len(mw), p, rec.Code, onMount, late)
			}
		}
	}
}
