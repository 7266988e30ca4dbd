// Command minimal is the smallest complete application protected by oxd:
// a home page, /login, an account page behind RequireLogin, the callback,
// POST /logout, a logged-out page and one UMA-protected API route. It
// serves plain HTTP on 127.0.0.1 for development (browsers keep the Secure
// session cookie on loopback addresses) and talks to an oxd over the
// socket protocol. On the first run oxdclient.EnsureSite registers the
// application and writes the site file; later runs reuse it.
//
// Two commands run it, from the repository root, in two terminals:
//
//	go run ./cmd/oxd-server -dev-op -dev-op-addr 127.0.0.1:8090
//	go run ./examples/minimal
//
// then open http://127.0.0.1:8080 and sign in as alice / alice-password.
// Flags: -addr (default 127.0.0.1:8080), -oxd (127.0.0.1:8099), -op
// (http://127.0.0.1:8090, the development OP), -site-file (oxd-site.json).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
)

type config struct {
	Addr     string // where the application listens (loopback, plain HTTP)
	Oxd      string // oxd's socket address
	OP       string // the OP's issuer
	SiteFile string // where EnsureSite keeps the registration
}

func main() {
	var c config
	flag.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "`host:port` of the application (plain HTTP: use a loopback address)")
	flag.StringVar(&c.Oxd, "oxd", "127.0.0.1:8099", "`host:port` of oxd's socket protocol")
	flag.StringVar(&c.OP, "op", "http://127.0.0.1:8090", "issuer `URL` of the OP (default: the development OP of oxd-server -dev-op -dev-op-addr 127.0.0.1:8090)")
	flag.StringVar(&c.SiteFile, "site-file", "oxd-site.json", "`file` where the site registration is kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, func(url string) { log.Printf("minimal: open %s (user alice, password alice-password)", url) }); err != nil {
		log.Fatal(err)
	}
}

// run listens on c.Addr, sets the application up and serves until ctx
// ends; ready is called with the application's URL once it serves.
func run(ctx context.Context, c config, ready func(url string)) error {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	client, h, err := newApp(ctx, c, base)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer client.Close()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ready(base)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newApp is the whole oxd wiring of the application at base (its URL).
func newApp(ctx context.Context, c config, base string) (*oxdclient.Client, http.Handler, error) {
	sock, err := oxdclient.NewSocket(c.Oxd, oxdclient.SocketConfig{})
	if err != nil {
		return nil, nil, err
	}
	client := oxdclient.New(sock, oxdclient.Config{Logger: slog.Default()}) // WARNs, e.g. a stale site file
	// First run: setup_client, written to the site file. Later runs: the
	// file. Either way the client gets the site's protection credentials.
	site, err := oxdclient.EnsureSite(ctx, client, c.SiteFile, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   c.OP,
			AuthorizationRedirectURI: base + "/callback",
			PostLogoutRedirectURI:    base + "/logged-out",
			Scope:                    []string{"openid", "profile", "email"},
		},
	}, oxdclient.ReRegisterOnMismatch()) // development: the development OP forgets its clients on restart
	if err != nil {
		client.Close()
		return nil, nil, err
	}

	sessions := scs.New() // any scs store: memstore, Redis, SQL
	auth, err := oxd.New(client, sessions, oxd.Config{
		OxdID:                 site.OxdID,
		RedirectURL:           base + "/callback",
		PostLogoutRedirectURI: base + "/logged-out",
	})
	if err != nil {
		client.Close()
		return nil, nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", homePage)
	mux.Handle("GET /login", auth.LoginHandler()) // ?return_to=/account
	mux.Handle("GET /account", auth.RequireLogin(http.HandlerFunc(accountPage)))
	mux.Handle("GET /callback", auth.CallbackHandler()) // the registered redirect URI
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /logged-out", loggedOutPage) // not behind RequireLogin
	mux.Handle("GET /api/photos/{id}", auth.UMAProtect("GET /api/photos/{id}", "photos:read")(http.HandlerFunc(photoAPI)))
	if err := auth.RegisterUMA(ctx); err != nil { // uma_rs_protect; idempotent across restarts
		client.Close()
		return nil, nil, err
	}
	return client, sessions.LoadAndSave(mux), nil
}

const logoutForm = `<form method="post" action="/logout"><button>Sign out</button></form>`

func homePage(w http.ResponseWriter, r *http.Request) {
	page(w, "Home", `<p><a href="/login?return_to=/account">Sign in</a> · <a href="/account">Account</a></p>`)
}

func accountPage(w http.ResponseWriter, r *http.Request) {
	u, _ := oxd.UserFrom(r.Context()) // RequireLogin put the user there
	page(w, "Account", fmt.Sprintf("<p>Signed in as %s &lt;%s&gt; (subject %s).</p>%s",
		html.EscapeString(u.Claim("name")), html.EscapeString(u.Claim("email")), html.EscapeString(u.Subject), logoutForm))
}

func loggedOutPage(w http.ResponseWriter, r *http.Request) {
	page(w, "Signed out", `<p>You are signed out. <a href="/">Home</a></p>`)
}

// photoAPI answers only requests whose RPT carries photos:read.
func photoAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "title": "A photo"})
}

func page(w http.ResponseWriter, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n<h1>%s</h1>\n%s\n</body></html>\n", title, title, body)
}
