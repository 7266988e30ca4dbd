// Package devenv is the embedded default of the small examples: the
// development OP of package devop on a loopback port, the oxd engine of
// package oxdserver in process, a site registered for the example's URLs
// (setup_client), and an HTTPS listener with a self-signed certificate.
// Everything an example needs to run with no outside service; a real
// application has an oxd-server (or the engine) and an OP instead.
package devenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/oxdgo/oxd/internal/devcert"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest/devop"
)

// Paths of the example applications, registered at the OP.
const (
	CallbackPath       = "/callback"
	PostLogoutPath     = "/"
	ClaimsCallbackPath = "/claims-callback"
)

// CertName is the common name of the examples' self-signed certificates
// (made by internal/devcert, fresh on every start).
const CertName = "oxd for Go demo (self-signed)"

// Env is a running embedded default.
type Env struct {
	// OP is the development OP (http://127.0.0.1:<port>).
	OP *devop.OP
	// Client talks to the in-process engine.
	Client *oxdclient.Client
	// OxdID is the site registered for the application.
	OxdID string
	// BaseURL is the application's address, https://127.0.0.1:<port>.
	BaseURL string
	// Cert is the application's self-signed certificate.
	Cert *x509.Certificate

	engine *oxdserver.Engine
	ln     net.Listener
	tls    *tls.Config
}

// Start listens on addr (a loopback host:port), starts the development OP
// and the engine, and registers the application with setup_client.
func Start(ctx context.Context, addr string) (_ *Env, err error) {
	e := &Env{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(e.ln.Addr().String())
	e.BaseURL = "https://" + e.ln.Addr().String()
	cert, err := devcert.Generate(devcert.Options{CommonName: CertName}, host)
	if err != nil {
		return nil, err
	}
	e.Cert = cert.Leaf
	e.tls = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}

	e.OP, err = devop.StartOP(devop.OPConfig{})
	if err != nil {
		return nil, err
	}
	e.engine, err = oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true}) // the development OP is plain http on loopback
	if err != nil {
		return nil, err
	}
	e.Client = oxdclient.New(e.engine, oxdclient.Config{})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	site, err := e.Client.SetupClient(sctx, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   e.OP.Issuer(),
			AuthorizationRedirectURI: e.BaseURL + CallbackPath,
			PostLogoutRedirectURI:    e.BaseURL + PostLogoutPath,
			ClaimsRedirectURI:        []string{e.BaseURL + ClaimsCallbackPath},
			Scope:                    []string{"openid", "profile", "email"},
			GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
			ClientName:               "oxd for Go example",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setup_client: %w", err)
	}
	e.OxdID = site.OxdID
	return e, nil
}

// URL returns BaseURL + path.
func (e *Env) URL(path string) string { return e.BaseURL + path }

// PrintBanner says where the application is and how to sign in.
func (e *Env) PrintBanner(w io.Writer, name string) {
	fmt.Fprintf(w, "%s: open %s\n", name, e.BaseURL)
	fmt.Fprintf(w, "  self-signed certificate, SHA-256 %s\n", devcert.Fingerprint(e.Cert.Raw))
	fmt.Fprintf(w, "  development OP at %s; users:", e.OP.Issuer())
	for _, u := range devop.DemoUsers {
		fmt.Fprintf(w, " %s / %s", u.Username, u.Password)
	}
	fmt.Fprintln(w)
}

// Serve serves h over HTTPS until ctx ends, then shuts down.
func (e *Env) Serve(ctx context.Context, h http.Handler) error {
	srv := &http.Server{Handler: h, TLSConfig: e.tls, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(e.ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Close stops the OP and the engine (and the listener when Serve did not
// run).
func (e *Env) Close() {
	if e.ln != nil {
		_ = e.ln.Close()
	}
	if e.Client != nil {
		_ = e.Client.Close() // closes the engine
	} else if e.engine != nil {
		_ = e.engine.Close()
	}
	if e.OP != nil {
		e.OP.Close()
	}
}

// HTTPClient is a client that trusts the application's certificate, keeps
// cookies in jar (may be nil) and does not follow redirects: for tests.
func (e *Env) HTTPClient(jar http.CookieJar) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.Cert)
	return &http.Client{
		Jar:       jar,
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.App}}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;line-height:1.5">
<h1>{{.App}}</h1>
{{if .User}}<p>Signed in as <strong>{{.User}}</strong>.</p>
<p><a href="/profile">Your profile</a></p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
{{else}}<p>Not signed in. <a href="/profile">Your profile</a> needs a sign-in.</p>{{end}}
<h2>UMA</h2>
<p><code>GET /api/photos/{id}</code> needs an RPT with the scope <code>photos.read</code>.
Without one it answers 401 with a <code>WWW-Authenticate: UMA …</code> challenge carrying a permission ticket:</p>
<pre>curl -ik {{.Base}}/api/photos/1</pre>
</body></html>
`))

// WriteHome writes the examples' home page; user is the signed-in user's
// name, or "".
func (e *Env) WriteHome(w http.ResponseWriter, app, user string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = homePage.Execute(w, struct{ App, User, Base string }{app, user, e.BaseURL})
}
