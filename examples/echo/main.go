// Command echo is a small echo application protected by oxd: a sign-in
// (RequireLogin, the callback and logout routes) and an API route guarded
// by a UMA scope. It runs on the embedded default: the development OP and
// the oxd engine in process.
//
//	go run ./examples/echo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"github.com/oxdgo/oxd"
	oxdecho "github.com/oxdgo/oxd/adapters/echo"
	"github.com/oxdgo/oxd/examples/internal/devenv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5063", "`host:port` to listen on (HTTPS)")
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
	env.PrintBanner(out, "echo example")
	return env.Serve(ctx, h)
}

// newApp is the whole oxd wiring of an echo application.
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

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// /login, /callback, /logout.
	oxdecho.Mount(e, auth, oxdecho.DefaultRoutes)

	e.GET("/", func(c echo.Context) error {
		name := ""
		if u, ok := auth.Authenticated(c.Request()); ok {
			name = u.Claim("name")
		}
		env.WriteHome(c.Response(), "oxd for Go: echo example", name)
		return nil
	})

	// Signed-in users only.
	e.GET("/profile", func(c echo.Context) error {
		u, _ := oxdecho.User(c)
		return c.String(http.StatusOK, fmt.Sprintf("%s <%s>\nsubject %s\n", u.Claim("name"), u.Claim("email"), u.Subject))
	}, oxdecho.RequireLogin(auth))

	// An RPT with the scope photos.read only. The declared template is
	// echo's route path: /api/photos/1 and /api/photos/2 are one resource.
	api := e.Group("/api")
	api.GET("/photos/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id"), "title": "A photo"})
	}, oxdecho.UMAProtect(auth, "GET /api/photos/:id", "photos.read"))

	// Register the declared UMA resources with oxd (uma_rs_protect).
	if err := auth.RegisterUMA(ctx); err != nil {
		return nil, err
	}
	return sessions.LoadAndSave(e), nil
}
