package oxdecho_test

import (
	"context"
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"github.com/oxdgo/oxd"
	oxdecho "github.com/oxdgo/oxd/adapters/echo"
)

// auth is the oxd middleware and sessions its session manager, made at
// startup with oxd.New (see the oxd package's example).
var (
	sessions = scs.New()
	auth     *oxd.Auth
)

// An echo application: the login routes, a page for signed-in users, and
// an API route protected with a UMA scope.
func Example() {
	e := echo.New()
	oxdecho.Mount(e, auth, oxdecho.DefaultRoutes)
	e.GET("/profile", func(c echo.Context) error {
		u, _ := oxdecho.User(c)
		return c.String(http.StatusOK, "Hello, "+u.Claim("name"))
	}, oxdecho.RequireLogin(auth))
	api := e.Group("/api")
	// The declared template is echo's path of the route.
	api.GET("/photos/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"photo": c.Param("id")})
	}, oxdecho.UMAProtect(auth, "GET /api/photos/:id", "photos:view"))

	// Register the declared UMA resources with oxd once, at startup.
	if err := auth.RegisterUMA(context.Background()); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServeTLS("127.0.0.1:8443", "cert.pem", "key.pem", sessions.LoadAndSave(e)))
}
