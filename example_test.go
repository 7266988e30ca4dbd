package oxd_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// The usual wiring with net/http's ServeMux and oxd-server on its default
// socket. The session manager's LoadAndSave wraps the whole mux.
func Example() {
	sessions := scs.New() // memstore; use a shared store (Redis…) for several instances
	sock, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := oxd.New(oxdclient.New(sock, oxdclient.Config{}), sessions, oxd.Config{
		SiteFile:              "site.json", // written by oxdclient.EnsureSite at setup
		RedirectURL:           "https://app.example.com/callback",
		PostLogoutRedirectURI: "https://app.example.com/logged-out",
		Logger:                nil, // a *slog.Logger to see failures
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/account/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxd.UserFrom(r.Context())
		fmt.Fprintf(w, "Hello %s", u.Claim("name"))
	})))
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("GET /login", auth.LoginHandler()) // <a href="/login?return_to=/account/">
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "You are signed out.")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := auth.Authenticated(r); ok { // no redirect, no oxd call
			fmt.Fprintf(w, "Signed in as %s", u.Subject)
			return
		}
		fmt.Fprint(w, `<a href="/login?return_to=/account/">Sign in</a>`)
	})
	log.Fatal(http.ListenAndServeTLS(":8443", "cert.pem", "key.pem", sessions.LoadAndSave(mux)))
}

// A custom decision between API requests (401, never a redirect) and
// browser navigations (redirect to the OP): everything under /api/ is an
// API, whatever its headers; elsewhere the default rules apply.
func ExampleIsAPIRequest() {
	decide := func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/api/") || oxd.IsAPIRequest(r)
	}
	// Pass it as Config.APIRequest:
	_ = oxd.Config{APIRequest: decide}

	nav := httptest.NewRequest("GET", "/reports/", nil)
	nav.Header.Set("Accept", "text/html")
	nav.Header.Set("Sec-Fetch-Mode", "navigate")
	api := httptest.NewRequest("GET", "/api/reports", nil)
	api.Header.Set("Accept", "text/html")
	fetch := httptest.NewRequest("GET", "/reports/data", nil)
	fetch.Header.Set("Sec-Fetch-Mode", "cors")
	post := httptest.NewRequest("POST", "/reports/", nil)
	for _, r := range []*http.Request{nav, api, fetch, post} {
		fmt.Println(r.Method, r.URL.Path, decide(r))
	}
	// Output:
	// GET /reports/ false
	// GET /api/reports true
	// GET /reports/data true
	// POST /reports/ true
}

// A whole login against the development OP of package oxdtest, through the
// in-process engine: the browser asks for a protected page, signs in at the
// OP, and lands on the page it asked for.
func ExampleAuth_RequireLogin() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer op.Close()
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	client := oxdclient.New(engine, oxdclient.Config{})

	sessions := scs.New()
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(sessions.LoadAndSave(mux))
	defer app.Close()

	site, err := client.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: app.URL + "/callback",
		PostLogoutRedirectURI:    app.URL + "/logged-out",
		Scope:                    []string{"openid", "profile", "email"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := oxd.New(client, sessions, oxd.Config{
		OxdID:                 site.OxdID,
		PostLogoutRedirectURI: app.URL + "/logged-out",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/account/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxd.UserFrom(r.Context())
		fmt.Fprintf(w, "Hello %s <%s> at %s\n", u.Claim("name"), u.Claim("email"), r.URL.RequestURI())
	})))
	mux.Handle("GET /callback", auth.CallbackHandler())

	// The browser: a cookie jar, redirects not followed for the first step.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: app.Client().Transport, Jar: jar}
	first := &http.Client{Transport: browser.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	res, err := first.Get(app.URL + "/account/settings")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.HasPrefix(res.Header.Get("Location"), op.Issuer()))

	callback, err := oxdtest.BrowserLogin(ctx, browser, res.Header.Get("Location"), "alice", "alice-password")
	if err != nil {
		log.Fatal(err)
	}
	res, err = browser.Get(callback.String()) // the callback redirects to /account/settings
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(os.Stdout, res.Body)
	// Output:
	// 303 true
	// Hello Alice Example <alice@example.test> at /account/settings
}

// New with the settings a deployment usually changes: the site from a site
// file, a bound on every oxd call, and UMA protection with a configured
// issuer. New validates everything and fails here rather than at request
// time.
func ExampleNew() {
	sock, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = oxd.New(oxdclient.New(sock, oxdclient.Config{}), scs.New(), oxd.Config{
		OxdID:                 "6F9619FF-8B86-D011-B42D-00C04FC964FF",
		PostLogoutRedirectURI: "https://app.example.com/logged-out",
		CallTimeout:           5 * time.Second, // default oxd.DefaultCallTimeout
		UMA: oxd.UMAConfig{
			Issuer:      "https://op.example.com",
			MaxGrantTTL: 30 * time.Second,
		},
	})
	fmt.Println(err)
	// Output: <nil>
}

// A router that does not set http.Request.Pattern tells UMAProtect the
// template of the route it matched with WithRouteTemplate, before the
// guard runs. The adapters of this module (adapters/chi, adapters/gin,
// adapters/echo) do this; here a hand-written router for /items/{id}.
func ExampleWithRouteTemplate() {
	var auth *oxd.Auth // from oxd.New
	items := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "item") })
	guard := auth.UMAProtect("GET /items/:id", "items:read")(items)
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/items/") && !strings.Contains(r.URL.Path[len("/items/"):], "/") {
			guard.ServeHTTP(w, r.WithContext(oxd.WithRouteTemplate(r.Context(), "/items/:id")))
			return
		}
		http.NotFound(w, r)
	})
	_ = router
}

// Logout is a same-origin POST from a form; the handler ends the session
// and sends the browser through the OP's end-session endpoint to
// Config.PostLogoutRedirectURI.
func ExampleAuth_LogoutHandler() {
	var auth *oxd.Auth // from oxd.New
	mux := http.NewServeMux()
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /account/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form method="post" action="/logout"><button>Sign out</button></form>`)
	})
}
