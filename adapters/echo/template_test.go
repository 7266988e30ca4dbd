package oxdecho_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/oxdgo/oxd"
	oxdecho "github.com/oxdgo/oxd/adapters/echo"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func answer(route string) echo.HandlerFunc { return echo.WrapHandler(adaptertest.Serve(route)) }

// standardRoutes are adaptertest.StandardRoutes in echo's syntax, each
// template but the wildcard's ending in slash.
func standardRoutes(slash string) adaptertest.Routes {
	return adaptertest.StandardRoutes("/photos/:id"+slash, "/admin/:id"+slash, "/api/items/:id"+slash, "/v2/items/:id"+slash, "/public/*")
}

// templateRouter has the routes of standardRoutes(slash) behind the e.Pre
// middleware pre.
func templateRouter(slash string, pre ...echo.MiddlewareFunc) func(*oxd.Auth) http.Handler {
	routes := standardRoutes(slash)
	return func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		e.Pre(pre...)
		for _, name := range []string{"photos", "admin", "items"} {
			t := routes[name].Template
			e.GET(t, answer(t), oxdecho.UMAProtect(auth, "GET "+t, name+".read"))
		}
		t := routes["plain"].Template
		e.Group("/v2", oxdecho.RouteTemplates).GET("/items/:id"+slash, answer(t), echo.WrapMiddleware(auth.UMAProtect("GET "+t, "items.read")))
		e.GET("/public/*", answer("/public/*"))
		return e
	}
}

// The UMA decision is made for the template of the route echo serves the
// request with, whatever e.Pre middleware changes the path echo routes on
// (RemoveTrailingSlash, AddTrailingSlash, Rewrite) and whatever the path
// looks like (dot segments, escapes, slashes, case): never for another
// route, never a 500, nothing logged at ERROR.
//
// echo's last path parameter takes the rest of the path: /photos/../admin/1
// is the photos route with id "../admin/1", and the decision is the
// photos route's.
func TestTemplateOfTheRouteEchoServes(t *testing.T) {
	rewrite := middleware.Rewrite(map[string]string{"/old/*": "/photos/$1", "/p/*": "/$1"})
	always := []string{
		"/photos/1%2Fx photos 200 photos",
		"/PHOTOS/1 photos 404 -",
		"/public/../admin/1 photos 200 public",
		"/public/%2e%2e/admin/1 photos 200 public",
	}
	adaptertest.CheckTemplates(t, standardRoutes(""), nil,
		adaptertest.Setup{Name: "no Pre", Router: templateRouter(""), Cases: append(always,
			"/photos/1/ photos 200 photos",
			"//photos/1 photos 404 -",
			"/photos/../admin/1 photos 200 photos",
			"/photos/%2e%2e/admin/1 photos 200 photos",
			"/admin/1/../../photos/1 photos 401 admin",
			"/v2/nope plain 404 -",
		)},
		adaptertest.Setup{Name: "RemoveTrailingSlash", Router: templateRouter("", middleware.RemoveTrailingSlash()), Cases: append(always,
			"/photos/1/ photos 200 photos",
			"/admin/1/ photos 401 admin",
			"/v2/items/1/ plain 200 plain",
			"/v2/items/1/ items 401 plain",
			"/photos/1%2Fx/ photos 200 photos",
			"/photos/../admin/1/ photos 200 photos",
			"/admin/../photos/1/ photos 401 admin",
		)},
		adaptertest.Setup{Name: "RemoveTrailingSlash redirecting", Router: templateRouter("", middleware.RemoveTrailingSlashWithConfig(middleware.TrailingSlashConfig{RedirectCode: http.StatusMovedPermanently})), Cases: append(always,
			"/photos/1/ photos 301 -",
			"/v2/items/1/ plain 301 -",
		)},
		adaptertest.Setup{Name: "AddTrailingSlash", Router: templateRouter("/", middleware.AddTrailingSlash()), Routes: standardRoutes("/"), Cases: []string{
			"/photos/1/ photos 200 photos",
			// AddTrailingSlash changes the path, not the escaped path
			// echo routes on: /photos/1%2Fx, which no route has.
			"/photos/1%2Fx photos 404 -",
			"/PHOTOS/1 photos 404 -",
		}},
		adaptertest.Setup{Name: "Rewrite", Router: templateRouter("", rewrite), Cases: append(always,
			"/old/1 photos 200 photos",
			"/old/../admin/1 photos 401 admin",
			// The escaped dots stay in the escaped path echo routes on.
			"/old/%2e%2e/admin/1 photos 200 photos",
			"/p/admin/1 photos 401 admin",
			"/p/photos/1 photos 200 photos",
			"/p/v2/items/1 plain 200 plain",
			"/p/public/../api/items/1 items 200 items",
			"/p//photos/1 photos 404 -",
		)},
		adaptertest.Setup{Name: "Rewrite and RemoveTrailingSlash", Router: templateRouter("", rewrite, middleware.RemoveTrailingSlash()), Cases: append(always,
			"/old/1/ photos 200 photos",
			"/p/admin/1/ photos 401 admin",
		)},
	)
}
