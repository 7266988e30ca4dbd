// Command chi is a small chi application protected by oxd: a sign-in
// (RequireLogin, the callback and logout routes) and an API route guarded
// by a UMA scope. It runs on the embedded default: the development OP and
// the oxd engine in process.
//
//	go run ./examples/chi
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/oxdgo/oxd"
	oxdchi "github.com/oxdgo/oxd/adapters/chi"
	"github.com/oxdgo/oxd/examples/internal/devenv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5061", "`host:port` to listen on (HTTPS)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr string, out io.Writer) error {
	env, err := devenv.Start(ctx, addr)
	if err != nil {
		return err
	}
	defer env.Close()
	h, err := newApp(ctx, env)
	if err != nil {
		return err
	}
	env.PrintBanner(out, "chi example")
	return env.Serve(ctx, h)
}

// newApp is the whole oxd wiring of a chi application.
func newApp(ctx context.Context, env *devenv.Env) (http.Handler, error) {
	sessions := scs.New()
	auth, err := oxd.New(env.Client, sessions, oxd.Config{
		OxdID:                 env.OxdID,
		RedirectURL:           env.URL(devenv.CallbackPath),
		PostLogoutRedirectURI: env.URL(devenv.PostLogoutPath),
	})
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	// GET /login, GET /callback, POST /logout.
	oxdchi.Mount(r, auth, oxdchi.DefaultRoutes)

	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if u, ok := auth.Authenticated(r); ok {
			name = u.Claim("name")
		}
		env.WriteHome(w, "oxd for Go: chi example", name)
	})

	// Signed-in users only.
	r.With(auth.RequireLogin).Get("/profile", func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxdchi.User(r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s <%s>\nsubject %s\n", u.Claim("name"), u.Claim("email"), u.Subject)
	})

	// An RPT with the scope photos.read only. The declared template is
	// chi's route pattern: /api/photos/1 and /api/photos/2 are one
	// resource.
	r.Route("/api", func(r chi.Router) {
		r.With(oxdchi.UMAProtect(auth, "GET /api/photos/{id}", "photos.read")).
			Get("/photos/{id}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{"id": chi.URLParam(r, "id"), "title": "A photo"})
			})
	})

	// Register the declared UMA resources with oxd (uma_rs_protect).
	if err := auth.RegisterUMA(ctx); err != nil {
		return nil, err
	}
	return sessions.LoadAndSave(r), nil
}
