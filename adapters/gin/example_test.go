package oxdgin_test

import (
	"context"
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
	"github.com/oxdgo/oxd/oxdclient"
)

// A gin application: the login routes, a page for signed-in users, and an
// API route protected with a UMA scope.
func Example() {
	transport, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
	if err != nil {
		log.Fatal(err)
	}
	sessions := scs.New()
	auth, err := oxd.New(oxdclient.New(transport, oxdclient.Config{}), sessions, oxd.Config{
		SiteFile:              "oxd-site.json",
		PostLogoutRedirectURI: "https://app.example.com/",
	})
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)
	r.GET("/profile", oxdgin.RequireLogin(auth), func(c *gin.Context) {
		u, _ := oxdgin.User(c)
		c.String(http.StatusOK, "Hello, %s", u.Name())
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
