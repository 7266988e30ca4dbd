// Package oxdchi wires the oxd middleware into a chi router
// (github.com/go-chi/chi/v5).
//
// chi routers are net/http handlers, so [oxd.Auth.RequireLogin] and the
// login handlers work with chi as they are; this package adds what chi
// needs on top:
//
//   - [Mount] puts the login, callback and logout handlers on a router;
//   - [UMAProtect] and [UMAProtectWith] give [oxd.Auth.UMAProtect] the
//     request's complete chi route pattern (e.g. "/api/photos/{id}"), so
//     that every concrete path of a route is one UMA resource, wherever the
//     middleware is attached;
//   - [RouteTemplates] does the same for plain oxd.UMAProtect middleware
//     further down the router;
//   - [User] reads the signed-in user.
//
// chi builds a request's route pattern while it routes: inside a
// middleware attached with Use on a router that mounts sub-routers, the
// pattern is still incomplete ("/api/*"). This package therefore looks the
// request up in the root router itself ([RoutePattern]) instead of reading
// the partial pattern, and the declared pattern of a UMA route must be the
// complete one, including the prefixes of the sub-routers it is mounted
// under.
package oxdchi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
)

// Routes are the paths [Mount] puts the handlers at. An empty path leaves
// that handler out.
type Routes struct {
	// Login starts a sign-in explicitly (GET, ?return_to=/path):
	// oxd.Auth.LoginHandler.
	Login string
	// Callback is the OP's redirect back (GET), the site's registered
	// authorization_redirect_uri: oxd.Auth.CallbackHandler.
	Callback string
	// Logout ends the session (POST, and GET when oxd.Config.LogoutMethods
	// allows it): oxd.Auth.LogoutHandler.
	Logout string
	// ClaimsCallback is the UMA claims redirect URI of browser RP mode
	// (GET): oxd.Auth.ClaimsCallbackHandler. Mount it only when browser
	// mode is used.
	ClaimsCallback string
}

// DefaultRoutes are the paths of the oxd-node demo: /login, /callback and
// /logout (no claims callback).
var DefaultRoutes = Routes{Login: "/login", Callback: "/callback", Logout: "/logout"}

// Mount puts auth's handlers on r at the paths of routes. The handlers
// check the method themselves (405 with Allow for the others), so they are
// mounted for every method.
//
//	r := chi.NewRouter()
//	oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
func Mount(r chi.Router, auth *oxd.Auth, routes Routes) {
	if routes.Login != "" {
		r.Handle(routes.Login, auth.LoginHandler())
	}
	if routes.Callback != "" {
		r.Handle(routes.Callback, auth.CallbackHandler())
	}
	if routes.Logout != "" {
		r.Handle(routes.Logout, auth.LogoutHandler())
	}
	if routes.ClaimsCallback != "" {
		r.Handle(routes.ClaimsCallback, auth.ClaimsCallbackHandler())
	}
}

// UMAProtect is [oxd.Auth.UMAProtect] for chi: pattern is "[METHOD ]template"
// with the complete chi route pattern as template, for example
// "GET /api/photos/{id}" for r.Get("/photos/{id}", …) inside
// r.Route("/api", …). Attach it to the route it declares:
//
//	r.With(oxdchi.UMAProtect(auth, "GET /photos/{id}", "photos:view")).Get("/photos/{id}", photo)
//
// A request whose route pattern is not the declared template is refused
// (500, logged), never let through.
func UMAProtect(auth *oxd.Auth, pattern string, scopes ...string) func(http.Handler) http.Handler {
	return withTemplate(auth.UMAProtect(pattern, scopes...))
}

// UMAProtectWith is [oxd.Auth.UMAProtectWith] for chi; rule.Template is the
// complete chi route pattern.
func UMAProtectWith(auth *oxd.Auth, rule oxd.UMARule) func(http.Handler) http.Handler {
	return withTemplate(auth.UMAProtectWith(rule))
}

func withTemplate(guard func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return RouteTemplates(guard(next))
	}
}

// RouteTemplates is a middleware that gives the request's complete chi
// route pattern to the oxd middleware down the chain
// ([oxd.WithRouteTemplate]). Use it on the root router when UMA routes are
// protected with oxd.Auth.UMAProtect directly:
//
//	r.Use(oxdchi.RouteTemplates)
//	r.With(auth.UMAProtect("GET /photos/{id}", "photos:view")).Get("/photos/{id}", photo)
func RouteTemplates(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := RoutePattern(r); t != "" {
			r = r.WithContext(oxd.WithRouteTemplate(r.Context(), t))
		}
		next.ServeHTTP(w, r)
	})
}

// RoutePattern returns the complete route pattern of the request in the
// chi router that serves it (as chi's RoutePattern reports it once routing
// is done), or "" outside a chi router or when no route matches. Unlike
// chi.RouteContext(ctx).RoutePattern(), it is complete in any middleware,
// also one attached with Use above sub-routers: the request is looked up
// in the root router.
func RoutePattern(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return ""
	}
	if rctx.Routes != nil {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		if path == "" {
			path = "/"
		}
		if p := rctx.Routes.Find(chi.NewRouteContext(), r.Method, path); p != "" {
			return normalize(p)
		}
	}
	return rctx.RoutePattern()
}

// normalize turns a pattern of chi's Routes.Find into the form of chi's
// Context.RoutePattern: mount wildcards between segments dropped, no
// trailing slash.
func normalize(p string) string {
	for strings.Contains(p, "/*/") {
		p = strings.ReplaceAll(p, "/*/", "/")
	}
	if p != "/" {
		p = strings.TrimSuffix(p, "//")
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// User returns the signed-in user that RequireLogin put into the request
// context; ok is false outside RequireLogin. It is [oxd.UserFrom].
func User(r *http.Request) (u *oxd.User, ok bool) { return oxd.UserFrom(r.Context()) }
