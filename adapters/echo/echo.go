// Package oxdecho wires the oxd middleware into echo
// (github.com/labstack/echo/v4).
//
//   - [RequireLogin], [UMAProtect] and [UMAProtectWith] are the oxd
//     middleware as echo.MiddlewareFunc values (through
//     echo.WrapMiddleware, so the request context and the session cookie
//     flow as in net/http).
//   - The UMA route template is echo's c.Path() ("/photos/:id"), so every
//     concrete path of a route is one UMA resource. The declared pattern
//     uses echo's syntax: "GET /photos/:id", with the prefixes of the
//     groups the route is in.
//   - [Mount] puts the login, callback and logout handlers on an echo
//     instance or group; [User] reads the signed-in user from an
//     echo.Context.
//
// echo runs e.Use middleware after routing, so c.Path() is complete in any
// of them; e.Pre middleware runs before routing and must not hold the UMA
// guard.
package oxdecho

import (
	"github.com/labstack/echo/v4"

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

// Router is what [Mount] needs: *echo.Echo and *echo.Group are routers.
type Router interface {
	Any(path string, handler echo.HandlerFunc, middleware ...echo.MiddlewareFunc) []*echo.Route
}

var (
	_ Router = (*echo.Echo)(nil)
	_ Router = (*echo.Group)(nil)
)

// Mount puts auth's handlers on r at the paths of routes, for every method:
// the handlers answer 405 (with Allow) to the methods they do not accept.
//
//	e := echo.New()
//	oxdecho.Mount(e, auth, oxdecho.DefaultRoutes)
func Mount(r Router, auth *oxd.Auth, routes Routes) {
	for _, h := range glue.Handlers(auth, routes) {
		r.Any(h.Path, echo.WrapHandler(h.Handler))
	}
}

// RequireLogin is [oxd.Auth.RequireLogin] as echo middleware: a signed-in
// request goes on with the user in its context ([User]); otherwise a
// browser is sent to the OP and an API request gets 401, and the handler
// does not run.
//
//	e.GET("/profile", profile, oxdecho.RequireLogin(auth))
func RequireLogin(auth *oxd.Auth) echo.MiddlewareFunc {
	return echo.WrapMiddleware(auth.RequireLogin)
}

// UMAProtect is [oxd.Auth.UMAProtect] as echo middleware. pattern is
// "[METHOD ]template" with echo's path of the route as template:
//
//	api := e.Group("/api")
//	api.GET("/photos/:id", photo, oxdecho.UMAProtect(auth, "GET /api/photos/:id", "photos:view"))
//
// The guard decides for the route echo routed the request to (c.Path(),
// taken when the guard runs): a request that echo serves with another
// route than the declared one is refused, never let through. e.Pre
// middleware (RemoveTrailingSlash, AddTrailingSlash, Rewrite) changes the
// path echo routes on, not the route it reports.
func UMAProtect(auth *oxd.Auth, pattern string, scopes ...string) echo.MiddlewareFunc {
	return withTemplate(echo.WrapMiddleware(auth.UMAProtect(pattern, scopes...)))
}

// UMAProtectWith is [oxd.Auth.UMAProtectWith] as echo middleware;
// rule.Template is echo's path of the route.
func UMAProtectWith(auth *oxd.Auth, rule oxd.UMARule) echo.MiddlewareFunc {
	return withTemplate(echo.WrapMiddleware(auth.UMAProtectWith(rule)))
}

func withTemplate(mw echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return RouteTemplates(mw(next))
	}
}

// RouteTemplates is echo middleware that gives c.Path(), the path of the
// route echo routed the request to, to the oxd middleware down the chain
// ([oxd.WithRouteTemplate]); a request that no route serves carries a
// template that no declaration has, so a guard refuses it. [UMAProtect]
// does it by itself. Use it (with e.Use or on a group, not with e.Pre,
// which runs before routing) before oxd middleware wrapped with
// echo.WrapMiddleware.
func RouteTemplates(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.SetRequest(glue.WithTemplate(c.Request(), c.Path()))
		return next(c)
	}
}

// User returns the signed-in user that RequireLogin put into the request
// context; ok is false outside RequireLogin.
func User(c echo.Context) (u *oxd.User, ok bool) { return oxd.UserFrom(c.Request().Context()) }
