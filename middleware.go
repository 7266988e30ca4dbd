package oxd

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// Defaults of [Config].
const (
	DefaultOxdTimeout        = 10 * time.Second
	DefaultRefreshBefore     = time.Minute
	DefaultPendingLoginTTL   = 20 * time.Minute
	DefaultPendingLoginLimit = 8
	DefaultReturnTo          = "/"
)

// DefaultScopes are requested when Config.Scopes is empty.
var DefaultScopes = []string{"openid", "profile", "email"}

// Limits on callback parameters; larger values are refused with 400.
const (
	maxCallbackQuery   = 8 << 10
	maxStateLen        = 512
	maxCodeLen         = 4096
	maxOPErrorLen      = 128
	maxOPErrorDescLen  = 1024
	maxShownOPErrorLen = 300
)

// Config configures an [Auth]. Only the site (OxdID or SiteFile) and
// PostLogoutRedirectURI are required; every other field has a documented
// default. New validates the whole configuration and returns an error
// instead of failing later at request time.
type Config struct {
	// OxdID identifies the site (the OP client) at oxd, as returned by
	// register_site or setup_client. Exactly one of OxdID and SiteFile must
	// be set.
	OxdID string

	// SiteFile is the path of a site file written by
	// [oxdclient.SaveSite] or [oxdclient.EnsureSite] (JSON with an
	// "oxd_id" member). New reads it once, with [oxdclient.LoadSite].
	SiteFile string

	// PostLogoutRedirectURI is the absolute URL of the application's
	// "logged out" page, sent to the OP as post_logout_redirect_uri and
	// used as the landing page when oxd cannot build the OP's logout URL.
	// It must be registered at the OP. Required. The page must not be
	// wrapped with RequireLogin (it would log the user in again).
	PostLogoutRedirectURI string

	// RedirectURL is the callback URL registered at the OP
	// (authorization_redirect_uri), where CallbackHandler is mounted.
	// Optional: oxd already knows it; when set, New checks that it is an
	// absolute http(s) URL and that a plain-http URL on a non-loopback host
	// comes with InsecureCookies (a Secure session cookie would never come
	// back to it), and Realm defaults to its host.
	RedirectURL string

	// Scopes requested at login. Default [DefaultScopes]; must contain
	// "openid".
	Scopes []string

	// AcrValues are requested at login (acr_values). When set, the ID
	// token's acr claim must be one of them, since a user can edit
	// acr_values in the address bar; see InsecureSkipACRCheck.
	AcrValues []string

	// InsecureSkipACRCheck accepts an ID token whose acr is not one of
	// AcrValues (or is missing). Only for OPs that do not return acr.
	InsecureSkipACRCheck bool

	// Prompt is sent as the prompt parameter: space-separated values among
	// none, login, consent, select_account. Default: none sent.
	Prompt string

	// CustomParameters are passed to get_authorization_url as
	// custom_parameters. Keys that the protocol owns (state, nonce,
	// redirect_uri, client_id, response_type, scope, code_challenge…) are
	// refused.
	CustomParameters map[string]string

	// DefaultReturnTo is where a browser goes after login when the saved
	// return-to is refused (not a same-origin path). Default "/". Must be a
	// same-origin path itself.
	DefaultReturnTo string

	// ErrorHandler renders every failure. Default: a small HTML page, or
	// JSON for API requests. See [ErrorHandler].
	ErrorHandler ErrorHandler

	// Logger receives warnings (failures, refused return-to values) and
	// debug lines (logins, refreshes, logouts). It never receives a token,
	// a code or a secret. Nil disables logging.
	Logger *slog.Logger

	// OxdTimeout bounds every oxd call made while serving a request.
	// Default 10s.
	OxdTimeout time.Duration

	// RefreshBefore: an access token is refreshed (when there is a refresh
	// token) on the first request that arrives less than RefreshBefore
	// before its expiry, or past half of its lifetime when the lifetime is
	// shorter than 2×RefreshBefore. Default 1m.
	RefreshBefore time.Duration

	// PendingLoginTTL is how long a started login may take, from the
	// redirect to the OP until the callback. Default 20m. An expired
	// pending login restarts the login instead of failing.
	PendingLoginTTL time.Duration

	// PendingLoginLimit bounds the logins one browser session may have in
	// progress at once (one per tab); beyond it the oldest is dropped.
	// Default 8.
	PendingLoginLimit int

	// LogoutMethods are the methods LogoutHandler accepts: "POST" (the
	// default) and optionally "GET". A GET logout can be triggered by any
	// site (an image tag); allow it only if that nuisance is acceptable.
	LogoutMethods []string

	// TrustedOrigins are extra origins ("https://app.example.com") allowed
	// to POST to LogoutHandler, for deployments where the Host seen by the
	// application differs from the browser's origin. See
	// [http.CrossOriginProtection.AddTrustedOrigin].
	TrustedOrigins []string

	// APIRequest decides whether an unauthenticated request is an API call
	// (401 with WWW-Authenticate, never a redirect) or a browser navigation
	// (redirect to the OP). Default [IsAPIRequest]. It also chooses between
	// JSON and HTML in the default ErrorHandler.
	APIRequest func(r *http.Request) bool

	// Realm is the realm of the WWW-Authenticate challenge. Default: the
	// host of RedirectURL, else "oxd".
	Realm string

	// InsecureCookies leaves the session cookie without the Secure
	// attribute, for development over plain HTTP on a host other than
	// localhost. Never in production: the session cookie would travel in
	// clear text.
	InsecureCookies bool
}

// Auth is the login middleware. Create it with [New]; its methods are safe
// for concurrent use.
type Auth struct {
	client  *oxdclient.Client
	sm      *scs.SessionManager
	cfg     Config
	oxdID   string
	errh    ErrorHandler
	log     *slog.Logger
	apiFn   func(*http.Request) bool
	cop     *http.CrossOriginProtection
	wwwAuth string
	now     func() time.Time
	ref     refresher
	umaG    *umaGuard // UMA declarations, settings and grant cache (uma_*.go)

	logoutGET, logoutPOST bool
}

// New returns the login middleware for the site cfg names, talking to oxd
// through client and keeping identity in sessions (any scs store).
//
// New adjusts sessions.Cookie: HttpOnly is set, Secure is set unless
// cfg.InsecureCookies, and SameSite is set to Lax when it is unset. It
// refuses SameSite=Strict (the cookie would not come back on the OP's
// redirect to the callback) and SameSite=None without Secure. Call New
// before the session manager serves requests.
func New(client *oxdclient.Client, sessions *scs.SessionManager, cfg Config) (*Auth, error) {
	if client == nil {
		return nil, errors.New("oxd: New: nil oxdclient.Client")
	}
	if sessions == nil {
		return nil, errors.New("oxd: New: nil scs.SessionManager")
	}
	a := &Auth{client: client, sm: sessions, now: time.Now, umaG: newUMAGuard()}

	switch {
	case cfg.OxdID != "" && cfg.SiteFile != "":
		return nil, errors.New("oxd: Config: set OxdID or SiteFile, not both")
	case cfg.OxdID != "":
		a.oxdID = cfg.OxdID
	case cfg.SiteFile != "":
		id, err := readOxdIDFile(cfg.SiteFile)
		if err != nil {
			return nil, err
		}
		a.oxdID = id
	default:
		return nil, errors.New("oxd: Config: OxdID (or SiteFile) is required")
	}

	if cfg.PostLogoutRedirectURI == "" {
		return nil, errors.New("oxd: Config: PostLogoutRedirectURI is required")
	}
	if _, err := absoluteHTTPURL(cfg.PostLogoutRedirectURI); err != nil {
		return nil, fmt.Errorf("oxd: Config.PostLogoutRedirectURI: %w", err)
	}
	if cfg.RedirectURL != "" {
		u, err := absoluteHTTPURL(cfg.RedirectURL)
		if err != nil {
			return nil, fmt.Errorf("oxd: Config.RedirectURL: %w", err)
		}
		if u.Scheme == "http" && !cfg.InsecureCookies && !hostutil.BrowserSecureContext(u.Hostname()) {
			return nil, errors.New("oxd: Config.RedirectURL is plain http on a non-loopback host: the Secure session cookie would not come back to the callback; use https or set InsecureCookies for development")
		}
		if cfg.Realm == "" {
			cfg.Realm = u.Host
		}
	}
	if cfg.Realm == "" {
		cfg.Realm = "oxd"
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return nil, errors.New("oxd: Config.Realm must not contain quotes, backslashes or line breaks")
	}

	if len(cfg.Scopes) == 0 {
		cfg.Scopes = slices.Clone(DefaultScopes)
	} else {
		cfg.Scopes = slices.Clone(cfg.Scopes)
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		return nil, errors.New("oxd: Config.Scopes must contain \"openid\"")
	}
	for _, s := range cfg.Scopes {
		if !validToken(s) {
			return nil, fmt.Errorf("oxd: Config.Scopes: invalid scope %q", s)
		}
	}
	cfg.AcrValues = slices.Clone(cfg.AcrValues)
	for _, s := range cfg.AcrValues {
		if !validToken(s) {
			return nil, fmt.Errorf("oxd: Config.AcrValues: invalid value %q", s)
		}
	}
	if cfg.Prompt != "" {
		for p := range strings.FieldsSeq(cfg.Prompt) {
			switch p {
			case "none", "login", "consent", "select_account":
			default:
				return nil, fmt.Errorf("oxd: Config.Prompt: unknown value %q", p)
			}
		}
	}
	if len(cfg.CustomParameters) > 0 {
		m := make(map[string]string, len(cfg.CustomParameters))
		for k, v := range cfg.CustomParameters {
			if k == "" || reservedAuthParams[strings.ToLower(k)] {
				return nil, fmt.Errorf("oxd: Config.CustomParameters: parameter %q is reserved", k)
			}
			m[k] = v
		}
		cfg.CustomParameters = m
	}

	if cfg.DefaultReturnTo == "" {
		cfg.DefaultReturnTo = DefaultReturnTo
	}
	if _, ok := safeReturnTo(cfg.DefaultReturnTo); !ok {
		return nil, fmt.Errorf("oxd: Config.DefaultReturnTo %q is not a same-origin path", cfg.DefaultReturnTo)
	}

	if cfg.OxdTimeout < 0 || cfg.RefreshBefore < 0 || cfg.PendingLoginTTL < 0 || cfg.PendingLoginLimit < 0 {
		return nil, errors.New("oxd: Config: durations and limits must not be negative")
	}
	if cfg.OxdTimeout == 0 {
		cfg.OxdTimeout = DefaultOxdTimeout
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if cfg.PendingLoginTTL == 0 {
		cfg.PendingLoginTTL = DefaultPendingLoginTTL
	}
	if cfg.PendingLoginLimit == 0 {
		cfg.PendingLoginLimit = DefaultPendingLoginLimit
	}

	if len(cfg.LogoutMethods) == 0 {
		cfg.LogoutMethods = []string{http.MethodPost}
	}
	for _, m := range cfg.LogoutMethods {
		switch m {
		case http.MethodPost:
			a.logoutPOST = true
		case http.MethodGet:
			a.logoutGET = true
		default:
			return nil, fmt.Errorf("oxd: Config.LogoutMethods: %q is not POST or GET", m)
		}
	}
	a.cop = http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := a.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("oxd: Config.TrustedOrigins: %w", err)
		}
	}

	// Session cookie.
	c := &sessions.Cookie
	if c.SameSite == http.SameSiteStrictMode {
		return nil, errors.New("oxd: the session cookie has SameSite=Strict: browsers would not send it on the OP's redirect to the callback; use Lax")
	}
	if c.SameSite == http.SameSiteNoneMode && cfg.InsecureCookies {
		return nil, errors.New("oxd: SameSite=None requires a Secure cookie; do not combine it with InsecureCookies")
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	c.HttpOnly = true
	c.Secure = !cfg.InsecureCookies
	if c.Name == "" {
		return nil, errors.New("oxd: the session manager has no cookie name (create it with scs.New)")
	}

	a.cfg = cfg
	a.log = cfg.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.apiFn = cfg.APIRequest
	if a.apiFn == nil {
		a.apiFn = IsAPIRequest
	}
	a.errh = cfg.ErrorHandler
	if a.errh == nil {
		a.errh = a.defaultErrorHandler
	}
	a.wwwAuth = `Bearer realm="` + cfg.Realm + `"`
	a.ref.init()
	return a, nil
}

// reservedAuthParams are authorization-request parameters that the
// protocol (oxd, the OP) owns.
var reservedAuthParams = map[string]bool{
	"state": true, "nonce": true, "redirect_uri": true, "client_id": true,
	"response_type": true, "response_mode": true, "scope": true,
	"code_challenge": true, "code_challenge_method": true, "request": true,
	"request_uri": true, "acr_values": true, "prompt": true,
}

// validToken reports whether s is a non-empty OAuth scope token (RFC 6749
// §3.3: printable ASCII without space, quote and backslash).
func validToken(s string) bool { return scopeexpr.ValidScope(s) }

func absoluteHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("must be an absolute http(s) URL without userinfo or fragment")
	}
	return u, nil
}

// OxdID returns the site's oxd_id.
func (a *Auth) OxdID() string { return a.oxdID }

// Client returns the oxd client the middleware uses.
func (a *Auth) Client() *oxdclient.Client { return a.client }

// Sessions returns the session manager the middleware uses.
func (a *Auth) Sessions() *scs.SessionManager { return a.sm }

// isAPI applies Config.APIRequest.
func (a *Auth) isAPI(r *http.Request) bool { return a.apiFn(r) }

// oxdCtx bounds one oxd call.
func (a *Auth) oxdCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.cfg.OxdTimeout)
}

// fail logs err and hands it to the error handler.
func (a *Auth) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	level := slog.LevelWarn
	if errors.Is(err, ErrLoginRequired) {
		level = slog.LevelDebug
	}
	a.log.LogAttrs(r.Context(), level, "oxd: request failed",
		slog.Int("status", status), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	a.errh(w, r, status, err)
}

// sessionLoaded reports whether ctx already carries this manager's session
// (the handler is wrapped by sessions.LoadAndSave). scs offers no check:
// its accessors panic without a loaded session, which is recovered here.
func (a *Auth) sessionLoaded(ctx context.Context) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	a.sm.Status(ctx)
	return true
}

// lookupUser returns the session's user (nil when nobody is logged in) and
// whether the session is loaded at all, with a single session access: this
// is the hot path of RequireLogin.
func (a *Auth) lookupUser(ctx context.Context) (u *User, loaded bool) {
	defer func() {
		if recover() != nil {
			u, loaded = nil, false
		}
	}()
	u, _ = a.sm.Get(ctx, sessionKeyUser).(*User)
	return u, true
}

// withSession runs h inside sessions.LoadAndSave unless the request already
// has the session loaded.
func (a *Auth) withSession(h http.Handler) http.Handler {
	loaded := a.sm.LoadAndSave(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.sessionLoaded(r.Context()) {
			h.ServeHTTP(w, r)
			return
		}
		loaded.ServeHTTP(w, r)
	})
}

// sessionUser returns the session's user, or nil.
func (a *Auth) sessionUser(ctx context.Context) *User {
	u, _ := a.sm.Get(ctx, sessionKeyUser).(*User)
	return u
}

// RequireLogin lets a request with a logged-in session through to next,
// with the user in the request context ([UserFrom]). Otherwise a browser
// navigation is redirected to the OP (the request URI is kept server-side
// and restored after the callback) and an API request (see
// [Config.APIRequest]) gets 401 with WWW-Authenticate and never a
// redirect.
//
// The access token is refreshed first when it is about to expire (see
// [Config.RefreshBefore]); parallel requests of one session share one
// refresh. If the OP refuses the refresh, the session is ended: browsers log
// in again, API requests get 401 ([ErrRefreshFailed]).
//
// RequireLogin loads the session itself when the handler is not already
// wrapped by the manager's LoadAndSave.
func (a *Auth) RequireLogin(next http.Handler) http.Handler {
	loaded := a.sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := a.lookupUser(r.Context())
		a.requireLogin(w, r, next, u)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.lookupUser(r.Context())
		if !ok {
			loaded.ServeHTTP(w, r)
			return
		}
		a.requireLogin(w, r, next, u)
	})
}

func (a *Auth) requireLogin(w http.ResponseWriter, r *http.Request, next http.Handler, u *User) {
	if u == nil {
		a.challenge(w, r, ErrLoginRequired)
		return
	}
	if u.refreshDue(a.now()) {
		nu, status, err := a.refreshUser(r, u)
		switch {
		case err == nil:
			u = nu
		case status == 0:
			// The session was ended: log in again.
			a.challenge(w, r, err)
			return
		default:
			a.fail(w, r, status, err)
			return
		}
	}
	next.ServeHTTP(w, r.WithContext(withUser(r.Context(), u)))
}

// challenge answers a request that needs a login: 401 for API requests,
// a redirect to the OP for browsers.
func (a *Auth) challenge(w http.ResponseWriter, r *http.Request, err error) {
	if a.isAPI(r) {
		w.Header().Set("WWW-Authenticate", a.wwwAuth)
		a.fail(w, r, http.StatusUnauthorized, err)
		return
	}
	a.startLogin(w, r, r.URL.RequestURI(), 0)
}

// Authenticated returns the session's user without side effects: no
// redirect, no oxd call, no refresh, no session write. It works with or
// without RequireLogin and LoadAndSave around the handler. ok is false when
// nobody is logged in. The access token of the returned user may have
// expired.
func (a *Auth) Authenticated(r *http.Request) (u *User, ok bool) {
	if u, ok := UserFrom(r.Context()); ok {
		return u, true
	}
	ctx := r.Context()
	if !a.sessionLoaded(ctx) {
		c, err := r.Cookie(a.sm.Cookie.Name)
		if err != nil || c.Value == "" {
			return nil, false
		}
		ctx, err = a.sm.Load(ctx, c.Value)
		if err != nil {
			return nil, false
		}
	}
	u = a.sessionUser(ctx)
	return u, u != nil
}

// LoginHandler starts a login explicitly, for a "Sign in" link on a public
// page: GET <mount>?return_to=/some/path. The return_to value is used only
// when it is a same-origin path (else Config.DefaultReturnTo). A browser
// that is already logged in goes straight to the return-to.
func (a *Auth) LoginHandler() http.Handler {
	return a.withSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setNoStore(w)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			a.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("login: %w", ErrMethodNotAllowed))
			return
		}
		rt := r.URL.Query().Get("return_to")
		if a.sessionUser(r.Context()) != nil {
			a.redirect(w, a.returnTo(r, rt))
			return
		}
		a.startLogin(w, r, rt, 0)
	}))
}

// returnTo validates a return-to value, falling back to the default.
func (a *Auth) returnTo(r *http.Request, raw string) string {
	if rt, ok := safeReturnTo(raw); ok {
		return rt
	}
	if raw != "" {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "oxd: return-to refused (not a same-origin path)",
			slog.Int("length", len(raw)))
	}
	return a.cfg.DefaultReturnTo
}

// startLogin asks oxd for an authorization URL, remembers its state with
// the return-to in the session, and redirects the browser to the OP.
func (a *Auth) startLogin(w http.ResponseWriter, r *http.Request, returnTo string, restarts int) {
	rt := a.returnTo(r, returnTo)
	ctx, cancel := a.oxdCtx(r.Context())
	resp, err := a.client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{
		OxdID:            a.oxdID,
		Scope:            a.cfg.Scopes,
		AcrValues:        a.cfg.AcrValues,
		Prompt:           a.cfg.Prompt,
		CustomParameters: a.cfg.CustomParameters,
	})
	cancel()
	if err != nil {
		status, e := oxdFailure("login: get_authorization_url", err)
		a.fail(w, r, status, e)
		return
	}
	authURL, state, err := parseAuthorizationURL(resp.AuthorizationURL)
	if err != nil {
		a.fail(w, r, http.StatusBadGateway, fmt.Errorf("login: get_authorization_url: %w: %w", ErrOxdError, err))
		return
	}
	sctx := r.Context()
	now := a.now()
	if a.sm.Token(sctx) == "" && a.sessionUser(sctx) == nil {
		// A session created for this login only: keep it no longer than
		// the login may take, so anonymous traffic cannot fill the store.
		// The callback gives it the full lifetime.
		a.sm.SetDeadline(sctx, now.Add(a.cfg.PendingLoginTTL))
	}
	a.addPending(sctx, pendingLogin{State: state, ReturnTo: rt, Created: now, Restarts: restarts})
	a.log.LogAttrs(r.Context(), slog.LevelDebug, "oxd: login started", slog.String("path", r.URL.Path))
	setNoStore(w)
	a.redirect(w, authURL)
}

// parseAuthorizationURL checks oxd's authorization URL and extracts the
// state oxd generated for it.
func parseAuthorizationURL(s string) (string, string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", "", errors.New("authorization URL is not an absolute http(s) URL")
	}
	states := u.Query()["state"]
	if len(states) != 1 || states[0] == "" || len(states[0]) > maxStateLen {
		return "", "", errors.New("authorization URL has no single state parameter")
	}
	return s, states[0], nil
}

// addPending records a login in progress, dropping expired entries and,
// beyond the limit, the oldest.
func (a *Auth) addPending(ctx context.Context, p pendingLogin) {
	old, _ := a.sm.Get(ctx, sessionKeyPending).(pendingLogins)
	now := a.now()
	list := make(pendingLogins, 0, len(old)+1)
	for _, e := range old {
		if now.Sub(e.Created) < a.cfg.PendingLoginTTL {
			list = append(list, e)
		}
	}
	list = append(list, p)
	if n := len(list) - a.cfg.PendingLoginLimit; n > 0 {
		list = slices.Delete(list, 0, n)
	}
	a.sm.Put(ctx, sessionKeyPending, list)
}

// takePending removes and returns the pending login with this state. The
// comparison runs in constant time over every entry. expired reports an
// entry older than PendingLoginTTL.
func (a *Auth) takePending(ctx context.Context, state string) (p pendingLogin, found, expired bool) {
	old, _ := a.sm.Get(ctx, sessionKeyPending).(pendingLogins)
	if len(old) == 0 {
		return p, false, false
	}
	want := []byte(state)
	idx := -1
	for i := range old {
		if subtle.ConstantTimeCompare([]byte(old[i].State), want) == 1 {
			idx = i
		}
	}
	if idx < 0 {
		return p, false, false
	}
	p = old[idx]
	list := slices.Delete(slices.Clone(old), idx, idx+1)
	if len(list) == 0 {
		a.sm.Remove(ctx, sessionKeyPending)
	} else {
		a.sm.Put(ctx, sessionKeyPending, list)
	}
	return p, true, a.now().Sub(p.Created) >= a.cfg.PendingLoginTTL
}

// CallbackHandler handles the OP's redirect back (the registered
// authorization_redirect_uri). It accepts GET only, and:
//
//   - refuses oversized or repeated parameters (400, [ErrBadCallback]);
//   - turns an OP error parameter into 400 with an [*OPError];
//   - requires a state equal (constant-time) to a pending login of this
//     browser's session, else 400 ([ErrStateMissing], [ErrStateMismatch],
//     [ErrSessionCookieMissing]) without calling oxd; a pending login is
//     used once;
//   - exchanges the code (get_tokens_by_code), fetches userinfo
//     (get_user_info), checks that both agree on the subject and, with
//     AcrValues, the acr;
//   - renews the session token (session fixation) before storing the user,
//     and redirects (303) to the saved return-to.
//
// When oxd no longer knows the state (it expired at oxd) or the pending
// login is older than PendingLoginTTL, the login restarts for the same
// return-to instead of failing.
func (a *Auth) CallbackHandler() http.Handler {
	return a.withSession(http.HandlerFunc(a.callback))
}

// redirectQuery does the checks shared by the redirects that come back
// from the OP/AS (the login callback, the UMA claims redirect): no caching,
// no Referer, GET only, a bounded query that parses. On failure it has
// answered with reason (labelled op) and returns false.
func (a *Auth) redirectQuery(w http.ResponseWriter, r *http.Request, op string, reason error) (url.Values, bool) {
	setNoStore(w)
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		a.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("%s: %w: %w", op, reason, ErrMethodNotAllowed))
		return nil, false
	}
	if len(r.URL.RawQuery) > maxCallbackQuery {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w: query too long", op, reason))
		return nil, false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w: query does not parse", op, reason))
		return nil, false
	}
	return q, true
}

func (a *Auth) callback(w http.ResponseWriter, r *http.Request) {
	q, ok := a.redirectQuery(w, r, "callback", ErrBadCallback)
	if !ok {
		return
	}
	for _, p := range [...]struct {
		name string
		max  int
	}{{"state", maxStateLen}, {"code", maxCodeLen}, {"error", maxOPErrorLen}, {"error_description", maxOPErrorDescLen}, {"error_uri", maxOPErrorDescLen}} {
		v := q[p.name]
		if len(v) > 1 {
			a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w: parameter %s repeated", ErrBadCallback, p.name))
			return
		}
		if len(v) == 1 && len(v[0]) > p.max {
			a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w: parameter %s too long", ErrBadCallback, p.name))
			return
		}
	}
	ctx := r.Context()
	state := q.Get("state")

	if opErr := q.Get("error"); opErr != "" {
		oe := &OPError{Code: sanitizeOPCode(opErr)}
		// The OP's description is shown only for a login this browser
		// started: otherwise anyone could put text on our error page with a
		// crafted link.
		if state != "" {
			if _, found, _ := a.takePending(ctx, state); found { // that attempt is over
				oe.Description = sanitizeText(q.Get("error_description"), maxShownOPErrorLen)
			}
		}
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w", oe))
		return
	}
	if state == "" {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w", ErrStateMissing))
		return
	}
	p, found, expired := a.takePending(ctx, state)
	if !found {
		if c, err := r.Cookie(a.sm.Cookie.Name); err != nil || c.Value == "" {
			hint := "check the session cookie's Secure, Domain and Path, and proxies"
			if r.TLS == nil && a.sm.Cookie.Secure {
				hint = "the callback came over plain HTTP and the session cookie is Secure"
			}
			a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w (%s)", ErrSessionCookieMissing, hint))
			return
		}
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w", ErrStateMismatch))
		return
	}
	if expired {
		a.restartLogin(w, r, p, fmt.Errorf("callback: %w: the login took longer than PendingLoginTTL", ErrStateMismatch))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w", ErrCodeMissing))
		return
	}

	u, status, err := a.exchange(ctx, code, state)
	if err != nil {
		if oxdclient.IsStateNotRegistered(err) {
			a.restartLogin(w, r, p, fmt.Errorf("callback: get_tokens_by_code: %w: %w", ErrOxdError, err))
			return
		}
		a.fail(w, r, status, err)
		return
	}

	// Session fixation: a new session token before the identity is stored.
	if err := a.sm.RenewToken(ctx); err != nil {
		a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("callback: %w: %w", ErrSession, err))
		return
	}
	a.sm.Put(ctx, sessionKeyUser, u)
	a.sm.SetDeadline(ctx, a.now().Add(a.sessionLifetime()))
	a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: login completed", slog.String("subject", u.Subject))
	a.redirect(w, a.returnTo(r, p.ReturnTo))
}

// maxLoginRestarts bounds how often one login is restarted after its state
// expired (at oxd or here), so that a deployment where oxd loses states
// (several oxd instances without a shared store) gets an error page rather
// than a redirect loop.
const maxLoginRestarts = 2

// restartLogin starts the login p again for the same return-to, or fails
// with cause when it was restarted too often already.
func (a *Auth) restartLogin(w http.ResponseWriter, r *http.Request, p pendingLogin, cause error) {
	if p.Restarts >= maxLoginRestarts {
		status := http.StatusBadGateway
		if errors.Is(cause, ErrStateMismatch) {
			status = http.StatusBadRequest
		}
		a.fail(w, r, status, fmt.Errorf("%w (login restarted %d times already)", cause, p.Restarts))
		return
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "oxd: the login's state expired; restarting the login",
		slog.String("error", cause.Error()))
	a.startLogin(w, r, p.ReturnTo, p.Restarts+1)
}

func (a *Auth) sessionLifetime() time.Duration {
	if a.sm.Lifetime > 0 {
		return a.sm.Lifetime
	}
	return 24 * time.Hour
}

// exchange runs get_tokens_by_code and get_user_info and builds the user.
// status is the HTTP status for err.
func (a *Auth) exchange(ctx context.Context, code, state string) (*User, int, error) {
	octx, cancel := a.oxdCtx(ctx)
	defer cancel()
	tok, err := a.client.GetTokensByCode(octx, oxdclient.GetTokensByCodeParams{
		OxdID: a.oxdID,
		Code:  oxdclient.Secret(code),
		State: state,
	})
	if err != nil {
		if oxdclient.IsStateNotRegistered(err) {
			return nil, http.StatusBadRequest, err
		}
		status, e := oxdFailure("callback: get_tokens_by_code", err)
		return nil, status, e
	}
	if tok.AccessToken == "" || tok.IDToken == "" {
		return nil, http.StatusBadGateway, fmt.Errorf("callback: get_tokens_by_code: %w: answer without access or ID token", ErrOxdError)
	}
	sub := tok.IDTokenClaims.String("sub")
	if sub == "" {
		return nil, http.StatusBadGateway, fmt.Errorf("callback: %w: ID token without sub", ErrSubjectMismatch)
	}
	if len(a.cfg.AcrValues) > 0 && !a.cfg.InsecureSkipACRCheck {
		if acr := tok.IDTokenClaims.String("acr"); !slices.Contains(a.cfg.AcrValues, acr) {
			return nil, http.StatusForbidden, fmt.Errorf("callback: %w: acr %q", ErrACRMismatch, sanitizeText(acr, 64))
		}
	}
	ui, err := a.client.GetUserInfo(octx, oxdclient.GetUserInfoParams{OxdID: a.oxdID, AccessToken: tok.AccessToken})
	if err != nil {
		status, e := oxdFailure("callback: get_user_info", err)
		return nil, status, e
	}
	if ui.Claims.String("sub") != sub {
		return nil, http.StatusBadGateway, fmt.Errorf("callback: %w", ErrSubjectMismatch)
	}
	now := a.now()
	u := &User{
		Subject:         sub,
		Claims:          ui.Claims,
		IDTokenClaims:   tok.IDTokenClaims,
		AuthenticatedAt: now,
		accessToken:     tok.AccessToken,
		refreshToken:    tok.RefreshToken,
		idToken:         tok.IDToken,
	}
	u.setExpiry(now, tok.ExpiresIn, a.cfg.RefreshBefore)
	return u, 0, nil
}

// LogoutHandler ends the session: it asks oxd for the OP's end-session URL
// (get_logout_uri with id_token_hint and post_logout_redirect_uri),
// destroys the local session, and redirects the browser (303) to the OP,
// which in turn sends it to Config.PostLogoutRedirectURI. If oxd cannot
// build the URL the local session is destroyed anyway and the browser goes
// to PostLogoutRedirectURI directly.
//
// It accepts POST (and GET when Config.LogoutMethods allows it). A POST
// must be same-origin, as decided by [http.CrossOriginProtection] with
// Config.TrustedOrigins; a cross-origin POST gets 403 ([ErrCrossOrigin]).
// Mount it as e.g. POST /logout and use a form:
//
//	<form method="post" action="/logout"><button>Sign out</button></form>
func (a *Auth) LogoutHandler() http.Handler {
	return a.withSession(http.HandlerFunc(a.logout))
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	setNoStore(w)
	switch {
	case r.Method == http.MethodPost && a.logoutPOST:
		if err := a.cop.Check(r); err != nil {
			a.fail(w, r, http.StatusForbidden, fmt.Errorf("logout: %w: %w", ErrCrossOrigin, err))
			return
		}
	case r.Method == http.MethodGet && a.logoutGET:
	default:
		w.Header().Set("Allow", strings.Join(a.cfg.LogoutMethods, ", "))
		a.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("logout: %w", ErrMethodNotAllowed))
		return
	}
	ctx := r.Context()
	target := a.cfg.PostLogoutRedirectURI
	if u := a.sessionUser(ctx); u != nil {
		octx, cancel := a.oxdCtx(ctx)
		resp, err := a.client.GetLogoutURI(octx, oxdclient.GetLogoutURIParams{
			OxdID:                 a.oxdID,
			IDTokenHint:           u.idToken,
			PostLogoutRedirectURI: a.cfg.PostLogoutRedirectURI,
		})
		cancel()
		switch {
		case err != nil:
			_, e := oxdFailure("logout: get_logout_uri", err)
			a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: no end-session URL; ending the local session only", slog.String("error", e.Error()))
		default:
			if _, uerr := absoluteHTTPURL(resp.URI); uerr != nil {
				a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: get_logout_uri answered an invalid URL; ending the local session only")
			} else {
				target = resp.URI
			}
		}
		a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: logout", slog.String("subject", u.Subject))
	}
	if err := a.sm.Destroy(ctx); err != nil {
		a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("logout: %w: %w", ErrSession, err))
		return
	}
	a.redirect(w, target)
}

// redirect answers 303 See Other with Location set verbatim (no path
// cleaning, no rewriting).
func (a *Auth) redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

func setNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// sanitizeOPCode keeps an OP error code only when it is made of the
// characters OAuth allows for it (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B /
// %x5D-7E, we also drop spaces); otherwise "invalid_error_code".
func sanitizeOPCode(s string) string {
	if len(s) > 64 {
		return "invalid_error_code"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == '\'' {
			return "invalid_error_code"
		}
	}
	return s
}

// sanitizeText drops control characters and non-printable bytes and
// truncates to max bytes. The result is still untrusted text: HTML-escape
// it before rendering.
func sanitizeText(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
