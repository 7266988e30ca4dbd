package oxd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/oxdclient"
)

// Defaults of [Config].
const (
	DefaultCallTimeout       = 10 * time.Second
	DefaultRefreshBefore     = time.Minute
	DefaultPendingLoginTTL   = 20 * time.Minute
	DefaultPendingLoginLimit = 8
	DefaultReturnTo          = "/"
)

// DefaultScopes are requested when Config.Scopes is empty.
var DefaultScopes = []string{"openid", "profile", "email"}

// Config configures an [Auth]. Only the site (OxdID or SiteFile) is
// required; every other field has a documented default. New validates the whole configuration and returns an error
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
	// "logged out" page, sent to the OP as post_logout_redirect_uri; it
	// must then be registered at the OP. The page must not be wrapped with
	// RequireLogin (it would log the user in again). Optional: when empty,
	// the logout at the OP is sent without it (with id_token_hint, or
	// client_id when no ID token is known) and the browser stays on the
	// OP's own "signed out" page (RP-Initiated Logout 1.0 §2).
	PostLogoutRedirectURI string

	// SessionIndex records which scs sessions belong to which OP session
	// and subject, so that a logout can end all of them, on every replica
	// that shares it and the scs store: [Auth.BackChannelLogoutHandler],
	// [Auth.FrontChannelLogoutHandler] and LogoutAllSessions need it.
	// Use sessionindex/redisindex with several replicas (with a Redis or
	// other shared scs store), [sessionindex.NewMemory] with one. Default
	// nil: no index, the two handlers answer 501. When set, a login whose
	// session cannot be recorded fails (500, [ErrSession]): a session the
	// index does not know could not be logged out. New then also wraps
	// sessions.Store so that a request in flight during a logout cannot
	// write an ended session back (see [SessionIndex.MarkEnded]).
	SessionIndex SessionIndex

	// LogoutAllSessions makes LogoutHandler end every session of the user
	// (same issuer and subject), on every replica, not just the current
	// one: "sign out of all my sessions". Needs SessionIndex. Default
	// false.
	LogoutAllSessions bool

	// RedirectURL is the callback URL registered at the OP
	// (authorization_redirect_uri), where CallbackHandler is mounted.
	// Optional: oxd already knows it; when set, New checks that it is an
	// absolute http(s) URL and that a plain-http URL on a non-loopback host
	// comes with InsecureCookies (a Secure session cookie would never come
	// back to it), and Realm defaults to its host. A callback without the
	// session cookie on another host than RedirectURL's is then reported
	// as that (log and page name the address to use).
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

	// CallTimeout bounds every oxd call made while serving a request.
	// Default [DefaultCallTimeout] (10s).
	CallTimeout time.Duration

	// SkipTokenRevocation turns off the revocation of the user's tokens
	// at logout. By default LogoutHandler revokes the refresh token, then
	// the access token, at the OP's revocation_endpoint (RFC 7009, oxd's
	// revoke_token extension command) when the session holds them. It is
	// best effort: it runs in the background after the response, bounded
	// by CallTimeout, and a failure (no revocation_endpoint at the OP, an
	// oxd server without revoke_token, a timeout) is only logged; the
	// logout never waits for it. Default false (revoke).
	SkipTokenRevocation bool

	// RefreshBefore: an access token is refreshed (when there is a refresh
	// token) on the first request that arrives less than RefreshBefore
	// before its expiry, or past half of its lifetime when the lifetime is
	// shorter than 2×RefreshBefore. Default 1m.
	RefreshBefore time.Duration

	// InsecureKeepSessionPastTokenExpiry keeps a session whose access
	// token has expired and cannot be refreshed (no refresh token): the
	// page says "signed in" while User.AccessToken no longer works. By
	// default such a session ends at its first request after the expiry:
	// a browser navigation re-authenticates through the OP (see
	// SilentReauthentication), an API request gets 401 (ErrLoginRequired).
	// A refresh the OP refuses (invalid_grant) ends the session the same
	// way. To keep users signed in without a trip to the OP, request a
	// refresh token: add "offline_access" to Scopes (many OPs then also
	// require Prompt "consent", e.g. Google with access_type, Gluu,
	// oidc-provider), or rely on the OP's session with
	// SilentReauthentication. A token without expires_in is taken as not
	// expiring.
	InsecureKeepSessionPastTokenExpiry bool

	// SilentReauthentication makes the re-authentication after an expired
	// access token try prompt=none first: an OP that still has a session
	// signs the user in again without showing a page; if it answers
	// login_required, interaction_required, consent_required or
	// account_selection_required, the login restarts with the usual
	// prompt. Default off: the OP decides (it may show its login page).
	SilentReauthentication bool

	// RefreshLock makes a refresh single-flight across replicas (see
	// [RefreshLock]). Default: an in-process lock, enough for one replica.
	// Several replicas sharing a session store need a shared one, e.g.
	// redislock.New on the same Redis; without it two replicas may refresh
	// one session at once, and with an OP that rotates refresh tokens the
	// second is refused (the session then ends unless the first one's
	// tokens reached the store in time).
	RefreshLock RefreshLock

	// PendingLoginTTL is how long a started login may take, from the
	// redirect to the OP until the callback. Default 20m. An expired
	// pending login restarts the login instead of failing.
	PendingLoginTTL time.Duration

	// PendingLoginLimit bounds the logins one browser may have in progress
	// at once (one per tab); beyond it the oldest is dropped (its callback
	// fails with ErrStateMismatch and the user starts again). Default 8.
	PendingLoginLimit int

	// PendingLoginKey (32 bytes, [PendingLoginKeySize]) encrypts and
	// authenticates the pending-login cookies. A login in progress is kept
	// in the browser, not on the server: a browser that was sent to the OP
	// and has not come back holds no session, so anonymous traffic cannot
	// fill the session store. Each pending login is one cookie
	// ("__Host-oxd-login-…", or "oxd-login-…" with InsecureCookies;
	// HttpOnly, SameSite=Lax, Path=/, Max-Age PendingLoginTTL) bound to
	// its state, at most PendingLoginLimit of them and 8 KiB together per
	// browser, the oldest dropped first. The session is created at the
	// callback, after the session token is renewed.
	//
	// Required when the session store is not scs's in-memory store
	// (scs.New's default; New looks at SessionManager.Store, so set the
	// store before calling New): every replica must open the cookies the others
	// set, so give each the same 32 random bytes from your secret store
	// (e.g. `openssl rand 32`), never a constant in code. With the
	// in-memory store it may stay empty: New then draws a random key
	// per process, which loses nothing, as the sessions live in that
	// process too. Changing the key fails the logins in progress (their
	// callback answers ErrStateMismatch; the user starts again).
	PendingLoginKey []byte

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

	// UMA configures UMA 2.0 protection ([Auth.UMAProtect]). The zero value
	// is usable; see [UMAConfig]. New validates it.
	UMA UMAConfig

	// InsecureCookies leaves the session cookie without the Secure
	// attribute, for development over plain HTTP on a host other than
	// localhost. Never in production: the session cookie would travel in
	// clear text.
	InsecureCookies bool

	// GobSessions writes sessions as the previous release did: scs's gob
	// encoding instead of the compact one New installs (see New), with
	// the User in its encoding version 2. Everything is read either way.
	// Set it while replicas of the previous release still share the
	// session store, and unset it once all run this one. It applies to
	// every Auth of the process (gob encodes a User without a context):
	// once one New had it set, every User of the process is written in
	// version 2 until the process restarts. Default false.
	GobSessions bool

	// TracerProvider receives the middleware's spans: login start,
	// callback, refresh, logout, back- and front-channel logout, and one
	// span per UMA decision (see the package documentation, "Telemetry").
	// Default nil: the global provider (otel.GetTracerProvider), which
	// records nothing until the application installs one; while none is
	// installed no span is started at all. Spans never carry a token, a
	// code, a state, a nonce, an RPT, a user or a raw path.
	TracerProvider trace.TracerProvider

	// MeterProvider receives the middleware's metrics (logins, login
	// failures by reason, refreshes, logouts, back-channel logouts, UMA
	// decisions, grant-cache size). Default nil: the global provider
	// (otel.GetMeterProvider), a no-op until the application installs
	// one. Labels come from small fixed sets and route templates only.
	MeterProvider metric.MeterProvider
}

// New returns the login middleware for the site cfg names, talking to oxd
// through client and keeping identity in sessions (any scs store).
//
// New adjusts sessions.Cookie: HttpOnly is set, Secure is set unless
// cfg.InsecureCookies, and SameSite is set to Lax when it is unset. It
// refuses SameSite=Strict (the cookie would not come back on the OP's
// redirect to the callback) and SameSite=None without Secure. Call New
// before the session manager serves requests.
//
// New also replaces scs's default codec (sessions.Codec unset or
// scs.GobCodec) with a compact one: a logged-in session is written as the
// [User]'s own binary encoding instead of a gob stream, which is smaller
// in the store and several times cheaper to load on every request; other
// session values still go through gob. It reads sessions written by
// scs.GobCodec, so existing sessions stay valid. A codec the application
// set itself is left alone.
//
// With cfg.SessionIndex, New also wraps sessions.Store (set the store
// before calling New): after every write of a session the wrapper asks the
// index whether the session was ended by a logout meanwhile, and deletes it
// again if so, so that a request in flight during a logout cannot write
// the session back (see [SessionIndex]). Reads are passed through.
func New(client *oxdclient.Client, sessions *scs.SessionManager, cfg Config) (*Auth, error) {
	if client == nil {
		return nil, errors.New("oxd: New: nil oxdclient.Client")
	}
	if sessions == nil {
		return nil, errors.New("oxd: New: nil scs.SessionManager")
	}
	oxdID, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("oxd: Config.TrustedOrigins: %w", err)
		}
	}
	if err := secureCookie(&sessions.Cookie, cfg.InsecureCookies); err != nil {
		return nil, err
	}
	umaSet, err := newUMASettings(cfg.UMA, cfg.Realm)
	if err != nil {
		return nil, err
	}
	pending, err := newPendingCodec(&cfg, oxdID, unguarded(sessions.Store))
	if err != nil {
		return nil, err
	}
	cfg.PendingLoginKey = nil // kept by the codec only

	c := &core{
		client: client, oxdID: oxdID, sm: sessions, now: time.Now,
		log: cfg.Logger, errh: cfg.ErrorHandler, apiFn: cfg.APIRequest,
		cop: cop, callTimeout: cfg.CallTimeout, tel: newRPTelemetry(&cfg),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.apiFn == nil {
		c.apiFn = IsAPIRequest
	}
	if cfg.SessionIndex != nil {
		guardStore(sessions, cfg.SessionIndex, c.log)
	}
	a := &Auth{
		core:       c,
		cfg:        cfg,
		pending:    pending,
		lock:       cfg.RefreshLock,
		wwwAuth:    `Bearer realm="` + cfg.Realm + `"`,
		logoutGET:  slices.Contains(cfg.LogoutMethods, http.MethodGet),
		logoutPOST: slices.Contains(cfg.LogoutMethods, http.MethodPost),
		idx:        cfg.SessionIndex,
	}
	if c.errh == nil {
		c.errh = a.defaultErrorHandler
	}
	if a.lock == nil {
		a.lock = newMemoryLock()
	}
	a.ref.init()
	a.uma = newUMAGuard(c, umaSet, umaLogin{
		challenge: a.challenge, returnTo: a.returnTo,
		pendingTTL: cfg.PendingLoginTTL, pendingLimit: cfg.PendingLoginLimit,
	})
	c.tel.observeGrantCache(a.uma)
	installSessionCodec(sessions, cfg.GobSessions)
	return a, nil
}
