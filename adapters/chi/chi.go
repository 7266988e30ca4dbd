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
// request up in the router that routes it next ([RoutePattern]), with what
// chi routes on (the routing path that middleware such as CleanPath and
// StripSlashes set, not the URL path), instead of reading the partial
// pattern; the declared pattern of a UMA route must be the complete one,
// including the prefixes of the sub-routers it is mounted under. The
// guard decides for the route that serves the request, or refuses it.
package oxdchi

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/adapters/internal/glue"
)

// Routes are the paths [Mount] puts the handlers at; an empty path leaves
// that handler out. The fields, all strings, are:
//
//   - Login: starts a sign-in explicitly (GET, ?return_to=/path),
//     oxd.Auth.LoginHandler;
//   - Callback: the OP's redirect back (GET), the site's registered
//     authorization_redirect_uri, oxd.Auth.CallbackHandler;
//   - Logout: ends the session (POST, and GET when
//     oxd.Config.LogoutMethods allows it), oxd.Auth.LogoutHandler;
//   - ClaimsCallback: the UMA claims redirect URI of browser RP mode
//     (GET), oxd.Auth.ClaimsCallbackHandler; set it only when browser mode
//     is used;
//   - BackChannelLogout: the registered back-channel logout URI (POST from
//     the OP), oxd.Auth.BackChannelLogoutHandler, and FrontChannelLogout:
//     the registered front-channel logout URI (GET in the OP's iframe),
//     oxd.Auth.FrontChannelLogoutHandler; both need
//     oxd.Config.SessionIndex, neither is in DefaultRoutes.
//
// The Routes of the chi, gin and echo adapters are one type.
type Routes = glue.Routes

// DefaultRoutes are the paths of the oxd-node demo: /login, /callback and
// /logout (no claims callback).
var DefaultRoutes = glue.DefaultRoutes

// Mount puts auth's handlers on r at the paths of routes. The handlers
// check the method themselves (405 with Allow for the others), so they are
// mounted for every method.
//
//	r := chi.NewRouter()
//	oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
func Mount(r chi.Router, auth *oxd.Auth, routes Routes) {
	for _, h := range glue.Handlers(auth, routes) {
		r.Handle(h.Path, h.Handler)
	}
}

// UMAProtect is [oxd.Auth.UMAProtect] for chi: pattern is "[METHOD ]template"
// with the complete chi route pattern as template, for example
// "GET /api/photos/{id}" for r.Get("/photos/{id}", …) inside
// r.Route("/api", …). Attach it to the route it declares:
//
//	r.With(oxdchi.UMAProtect(auth, "GET /photos/{id}", "photos:view")).Get("/photos/{id}", photo)
//
// The guard decides for the pattern of the route chi routes the request
// to ([RoutePattern], taken when the guard runs): a request that chi
// serves with another route than the declared one (another pattern, or
// none) is refused, never let through.
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

// RouteTemplates is a middleware that gives the complete pattern of the
// chi route that serves the request ([RoutePattern]) to the oxd middleware
// down the chain ([oxd.WithRouteTemplate]); a request that no route
// serves carries a template that no declaration has, so a guard refuses
// it. Put it right before plain oxd.Auth.UMAProtect middleware that runs
// before chi has routed the request to its route, for example in the Use
// of a sub-router:
//
//	r.Route("/v2", func(r chi.Router) {
//		r.Use(oxdchi.RouteTemplates, auth.UMAProtect("GET /v2/items/{id}", "items:view"))
//		r.Get("/items/{id}", item)
//	})
//
// The pattern is the one chi finds with the routing path as it stands
// when RouteTemplates runs: a middleware that changes the routing path
// (middleware.CleanPath, StripSlashes, …) goes before RouteTemplates, as
// it goes before any guard. Middleware attached to a route with With runs
// after routing and needs no RouteTemplates ([UMAProtect] takes the
// pattern itself, and chi sets Request.Pattern for plain
// oxd.Auth.UMAProtect).
func RouteTemplates(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, glue.WithTemplate(r, RoutePattern(r)))
	})
}

// RoutePattern returns the complete pattern of the chi route that serves
// the request, in the form of chi's Context.RoutePattern once routing is
// done (mount wildcards between segments dropped, no trailing slash), or
// "" outside a chi router or when no route matches.
//
// It is the pattern chi routes the request to, found with what chi routes
// on: the routing path (Context.RoutePath, which middleware such as
// CleanPath and StripSlashes set, else the escaped URL path) and the
// routing method. Once chi has routed the request to its route (in
// middleware attached with With, and in the handler), it is chi's own
// pattern. Before (in middleware attached with Use, also above
// sub-routers), the request is looked up in the router that routes it
// next, with its routing path as it stands, so the pattern is complete
// there too.
func RoutePattern(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return ""
	}
	pats := rctx.RoutePatterns
	n := len(pats)
	// A pattern without a trailing wildcard is a route's (or the stub
	// that mounts a sub-router at its bare prefix, where the sub-router
	// routes "/": its pattern is the same once normalized): chi has
	// routed the request.
	if rctx.Routes == nil || n > 0 && !strings.HasSuffix(pats[n-1], "*") {
		return rctx.RoutePattern()
	}
	// Follow the sub-routers chi has routed the request through.
	routes := rctx.Routes
	for i, p := range pats {
		sub := subRouter(routes, p)
		if sub == nil {
			if i == n-1 {
				// A wildcard route, or a handler that is not a chi
				// router mounted: routing is done.
				return rctx.RoutePattern()
			}
			return ""
		}
		routes = sub
	}
	p := rctx.RoutePath
	if n > 0 {
		// Middleware attached with With to a Mount or Route runs before
		// chi shifts the routing path to the sub-router's, "/" and the
		// mount's wildcard, and empties the wildcard. An empty wildcard
		// leaves the shifted routing path, or, in that middleware, the
		// parent's: "" (then "/") when the parent routed the URL path;
		// a parent routing path that a middleware set to end at the
		// mount's prefix with a slash is not told apart from a shifted
		// one.
		if k := len(rctx.URLParams.Keys) - 1; k >= 0 && rctx.URLParams.Keys[k] == "*" && rctx.URLParams.Values[k] != "" {
			p = "/" + rctx.URLParams.Values[k]
		}
	} else if p == "" {
		p = r.URL.RawPath
		if p == "" {
			p = r.URL.Path
		}
	}
	if p == "" {
		p = "/"
	}
	method := rctx.RouteMethod
	if method == "" {
		method = r.Method
	}
	sub := routes.Find(chi.NewRouteContext(), method, p)
	if sub == "" {
		return ""
	}
	return normalize(strings.Join(pats, "") + sub)
}

// subRouter returns the sub-router that routes mounts at pattern, or nil
// when pattern is not a mount. A sub-router mounted at "/api" is reached
// through "/api/*" and through the stubs "/api" and "/api/". Listing a
// router's routes is slow (tens of microseconds), so the answers for a
// *chi.Mux are kept for the life of the process (they do not change: chi
// refuses to mount on a route's pattern), up to maxMounts of them.
func subRouter(routes chi.Routes, pattern string) chi.Routes {
	mux, cache := routes.(*chi.Mux)
	key := mountKey{mux, pattern}
	if cache {
		if v, ok := mounts.Load(key); ok {
			return v.(mountOf).sub
		}
	}
	var sub chi.Routes
	for _, rt := range routes.Routes() {
		if rt.SubRoutes != nil && (rt.Pattern == pattern || rt.Pattern == pattern+"*" || rt.Pattern == pattern+"/*") {
			sub = rt.SubRoutes
			break
		}
	}
	if cache && mountsKept.Add(1) <= maxMounts {
		mounts.Store(key, mountOf{sub})
	}
	return sub
}

// maxMounts bounds the answers subRouter keeps.
const maxMounts = 4096

var (
	mounts     sync.Map // mountKey → mountOf
	mountsKept atomic.Int64
)

type mountKey struct {
	mux     *chi.Mux
	pattern string
}

type mountOf struct{ sub chi.Routes }

// normalize turns a joined pattern into the form of chi's
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
