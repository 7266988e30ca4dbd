package oxdchi_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
	"github.com/oxdgo/oxd/oxdclient"
)

// A chi application: the login routes, a page for signed-in users, and an
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

	r := chi.NewRouter()
	oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)
	r.With(auth.RequireLogin).Get("/profile", func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxdchi.User(r)
		fmt.Fprintf(w, "Hello, %s", u.Name())
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
