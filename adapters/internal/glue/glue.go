// Package glue is the part of the router adapters (adapters/chi, gin and
// echo) that does not depend on the router: the login handlers they mount
// and the step that hands the UMA guard the template of the route the
// router matched.
package glue

import (
	"net/http"

	"github.com/oxdgo/oxd"
)

// Routes are the paths an adapter's Mount puts the handlers at (each
// adapter's Routes is this type); an empty path leaves that handler out.
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
	// BackChannelLogout is the site's registered back-channel logout URI
	// (POST from the OP, server to server):
	// oxd.Auth.BackChannelLogoutHandler. Needs oxd.Config.SessionIndex.
	BackChannelLogout string
	// FrontChannelLogout is the site's registered front-channel logout URI
	// (GET in the OP's iframe): oxd.Auth.FrontChannelLogoutHandler. Needs
	// oxd.Config.SessionIndex.
	FrontChannelLogout string
}

// DefaultRoutes are the paths of the oxd-node demo: /login, /callback and
// /logout (no claims callback).
var DefaultRoutes = Routes{Login: "/login", Callback: "/callback", Logout: "/logout"}

// Route is one handler at one path.
type Route struct {
	Path    string
	Handler http.Handler
}

// Handlers returns auth's login, callback, logout, claims-callback,
// back-channel logout and front-channel logout handlers at the paths of
// routes, in that order, without the ones whose path is empty. The handlers check the method themselves (405 with
// Allow), so adapters mount them for every method.
func Handlers(auth *oxd.Auth, routes Routes) []Route {
	var out []Route
	for _, r := range []struct {
		path string
		h    func() http.Handler
	}{
		{routes.Login, auth.LoginHandler},
		{routes.Callback, auth.CallbackHandler},
		{routes.Logout, auth.LogoutHandler},
		{routes.ClaimsCallback, auth.ClaimsCallbackHandler},
		{routes.BackChannelLogout, auth.BackChannelLogoutHandler},
		{routes.FrontChannelLogout, auth.FrontChannelLogoutHandler},
	} {
		if r.path != "" {
			out = append(out, Route{Path: r.path, Handler: r.h()})
		}
	}
	return out
}

// NoRoute is the template an adapter gives the UMA guard when the router
// matched no route. It is not a valid declared template (it has no "/"),
// so the guard refuses the request: it never falls back to a template
// that another router (an outer http.ServeMux's Request.Pattern, an
// earlier adapter's value) put on the request.
const NoRoute = "(no route)"

// WithTemplate returns r carrying template, the template of the route the
// router matched ("" for none: [NoRoute]), for the UMA guard
// ([oxd.WithRouteTemplate]).
func WithTemplate(r *http.Request, template string) *http.Request {
	if template == "" {
		template = NoRoute
	}
	return r.WithContext(oxd.WithRouteTemplate(r.Context(), template))
}
