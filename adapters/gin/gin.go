// Package oxdgin wires the oxd middleware into gin
// (github.com/gin-gonic/gin).
//
//   - [RequireLogin], [UMAProtect] and [UMAProtectWith] are the oxd
//     middleware as gin.HandlerFunc values; [Wrap] converts any other
//     net/http middleware the same way.
//   - The UMA route template is gin's c.FullPath() ("/photos/:id"), so every
//     concrete path of a route is one UMA resource. The declared pattern
//     uses gin's syntax: "GET /photos/:id", with the prefixes of the
//     groups the route is in.
//   - [Mount] puts the login, callback and logout handlers on a router or
//     group; [User] reads the signed-in user from a *gin.Context.
//
// The session middleware may wrap the whole engine
// (sessions.LoadAndSave(engine)), which saves one session load per request;
// without it the oxd middleware loads and saves the session itself.
package oxdgin

import (
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

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

// Mount puts auth's handlers on r at the paths of routes, for every method:
// the handlers answer 405 (with Allow) to the methods they do not accept.
//
//	r := gin.New()
//	oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)
func Mount(r gin.IRoutes, auth *oxd.Auth, routes Routes) {
	for _, h := range glue.Handlers(auth, routes) {
		r.Any(h.Path, gin.WrapH(h.Handler))
	}
}

// RequireLogin is [oxd.Auth.RequireLogin] as gin middleware: a signed-in
// request goes on with the user in its context ([User]); otherwise a
// browser is sent to the OP and an API request gets 401, and the chain is
// aborted.
//
//	r.GET("/profile", oxdgin.RequireLogin(auth), profile)
func RequireLogin(auth *oxd.Auth) gin.HandlerFunc { return Wrap(auth.RequireLogin) }

// UMAProtect is [oxd.Auth.UMAProtect] as gin middleware. pattern is
// "[METHOD ]template" with gin's full path of the route as template:
//
//	api := r.Group("/api")
//	api.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /api/photos/:id", "photos:view"), photo)
//
// The guard decides for the route gin routed the request to
// (c.FullPath(), taken when the guard runs): a request that gin serves
// with another route than the declared one is refused, never let through.
// gin's redirects (RedirectTrailingSlash, RedirectFixedPath) answer before
// any route's handlers run, and RemoveExtraSlash and UseRawPath change the
// path gin routes on, not the route it reports.
func UMAProtect(auth *oxd.Auth, pattern string, scopes ...string) gin.HandlerFunc {
	return withTemplate(Wrap(auth.UMAProtect(pattern, scopes...)))
}

// UMAProtectWith is [oxd.Auth.UMAProtectWith] as gin middleware;
// rule.Template is gin's full path of the route.
func UMAProtectWith(auth *oxd.Auth, rule oxd.UMARule) gin.HandlerFunc {
	return withTemplate(Wrap(auth.UMAProtectWith(rule)))
}

func withTemplate(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		RouteTemplates(c)
		h(c)
	}
}

// RouteTemplates is gin middleware that gives c.FullPath(), the full path
// of the route gin routed the request to, to the oxd middleware down the
// chain ([oxd.WithRouteTemplate]); a request that no route serves (the
// NoRoute and NoMethod handlers) carries a template that no declaration
// has, so a guard refuses it. [UMAProtect] does it by itself. Use it
// before oxd middleware converted with [Wrap].
func RouteTemplates(c *gin.Context) {
	c.Request = glue.WithTemplate(c.Request, c.FullPath())
}

// User returns the signed-in user that RequireLogin put into the request
// context; ok is false outside RequireLogin.
func User(c *gin.Context) (u *oxd.User, ok bool) { return oxd.UserFrom(c.Request.Context()) }

// Wrap converts net/http middleware into gin middleware. When mw calls its
// next handler, the rest of the gin chain runs with the request mw passed
// on (its context included) and with mw's ResponseWriter (so that, for
// example, a session cookie is written before the response); when it does
// not, mw has answered and the chain is aborted.
func Wrap(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		called := false
		orig := c.Writer
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			c.Request = r
			if w != http.ResponseWriter(orig) {
				c.Writer = &writer{ResponseWriter: orig, w: w}
			}
			c.Next()
			c.Writer = orig
		}))
		h.ServeHTTP(orig, c.Request)
		if !called {
			c.Abort()
		}
	}
}

// writer is a gin.ResponseWriter whose writes go through the writer a
// net/http middleware passed on (which in turn writes to the original);
// the rest (status, size, flushing, hijacking) is the original's.
type writer struct {
	gin.ResponseWriter
	w http.ResponseWriter
}

func (x *writer) Header() http.Header { return x.w.Header() }

func (x *writer) WriteHeader(code int) { x.w.WriteHeader(code) }

func (x *writer) Write(b []byte) (int, error) { return x.w.Write(b) }

func (x *writer) WriteString(s string) (int, error) { return io.WriteString(x.w, s) }

func (x *writer) WriteHeaderNow() {
	if !x.Written() {
		x.w.WriteHeader(x.Status())
		x.ResponseWriter.WriteHeaderNow()
	}
}

// Unwrap lets http.ResponseController reach the original writer.
func (x *writer) Unwrap() http.ResponseWriter { return x.ResponseWriter }
