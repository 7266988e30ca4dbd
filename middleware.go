package oxd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
)

// Auth is the login middleware. Create it with [New]; its methods are safe
// for concurrent use.
type Auth struct {
	*core
	cfg     Config
	wwwAuth string
	ref     refresher
	lock    RefreshLock
	pending *pendingCodec // pending-login cookies (pending.go)
	uma     *umaGuard     // UMA declarations, settings and grant cache (uma_*.go)

	logoutGET, logoutPOST bool

	idx      SessionIndex   // Config.SessionIndex; nil: no logout across sessions
	channels logoutChannels // back- and front-channel handlers, built on first use
	revoker  revoker        // token revocation at logout (logout_revoke.go)
}

// core is what the login handlers and the UMA guard both work with: the
// site at oxd, the sessions, the clock, the logger, the error handler and
// the request classification. New builds one, shared by Auth and its
// umaGuard; it does not change afterwards.
type core struct {
	client      *oxdclient.Client
	oxdID       string
	sm          *scs.SessionManager
	now         func() time.Time
	log         *slog.Logger
	errh        ErrorHandler
	apiFn       func(*http.Request) bool
	cop         *http.CrossOriginProtection // same-origin check of state-changing requests
	callTimeout time.Duration
	tel         *rpTelemetry // spans and metrics (telemetry.go)
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
	now := a.now()
	if !u.refreshDue(now) && u.expired(now) && !a.cfg.InsecureKeepSessionPastTokenExpiry {
		// Expired and nothing to refresh it with: the session ends; the
		// browser re-authenticates, an API request gets 401.
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "oxd: access token expired without a refresh token; ending the session",
			slog.String("subject", u.Subject))
		if err := a.sm.Destroy(r.Context()); err != nil {
			a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("%w: %w", ErrSession, err))
			return
		}
		a.reauthenticate(w, r, fmt.Errorf("%w: the access token expired and there is no refresh token", ErrLoginRequired))
		return
	}
	if u.refreshDue(now) {
		nu, status, err := a.refreshUser(r, u)
		switch {
		case err == nil:
			u = nu
		case status == 0:
			// The session was ended: log in again.
			a.reauthenticate(w, r, err)
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

// reauthenticate answers a request whose session just ended because its
// tokens can no longer be used: as challenge, with prompt=none first for a
// browser when Config.SilentReauthentication.
func (a *Auth) reauthenticate(w http.ResponseWriter, r *http.Request, err error) {
	if a.isAPI(r) || !a.cfg.SilentReauthentication {
		a.challenge(w, r, err)
		return
	}
	a.startLoginWith(w, r, r.URL.RequestURI(), 0, true)
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

// isAPI applies Config.APIRequest.
func (a *core) isAPI(r *http.Request) bool { return a.apiFn(r) }

// oxdCtx bounds one oxd call.
func (a *core) oxdCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.callTimeout)
}

// fail logs err and hands it to the error handler.
func (a *core) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	level := slog.LevelWarn
	switch {
	case errors.Is(err, ErrLoginRequired):
		level = slog.LevelDebug
	case errors.Is(err, ErrLocalLogoutOnly):
		level = slog.LevelInfo
	}
	a.log.LogAttrs(r.Context(), level, "oxd: request failed",
		slog.Int("status", status), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	noteFailure(r.Context(), err)
	a.errh(w, r, status, err)
}

// sessionLoaded reports whether ctx already carries this manager's session
// (the handler is wrapped by sessions.LoadAndSave). scs offers no check:
// its accessors panic without a loaded session, which is recovered here.
func (a *core) sessionLoaded(ctx context.Context) (ok bool) {
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
func (a *core) lookupUser(ctx context.Context) (u *User, loaded bool) {
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
func (a *core) withSession(h http.Handler) http.Handler {
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
func (a *core) sessionUser(ctx context.Context) *User {
	u, _ := a.sm.Get(ctx, sessionKeyUser).(*User)
	return u
}

// redirect answers 303 See Other with Location set verbatim (no path
// cleaning, no rewriting).
func (a *core) redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

func setNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
