package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/truncate"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/sessionindex"
)

// sessionCookieName uses the __Host- prefix: the browser accepts the cookie
// only if it is Secure, has Path=/ and no Domain.
const sessionCookieName = "__Host-oxd-demo"

// app serves the demo's pages. Its site (settings, middleware, session
// store, routes) is replaced as a whole when the settings page registers,
// updates or deletes the client.
type app struct {
	d     *demo
	log   *slog.Logger
	pages *pages

	mu   sync.Mutex // serializes settings changes
	cur  atomic.Pointer[site]
	note string // said once at startup

	sessionStore *sessionStore
	pendingKey   []byte // Config.PendingLoginKey
	generation   atomic.Uint64

	// rsClient calls the demo's own protected API, as a separate client
	// application would (the UMA page is the requesting party).
	rsClient *http.Client
	cop      *http.CrossOriginProtection
}

// site is one state of the application. It is never modified once
// published; a settings change builds a new one.
type site struct {
	settings *Settings
	auth     *oxd.Auth // nil when no client is registered
	sessions *scs.SessionManager
	store    *sessionGen
	uma      *umaState // nil when no client is registered
	// index records which sessions belong to which OP session, so that a
	// logout at the OP (back- or front-channel) ends them.
	index *sessionindex.Memory
	mux   *http.ServeMux
	// problem says why a saved registration is not usable (shown on the
	// settings page).
	problem string
}

func newApp(ctx context.Context, d *demo) (_ *app, err error) {
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	a := &app{d: d, log: d.log, pages: p, cop: http.NewCrossOriginProtection(), sessionStore: newSessionStore(time.Minute), pendingKey: make([]byte, oxd.PendingLoginKeySize)}
	if _, err := rand.Read(a.pendingKey); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.rsClient, err = a.selfClient()
	if err != nil {
		return nil, err
	}

	saved, err := loadSettings(d.opts.SettingsPath)
	if err != nil {
		return nil, err
	}
	var st *site
	switch {
	case saved == nil:
		st, err = a.build(defaultSettings(d.baseURL, d.opHost, d.devOP != nil), nil, "")
	case !saved.Registered():
		st, err = a.build(a.adoptDefaults(saved), nil, "")
	case d.engine != nil:
		// The in-process engine (and the development OP) start empty:
		// register the saved client again.
		st, err = a.reRegister(ctx, saved)
	case saved.Oxd != d.oxdDesc:
		problem := fmt.Sprintf("The saved client was registered with %s; this run uses %s. Register it again (or restart the demo with the oxd it was registered with).", saved.Oxd, d.oxdDesc)
		keep := saved.clone()
		keep.Site = nil
		st, err = a.build(keep, nil, problem)
	default:
		st, err = a.build(saved, nil, "")
	}
	if err != nil {
		return nil, err
	}
	if st.uma != nil {
		if err := st.uma.register(ctx); err != nil {
			a.log.Warn("demo: registering the UMA resources failed", "error", err)
			st.problem = "The UMA resources could not be registered with oxd: " + describeOxdError(err)
		}
	}
	a.cur.Store(st)
	return a, nil
}

// adoptDefaults refreshes settings that were left at their defaults for
// another address of the demo or another run's development OP.
func (a *app) adoptDefaults(s *Settings) *Settings {
	s = s.clone()
	if s.EmbeddedOP || a.d.opts.OP != "" {
		s.OPHost = a.d.opHost
		s.EmbeddedOP = a.d.devOP != nil
	}
	for _, u := range []*string{&s.AuthorizationRedirectURI, &s.PostLogoutRedirectURI, &s.ClaimsRedirectURI} {
		pu, err := url.Parse(*u)
		if err != nil {
			continue
		}
		switch pu.Path {
		case "/callback", "/logged-out", "/uma/claims-callback":
			if isLoopbackURL(pu) && !strings.HasPrefix(*u, a.d.baseURL+"/") {
				*u = a.d.baseURL + pu.Path
			}
		}
	}
	return s
}

func isLoopbackURL(u *url.URL) bool { return hostutil.PlainHTTPStaysLocal(u.Hostname()) }

// reRegister runs setup_client again for saved settings (the in-process
// engine keeps no state between runs). On failure the demo starts
// unregistered and says why.
func (a *app) reRegister(ctx context.Context, saved *Settings) (*site, error) {
	s := a.adoptDefaults(saved)
	s.Site = nil
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reg, err := a.setupClient(ctx, s)
	if err != nil {
		problem := "The saved client could not be registered again with the in-process engine: " + describeOxdError(err)
		a.log.Warn("demo: registering the saved client again failed", "error", err)
		return a.build(s, nil, problem)
	}
	if err := saveSettings(a.d.opts.SettingsPath, reg); err != nil {
		return nil, err
	}
	a.note = "the saved client was registered again (the in-process engine starts empty on every run)"
	return a.build(reg, nil, "")
}

// startupNote is a line for the banner, or "".
func (a *app) startupNote() string {
	if st := a.cur.Load(); st != nil && st.problem != "" {
		return st.problem
	}
	return a.note
}

// setupClient runs setup_client for s and returns the registered settings.
func (a *app) setupClient(ctx context.Context, s *Settings) (*Settings, error) {
	p := oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   s.OPHost,
			AuthorizationRedirectURI: s.AuthorizationRedirectURI,
			PostLogoutRedirectURI:    s.PostLogoutRedirectURI,
			ClaimsRedirectURI:        []string{s.ClaimsRedirectURI},
			Scope:                    s.Scopes,
			AcrValues:                s.AcrValues,
			GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
			ResponseTypes:            []string{"code"},
			ClientName:               s.ClientName,
			OxdRPProgrammingLanguage: "go",
			// Logout at the OP ends the demo's session too (back-channel:
			// the OP calls the demo directly; /logout/frontchannel is
			// mounted as well, for OPs that only do front-channel).
			ClientBackchannelLogoutURI: originOf(s.AuthorizationRedirectURI) + "/logout/backchannel",
		},
		SetupClientName: s.ClientName + " (setup)",
	}
	a.d.opts.Clients.apply(&p)
	r, err := a.d.client.SetupClient(ctx, p)
	if err != nil {
		return nil, err
	}
	if r.OxdID == "" {
		return nil, errors.New("setup_client answered no oxd_id")
	}
	out := s.clone()
	out.Oxd = a.d.oxdDesc
	out.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	out.Site = &oxdclient.Site{
		OxdID:                         r.OxdID,
		OPHost:                        cmp(r.OPHost, s.OPHost),
		ClientIDOfOxdID:               r.ClientIDOfOxdID,
		SetupClientOxdID:              r.SetupClientOxdID,
		ClientID:                      r.ClientID,
		ClientSecret:                  r.ClientSecret,
		ClientRegistrationAccessToken: r.ClientRegistrationAccessToken,
		ClientRegistrationClientURI:   r.ClientRegistrationClientURI,
		ClientIDIssuedAt:              r.ClientIDIssuedAt,
		ClientSecretExpiresAt:         r.ClientSecretExpiresAt,
		ClientAuthenticationMethod:    a.d.opts.Clients.protectionMethod(r.ClientID),
		Command:                       oxdclient.CmdSetupClient,
	}
	return out, nil
}

// originOf is the scheme://host of an absolute URL ("" if it is not one).
func originOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// signedInMarker is a cookie the demo sets while a user is signed in, so
// that it can tell "you were signed out at the OP" (the session ended
// without this browser's sign-out) from "never signed in".
const signedInMarker = "demo_signed_in"

func setMarker(w http.ResponseWriter, on bool) {
	c := &http.Cookie{Name: signedInMarker, Value: "1", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if !on {
		c.Value, c.MaxAge = "", -1
	}
	http.SetCookie(w, c)
}

// endedAtOP reports whether the browser had a signed-in session that ended
// without its own sign-out (a logout at the OP), and clears the marker.
func endedAtOP(w http.ResponseWriter, r *http.Request, signedIn bool) bool {
	c, err := r.Cookie(signedInMarker)
	if err != nil || c.Value == "" || signedIn {
		return false
	}
	setMarker(w, false)
	return true
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// build makes a site for s. A registered s gets the login middleware and
// the UMA resources; keep, when non-nil, is the previous site whose
// sessions survive (an update of the same client).
func (a *app) build(s *Settings, keep *site, problem string) (*site, error) {
	st := &site{settings: s, problem: problem}
	if keep != nil {
		st.store, st.index = keep.store, keep.index
	} else {
		st.store = a.sessionStore.generation(a.generation.Add(1))
		st.index = sessionindex.NewMemory(sessionindex.MemoryOptions{})
	}
	st.sessions = scs.New()
	st.sessions.Store = st.store
	st.sessions.Lifetime = 8 * time.Hour
	st.sessions.IdleTimeout = time.Hour
	st.sessions.Cookie.Name = sessionCookieName
	st.sessions.Cookie.Path = "/"
	st.sessions.Cookie.SameSite = http.SameSiteLaxMode
	st.sessions.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		a.log.Warn("demo: session error", "error", err)
		http.Error(w, "The session could not be stored.", http.StatusInternalServerError)
	}

	if s.Registered() {
		a.d.client.SetProtection(s.Site.ProtectionCredentials())
		cfg := oxd.Config{
			OxdID:                 s.Site.OxdID,
			RedirectURL:           s.AuthorizationRedirectURI,
			PostLogoutRedirectURI: s.PostLogoutRedirectURI,
			Scopes:                s.Scopes,
			AcrValues:             s.AcrValues,
			DefaultReturnTo:       "/userinfo",
			ErrorHandler:          a.authError,
			Logger:                a.log,
			Realm:                 "oxd-demo",
			UMA:                   umaConfig(st),
			SessionIndex:          st.index,
			// The demo's session store lives in this process: one random
			// key per process. Replicas sharing a store share a key.
			PendingLoginKey: a.pendingKey,
			// The metrics /metrics exposes (-metrics-listen).
			MeterProvider: a.d.meterProvider(),
		}
		auth, err := oxd.New(a.d.client, st.sessions, cfg)
		browser := err == nil
		if err != nil && cfg.UMA.ClaimsRedirectURL != "" {
			// Without the claims redirect URI: when that works, the URI
			// was one oxd cannot use unencoded; the API still works and
			// the browser-mode page is left out.
			cfg.UMA.ClaimsRedirectURL = ""
			if auth, err2 := oxd.New(a.d.client, st.sessions, cfg); err2 == nil {
				a.log.Warn("demo: UMA browser mode disabled", "error", err)
				st.auth, err = auth, nil
			}
		} else {
			st.auth = auth
		}
		if err != nil {
			return nil, fmt.Errorf("login middleware: %w", err)
		}
		st.uma = &umaState{a: a, st: st, browser: browser}
	} else {
		a.d.client.SetProtection(nil)
	}
	st.mux = a.routes(st)
	return st, nil
}

// publish makes st the current site.
func (a *app) publish(st *site) { a.cur.Store(st) }

func (a *app) close() { a.sessionStore.Close() }

// selfClient is the HTTP client the UMA page uses to call the demo's API:
// it trusts the demo's generated certificate (or the system roots with
// -tls-cert), and verifies it.
func (a *app) selfClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.d.cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(a.d.cert)
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	return &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// ServeHTTP adds the security headers, refuses cross-origin state-changing
// requests, and hands the request to the current site.
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	if err := a.cop.Check(r); err != nil {
		a.renderError(w, r, http.StatusForbidden, "Cross-origin request refused",
			"This form was submitted from another site. Use the demo's own pages.")
		return
	}
	a.cur.Load().mux.ServeHTTP(w, r)
}

// routes are the pages of one site.
func (a *app) routes(st *site) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { a.home(w, r, st) })
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) { a.settingsPage(w, r, st) })
	mux.HandleFunc("POST /settings/register", a.register)
	mux.HandleFunc("POST /settings/update", a.update)
	mux.HandleFunc("POST /settings/delete", a.remove)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) { a.loggedOut(w, r, st) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.renderError(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})

	if st.auth == nil {
		// Nothing to sign in to yet: every page that needs the client
		// sends the browser to the settings page.
		toSettings := func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/settings?m=register-first", http.StatusSeeOther)
		}
		for _, p := range []string{"/login", "/login/start", "/callback", "/userinfo", "/uma", "/uma/", "/api/", "/logout"} {
			mux.HandleFunc(p, toSettings)
		}
		return mux
	}
	auth := st.auth
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { a.loginPage(w, r, st) })
	mux.Handle("GET /login/start", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	logout := auth.LogoutHandler()
	mux.Handle("/logout", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // POST only; it answers 405 to the rest
		if r.Method == http.MethodPost {
			setMarker(w, false)
		}
		logout.ServeHTTP(w, r)
	}))
	// OpenID Connect Back-Channel and Front-Channel Logout: the OP ends
	// the demo's sessions when the user signs out there.
	mux.Handle("POST /logout/backchannel", auth.BackChannelLogoutHandler())
	mux.Handle("GET /logout/frontchannel", auth.FrontChannelLogoutHandler())
	mux.Handle("GET /userinfo", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.userinfo(w, r, st)
	})))
	st.uma.routes(mux)
	return mux
}

// authError renders the middleware's failures with the demo's layout.
func (a *app) authError(w http.ResponseWriter, r *http.Request, status int, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if oxd.IsAPIRequest(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "{\"error\":%q}\n", http.StatusText(status))
		return
	}
	title, msg := explainAuthError(err)
	a.renderError(w, r, status, title, msg)
}

// explainAuthError turns a middleware error into a title and a sentence for
// the user. The texts are fixed, apart from the OP's error code and
// description (escaped by the template).
func explainAuthError(err error) (string, string) {
	var ope *oxd.OPError
	switch {
	case errors.As(err, &ope):
		msg := "The OP answered " + ope.Code
		if ope.Description != "" {
			msg += ": " + ope.Description
		}
		return "The OP refused the sign-in", msg + "."
	case errors.Is(err, oxd.ErrStateMismatch), errors.Is(err, oxd.ErrStateMissing):
		return "Sign-in response not recognised", "This sign-in response does not belong to a sign-in started in this browser, or it was already used. Start again from the sign-in page."
	case errors.Is(err, oxd.ErrSessionCookieMissing):
		return "Session cookie missing", "The browser did not send the session cookie back with the OP's answer. Enable cookies and start again."
	case errors.Is(err, oxd.ErrLocalLogoutOnly):
		return "Signed out of the demo only", "You are signed out of the demo, but the OP has no end-session endpoint (or oxd could not build the logout URL): your session at the OP may still be active. Sign out there too, or close the browser."
	case errors.Is(err, oxd.ErrCrossOrigin):
		return "Cross-origin request refused", "Sign out with the demo's own button."
	case errors.Is(err, oxd.ErrUnavailable), errors.Is(err, oxd.ErrTimeout):
		return "oxd is unavailable", "oxd did not answer. Check that it is running, then try again."
	case errors.Is(err, oxd.ErrCommand):
		var oe *oxdclient.Error
		if errors.As(err, &oe) {
			if oxdclient.IsInvalidOxdID(err) {
				return "oxd does not know this client", "oxd answered invalid_oxd_id: the client was removed from oxd. Delete it on the settings page and register it again."
			}
			return "oxd returned an error", "oxd answered " + oe.Code + "."
		}
		return "oxd returned an error", "oxd's answer was not usable."
	case errors.Is(err, oxd.ErrRefreshFailed):
		return "Session expired", "Sign in again."
	case errors.Is(err, oxd.ErrACRMismatch):
		return "Authentication method not satisfied", "The OP did not use one of the ACR values set on the settings page."
	case errors.Is(err, oxd.ErrUMAClaims):
		return "Claims response not recognised", "This answer of the AS does not belong to a claims-gathering started in this browser, or it was already used. Start again from the UMA page."
	case errors.Is(err, oxd.ErrUMADenied):
		return "Access denied", "The authorization server refused to grant you access to this resource."
	case errors.Is(err, oxd.ErrUMAUnreachable):
		return "Authorization server unreachable", "No permission ticket could be obtained; check that oxd and the AS are running."
	case errors.Is(err, oxd.ErrUMAConfig):
		return "UMA configuration error", "This route is not protected correctly; the log of the demo says more."
	case errors.Is(err, oxd.ErrMethodNotAllowed):
		return "Method not allowed", "This address does not accept this kind of request."
	}
	return "The request failed", "Something went wrong; the log of the demo says more."
}

// describeOxdError is a short, secret-free description of an oxd failure
// for the settings page.
func describeOxdError(err error) string {
	var oe *oxdclient.Error
	switch {
	case errors.As(err, &oe):
		s := "oxd answered " + oe.Code
		if oe.Description != "" {
			s += ": " + truncate.String(oe.Description, 300)
		}
		return s
	case errors.Is(err, oxdclient.ErrUnavailable):
		return "oxd is not reachable (" + truncate.String(err.Error(), 200) + ")"
	case errors.Is(err, oxdclient.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "oxd did not answer in time"
	}
	return truncate.String(err.Error(), 300)
}

// ---- settings ----

// settingsMessages are the outcomes a redirect to the settings page may
// announce (?m=…). Only these fixed texts are shown.
var settingsMessages = map[string]string{
	"registered":     "The client is registered (setup_client) and saved to the settings file.",
	"updated":        "The client is updated (update_site) and the settings file saved.",
	"deleted":        "The client is deleted (remove_site) and the settings file cleared. Everybody is signed out.",
	"register-first": "Register the client first: nobody can sign in before that.",
}

func (a *app) settingsPage(w http.ResponseWriter, r *http.Request, st *site) {
	a.renderSettings(w, r, st, http.StatusOK, settingsMessages[r.URL.Query().Get("m")], "", nil)
}

// renderSettings shows the settings page; form, when non-nil, replaces the
// saved values (a form with an error is shown again as typed).
func (a *app) renderSettings(w http.ResponseWriter, r *http.Request, st *site, status int, notice, problem string, form *settingsForm) {
	s := st.settings
	v := settingsView{
		Registered:               s.Registered(),
		ClientName:               s.ClientName,
		OPHost:                   s.OPHost,
		AuthorizationRedirectURI: s.AuthorizationRedirectURI,
		PostLogoutRedirectURI:    s.PostLogoutRedirectURI,
		ClaimsRedirectURI:        s.ClaimsRedirectURI,
		AcrValues:                strings.Join(s.AcrValues, " "),
		Scopes:                   map[string]bool{},
		ScopeOptions:             scopeOptions,
		SettingsPath:             a.d.opts.SettingsPath,
		Oxd:                      a.d.oxdDesc,
		EmbeddedOP:               a.d.devOP != nil,
		UpdatedAt:                s.UpdatedAt,
		Problem:                  cmp(problem, st.problem),
	}
	for _, sc := range s.Scopes {
		v.Scopes[sc] = true
	}
	if s.Registered() {
		v.OxdID = s.Site.OxdID
		v.ClientID = s.Site.ClientIDOfOxdID
		v.SetupClientID = s.Site.ClientID
	}
	if form != nil {
		v.ClientName, v.OPHost = form.ClientName, form.OPHost
		v.AuthorizationRedirectURI, v.PostLogoutRedirectURI, v.ClaimsRedirectURI = form.AuthorizationRedirectURI, form.PostLogoutRedirectURI, form.ClaimsRedirectURI
		v.AcrValues = strings.Join(form.AcrValues, " ")
		v.Scopes = map[string]bool{}
		for _, sc := range form.Scopes {
			v.Scopes[sc] = true
		}
	}
	if v.Problem == "" && s.Registered() {
		for _, u := range []string{s.AuthorizationRedirectURI, s.PostLogoutRedirectURI} {
			if !strings.HasPrefix(u, a.d.baseURL+"/") {
				v.Warning = "The redirect URIs do not point at this demo (" + a.d.baseURL + "): sign-in will not come back here. Update them."
			}
		}
	}
	a.render(w, r, st, status, "settings", "Settings", notice, v)
}

type settingsView struct {
	Registered                                                         bool
	ClientName, OPHost                                                 string
	AuthorizationRedirectURI, PostLogoutRedirectURI, ClaimsRedirectURI string
	AcrValues                                                          string
	Scopes                                                             map[string]bool
	ScopeOptions                                                       []string
	OxdID, ClientID, SetupClientID                                     string
	SettingsPath, Oxd                                                  string
	EmbeddedOP                                                         bool
	UpdatedAt                                                          time.Time
	Problem, Warning                                                   string
}

// maxFormBytes bounds the settings forms.
const maxFormBytes = 16 << 10

func (a *app) readSettingsForm(w http.ResponseWriter, r *http.Request) (settingsForm, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return settingsForm{}, errors.New("the form could not be read")
	}
	return parseSettingsForm(r.PostForm.Get, func(k string) []string { return r.PostForm[k] })
}

// register runs setup_client with the form's values (POST
// /settings/register).
func (a *app) register(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.cur.Load()
	f, err := a.readSettingsForm(w, r)
	if err != nil {
		a.renderSettings(w, r, st, http.StatusBadRequest, "", err.Error(), &f)
		return
	}
	if st.settings.Registered() {
		a.renderSettings(w, r, st, http.StatusConflict, "", "A client is already registered: update it, or delete it first.", &f)
		return
	}
	s := st.settings.clone()
	s.ClientName, s.OPHost = f.ClientName, f.OPHost
	s.EmbeddedOP = a.d.devOP != nil && f.OPHost == a.d.devOP.Issuer()
	s.AuthorizationRedirectURI, s.PostLogoutRedirectURI, s.ClaimsRedirectURI = f.AuthorizationRedirectURI, f.PostLogoutRedirectURI, f.ClaimsRedirectURI
	s.Scopes, s.AcrValues = f.Scopes, f.AcrValues
	if s.ClientName == "" {
		s.ClientName = "oxd for Go demo"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	reg, err := a.setupClient(ctx, s)
	if err != nil {
		a.log.Warn("demo: setup_client failed", "error", err)
		a.renderSettings(w, r, st, http.StatusBadGateway, "", "setup_client failed: "+describeOxdError(err), &f)
		return
	}
	a.saveAndPublish(ctx, w, r, st, reg, nil, &f,
		"The client was registered (oxd_id "+reg.Site.OxdID+") but the settings file could not be written.",
		"/settings?m=registered")
}

// saveAndPublish writes the settings s, builds the site state from them
// (keeping what it can of keep), registers its UMA resources and makes it
// current, then redirects to done. On failure it renders the settings page
// with the problem; notSaved is shown when the file cannot be written.
func (a *app) saveAndPublish(ctx context.Context, w http.ResponseWriter, r *http.Request, st *site, s *Settings, keep *site, f *settingsForm, notSaved, done string) {
	if err := saveSettings(a.d.opts.SettingsPath, s); err != nil {
		a.log.Error("demo: saving settings", "error", err)
		a.renderSettings(w, r, st, http.StatusInternalServerError, "", notSaved, f)
		return
	}
	nst, err := a.build(s, keep, "")
	if err != nil {
		a.renderSettings(w, r, st, http.StatusInternalServerError, "", err.Error(), f)
		return
	}
	if err := nst.uma.register(ctx); err != nil {
		a.log.Warn("demo: registering the UMA resources failed", "error", err)
	}
	a.publish(nst)
	http.Redirect(w, r, done, http.StatusSeeOther)
}

// update runs update_site with the form's values (POST /settings/update).
// The client name, the OP and the claims redirect URI cannot change
// without a new registration.
func (a *app) update(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.cur.Load()
	if !st.settings.Registered() {
		http.Redirect(w, r, "/settings?m=register-first", http.StatusSeeOther)
		return
	}
	s := st.settings.clone()
	f, err := a.readSettingsForm(w, r)
	if err != nil {
		a.renderSettings(w, r, st, http.StatusBadRequest, "", err.Error(), &f)
		return
	}
	s.AuthorizationRedirectURI, s.PostLogoutRedirectURI = f.AuthorizationRedirectURI, f.PostLogoutRedirectURI
	s.Scopes, s.AcrValues = f.Scopes, f.AcrValues
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	_, err = a.d.client.UpdateSite(ctx, oxdclient.UpdateSiteParams{
		OxdID:                    s.Site.OxdID,
		AuthorizationRedirectURI: s.AuthorizationRedirectURI,
		PostLogoutRedirectURI:    s.PostLogoutRedirectURI,
		RedirectURIs:             []string{s.AuthorizationRedirectURI, s.ClaimsRedirectURI},
		Scope:                    s.Scopes,
		AcrValues:                s.AcrValues,
	})
	if err != nil {
		a.log.Warn("demo: update_site failed", "error", err)
		a.renderSettings(w, r, st, http.StatusBadGateway, "", "update_site failed: "+describeOxdError(err), &f)
		return
	}
	s.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	a.saveAndPublish(ctx, w, r, st, s, st, &f,
		"The client was updated but the settings file could not be written.", "/settings?m=updated")
}

// remove runs remove_site and clears the registration (POST
// /settings/delete). Every session ends with it.
func (a *app) remove(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.cur.Load()
	if !st.settings.Registered() {
		http.Redirect(w, r, "/settings", http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	_, err := a.d.client.RemoveSite(ctx, oxdclient.RemoveSiteParams{OxdID: st.settings.Site.OxdID})
	if err != nil && !oxdclient.IsInvalidOxdID(err) {
		a.log.Warn("demo: remove_site failed", "error", err)
		a.renderSettings(w, r, st, http.StatusBadGateway, "", "remove_site failed: "+describeOxdError(err), nil)
		return
	}
	s := st.settings.clone()
	s.Site = nil
	s.Oxd = ""
	s.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	if err := saveSettings(a.d.opts.SettingsPath, s); err != nil {
		a.log.Error("demo: saving settings", "error", err)
		a.renderSettings(w, r, st, http.StatusInternalServerError, "", "The client was removed from oxd but the settings file could not be written.", nil)
		return
	}
	nst, err := a.build(s, nil, "")
	if err != nil {
		a.renderSettings(w, r, st, http.StatusInternalServerError, "", err.Error(), nil)
		return
	}
	a.publish(nst)
	http.Redirect(w, r, "/settings?m=deleted", http.StatusSeeOther)
}

// ---- pages ----

type homeView struct {
	Registered, SignedIn bool
	Name                 string
	EndedAtOP            bool // "you were signed out at the OP"
}

func (a *app) home(w http.ResponseWriter, r *http.Request, st *site) {
	v := homeView{Registered: st.settings.Registered()}
	if st.auth != nil {
		if u, ok := st.auth.Authenticated(r); ok {
			v.SignedIn = true
			v.Name = cmp(u.Claim("name"), u.Subject)
		}
		v.EndedAtOP = endedAtOP(w, r, v.SignedIn)
	}
	a.render(w, r, st, http.StatusOK, "home", "Home", "", v)
}

type loginView struct {
	OPHost    string
	DemoUsers []demoUser
}

type demoUser struct{ Username, Password, Note string }

func (a *app) loginPage(w http.ResponseWriter, r *http.Request, st *site) {
	if _, ok := st.auth.Authenticated(r); ok {
		http.Redirect(w, r, "/userinfo", http.StatusSeeOther)
		return
	}
	v := loginView{OPHost: st.settings.Site.OPHost}
	if a.d.devOP != nil && st.settings.EmbeddedOP {
		v.DemoUsers = devOPUsers()
	}
	a.render(w, r, st, http.StatusOK, "login", "Sign in", "", v)
}

type claimRow struct{ Name, Value string }

type userinfoView struct {
	Subject, Name, Email string
	Claims, IDToken      []claimRow
	AuthenticatedAt      time.Time
	AccessTokenExpiry    time.Time
}

func (a *app) userinfo(w http.ResponseWriter, r *http.Request, st *site) {
	u, ok := oxd.UserFrom(r.Context())
	if !ok {
		a.renderError(w, r, http.StatusInternalServerError, "No user", "The page was reached without a signed-in user.")
		return
	}
	setMarker(w, true)
	v := userinfoView{
		Subject:           u.Subject,
		Name:              u.Claim("name"),
		Email:             u.Claim("email"),
		Claims:            claimRows(u.Claims),
		IDToken:           claimRows(u.IDTokenClaims),
		AuthenticatedAt:   u.AuthenticatedAt,
		AccessTokenExpiry: u.AccessTokenExpiry,
	}
	a.render(w, r, st, http.StatusOK, "userinfo", "User info", "", v)
}

// claimRows lists claims sorted by name, each value as text (arrays
// joined with ", ", objects as JSON). Token-like claims are not claims of
// userinfo or the ID token, so nothing secret is listed.
func claimRows(c oxdclient.Claims) []claimRow {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	slices.Sort(names)
	rows := make([]claimRow, 0, len(names))
	for _, k := range names {
		vals := c.Strings(k)
		var v string
		if vals != nil {
			v = strings.Join(vals, ", ")
		} else {
			v = string(c[k])
		}
		switch k {
		case "exp", "iat", "auth_time", "nbf", "updated_at":
			if n, ok := c.Int(k); ok && n > 0 {
				v += "  (" + time.Unix(n, 0).UTC().Format(time.RFC3339) + ")"
			}
		}
		rows = append(rows, claimRow{Name: k, Value: truncate.String(v, 500)})
	}
	return rows
}

func (a *app) loggedOut(w http.ResponseWriter, r *http.Request, st *site) {
	a.render(w, r, st, http.StatusOK, "loggedout", "Signed out", "", nil)
}
