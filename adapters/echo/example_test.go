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

// Logout everywhere with echo: Mount puts the back- and front-channel
// logout handlers at the paths of Routes (registered at the OP with the
// site); the Auth needs oxd.Config.SessionIndex.
func Example_logoutChannels() {
	e := echo.New()
	routes := oxdecho.DefaultRoutes
	routes.BackChannelLogout = "/logout/backchannel"
	routes.FrontChannelLogout = "/logout/frontchannel"
	oxdecho.Mount(e, auth, routes)
	// Or one by one:
	e.POST("/oidc/backchannel", echo.WrapHandler(auth.BackChannelLogoutHandler()))
	e.GET("/oidc/frontchannel", echo.WrapHandler(auth.FrontChannelLogoutHandler()))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", sessions.LoadAndSave(e)))
}
