// Command gin is a small gin application protected by oxd: a sign-in
// (RequireLogin, the callback and logout routes) and an API route guarded
// by a UMA scope. It runs on the embedded default: the development OP and
// the oxd engine in process.
//
//	go run ./examples/gin
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
	"github.com/oxdgo/oxd/examples/internal/devenv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5062", "`host:port` to listen on (HTTPS)")
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
	env.PrintBanner(out, "gin example")
	return env.Serve(ctx, h)
}

// newApp is the whole oxd wiring of a gin application.
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

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	// /login, /callback, /logout.
	oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)

	r.GET("/", func(c *gin.Context) {
		name := ""
		if u, ok := auth.Authenticated(c.Request); ok {
			name = u.Claim("name")
		}
		env.WriteHome(c.Writer, "oxd for Go: gin example", name)
	})

	// Signed-in users only.
	r.GET("/profile", oxdgin.RequireLogin(auth), func(c *gin.Context) {
		u, _ := oxdgin.User(c)
		c.String(http.StatusOK, "%s <%s>\nsubject %s\n", u.Claim("name"), u.Claim("email"), u.Subject)
	})

	// An RPT with the scope photos.read only. The declared template is
	// gin's full path: /api/photos/1 and /api/photos/2 are one resource.
	api := r.Group("/api")
	api.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /api/photos/:id", "photos.read"), func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "title": "A photo"})
	})

	// Register the declared UMA resources with oxd (uma_rs_protect).
	if err := auth.RegisterUMA(ctx); err != nil {
		return nil, err
	}
	return sessions.LoadAndSave(r), nil
}
