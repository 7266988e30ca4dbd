package oxdchi_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
)

// auth is the oxd middleware, made at startup with oxd.New (see the oxd
// package's example).
var auth *oxd.Auth

// A chi application: the login routes, a page for signed-in users, and an
// API route protected with a UMA scope.
func Example() {
	r := chi.NewRouter()
	oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
	r.With(auth.RequireLogin).Get("/profile", func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxdchi.User(r)
		fmt.Fprintf(w, "Hello, %s", u.Claim("name"))
	})
	r.Route("/api", func(r chi.Router) {
		// The declared template is chi's complete route pattern.
		r.With(oxdchi.UMAProtect(auth, "GET /api/photos/{id}", "photos:view")).
			Get("/photos/{id}", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "photo %s", chi.URLParam(r, "id"))
			})
	})

	// Register the declared UMA resources with oxd once, at startup.
	if err := auth.RegisterUMA(context.Background()); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServeTLS("127.0.0.1:8443", "cert.pem", "key.pem", r))
}

// Logout everywhere with chi: Mount puts the back- and front-channel
// logout handlers at the paths of Routes (registered at the OP with the
// site); the Auth needs oxd.Config.SessionIndex.
func Example_logoutChannels() {
	r := chi.NewRouter()
	routes := oxdchi.DefaultRoutes
	routes.BackChannelLogout = "/logout/backchannel"
	routes.FrontChannelLogout = "/logout/frontchannel"
	oxdchi.Mount(r, auth, routes)
	// Or one by one:
	r.Method(http.MethodPost, "/oidc/backchannel", auth.BackChannelLogoutHandler())
	r.Method(http.MethodGet, "/oidc/frontchannel", auth.FrontChannelLogoutHandler())
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", r))
}
