package oxdgin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

var routes = adaptertest.StandardRoutes("/photos/:id", "/admin/:id", "/api/items/:id", "/v2/items/:id", "/public/*rest")

func answer(route string) gin.HandlerFunc { return gin.WrapF(adaptertest.Serve(route)) }

// templateRouter has the routes of adaptertest.StandardRoutes ("items"
// guarded by its group's middleware) on an engine set up by configure.
func templateRouter(configure func(*gin.Engine)) func(*oxd.Auth) http.Handler {
	return func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		configure(r)
		for _, name := range []string{"photos", "admin"} {
			t := routes[name].Template
			r.GET(t, oxdgin.UMAProtect(auth, "GET "+t, name+".read"), answer(t))
		}
		r.Group("/api", oxdgin.UMAProtect(auth, "GET /api/items/:id", "items.read")).GET("/items/:id", answer("/api/items/:id"))
		r.Group("/v2", oxdgin.RouteTemplates).GET("/items/:id", oxdgin.Wrap(auth.UMAProtect("GET /v2/items/:id", "items.read")), answer("/v2/items/:id"))
		r.GET("/public/*rest", answer("/public/*rest"))
		return r
	}
}

// The UMA decision is made for the template of the route gin serves the
// request with, whatever the engine's path options (RedirectTrailingSlash,
// RedirectFixedPath, RemoveExtraSlash, UseRawPath) and whatever the path
// looks like (dot segments, escapes, slashes, case): never for another
// route, never a 500, nothing logged at ERROR. gin's redirects answer
// before any guard.
func TestTemplateOfTheRouteGinServes(t *testing.T) {
	adaptertest.CheckTemplates(t, routes, nil,
		adaptertest.Setup{Name: "defaults (RedirectTrailingSlash)", Router: templateRouter(func(*gin.Engine) {}), Cases: []string{
			"/photos/1/ photos 301 -",
			"/api/items/1/ items 301 -",
			"//photos/1 photos 404 -",
			"/photos/../admin/1 photos 404 -",
			"/photos/%2e%2e/admin/1 photos 404 -",
			"/photos/1%2Fx photos 404 -",
			"/PHOTOS/1 photos 404 -",
			"/public/../admin/1 photos 200 public",
			"/public/%2e%2e/admin/1 photos 200 public",
		}},
		adaptertest.Setup{Name: "no RedirectTrailingSlash", Router: templateRouter(func(r *gin.Engine) { r.RedirectTrailingSlash = false }), Cases: []string{
			"/photos/1/ photos 404 -",
			"/v2/items/1/ plain 404 -",
		}},
		adaptertest.Setup{Name: "RemoveExtraSlash", Router: templateRouter(func(r *gin.Engine) { r.RemoveExtraSlash = true }), Cases: []string{
			"//photos//1 photos 200 photos",
			"/photos/./1 photos 200 photos",
			"/photos/../admin/1 photos 401 admin",
			"/photos/%2e%2e/admin/1 photos 401 admin",
			"/public/%2e%2e/admin/1 photos 401 admin",
			"/public/../photos/1 photos 200 photos",
			"/photos/../api/items/1 photos 401 items",
			"/x/../api/items/1 items 200 items",
			"/api/items/../../v2/items/1 items 401 plain",
			"/api/items/../../v2/items/1 plain 200 plain",
			"/v2/items/1/../../../admin/1 plain 401 admin",
			"/photos/1/ photos 301 -",
		}},
		adaptertest.Setup{Name: "RedirectFixedPath", Router: templateRouter(func(r *gin.Engine) { r.RedirectFixedPath = true }), Cases: []string{
			"/PHOTOS/1 photos 301 -",
			"/Admin/1 photos 301 -",
			"//photos/1 photos 301 -",
			"/photos/../admin/1 photos 301 -",
			"/photos/1/ photos 301 -",
		}},
		adaptertest.Setup{Name: "UseRawPath", Router: templateRouter(func(r *gin.Engine) { r.UseRawPath = true }), Cases: []string{
			"/photos/1%2Fx photos 200 photos",
			"/photos/1%2F..%2F..%2Fadmin%2F1 photos 200 photos",
			"/photos/%2e%2e/admin/1 photos 404 -",
		}},
		adaptertest.Setup{Name: "UseRawPath and RemoveExtraSlash", Router: templateRouter(func(r *gin.Engine) { r.UseRawPath, r.RemoveExtraSlash = true, true }), Cases: []string{
			"/photos/%2e%2e/admin/1 photos 404 -",
			"/photos/a%2F..%2F..%2Fadmin%2F1 photos 200 photos",
			"/photos/../admin/1 photos 401 admin",
		}},
	)
}
