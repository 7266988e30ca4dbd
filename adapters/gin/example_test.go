package oxdgin_test

import (
	"context"
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
)

// auth is the oxd middleware and sessions its session manager, made at
// startup with oxd.New (see the oxd package's example).
var (
	sessions = scs.New()
	auth     *oxd.Auth
)

// A gin application: the login routes, a page for signed-in users, and an
// API route protected with a UMA scope.
func Example() {
	r := gin.New()
	oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)
	r.GET("/profile", oxdgin.RequireLogin(auth), func(c *gin.Context) {
		u, _ := oxdgin.User(c)
		c.String(http.StatusOK, "Hello, %s", u.Claim("name"))
	})
	api := r.Group("/api")
	// The declared template is gin's full path of the route.
	api.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /api/photos/:id", "photos:view"), func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"photo": c.Param("id")})
	})

	// Register the declared UMA resources with oxd once, at startup.
	if err := auth.RegisterUMA(context.Background()); err != nil {
		log.Fatal(err)
	}
	// One session load per request for the whole engine.
	log.Fatal(http.ListenAndServeTLS("127.0.0.1:8443", "cert.pem", "key.pem", sessions.LoadAndSave(r)))
}

// Logout everywhere with gin: Mount puts the back- and front-channel
// logout handlers at the paths of Routes (registered at the OP with the
// site); the Auth needs oxd.Config.SessionIndex.
func Example_logoutChannels() {
	r := gin.New()
	routes := oxdgin.DefaultRoutes
	routes.BackChannelLogout = "/logout/backchannel"
	routes.FrontChannelLogout = "/logout/frontchannel"
	oxdgin.Mount(r, auth, routes)
	// Or one by one:
	r.POST("/oidc/backchannel", gin.WrapH(auth.BackChannelLogoutHandler()))
	r.GET("/oidc/frontchannel", gin.WrapH(auth.FrontChannelLogoutHandler()))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", sessions.LoadAndSave(r)))
}
