package oxd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/oxdgo/oxd/oxdclient"
)

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
// the return-to in a pending-login cookie, and redirects the browser to the
// OP. It does not touch the session.
func (a *Auth) startLogin(w http.ResponseWriter, r *http.Request, returnTo string, restarts int) {
	a.startLoginWith(w, r, returnTo, restarts, false)
}

// startLoginWith is startLogin; silent sends prompt=none.
func (a *Auth) startLoginWith(w http.ResponseWriter, r *http.Request, returnTo string, restarts int, silent bool) {
	rt := a.returnTo(r, returnTo)
	prompt := a.cfg.Prompt
	if silent {
		prompt = "none"
	}
	sctx, sp := a.tel.start(r.Context(), spanLoginStart)
	ctx, cancel := a.oxdCtx(sctx)
	resp, err := a.client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{
		OxdID:            a.oxdID,
		Scope:            a.cfg.Scopes,
		AcrValues:        a.cfg.AcrValues,
		Prompt:           prompt,
		CustomParameters: a.cfg.CustomParameters,
	})
	cancel()
	if err != nil {
		status, e := oxdFailure("login: get_authorization_url", err)
		a.tel.loginStartDone(sctx, sp, e)
		a.fail(w, r, status, e)
		return
	}
	authURL, state, err := parseAuthorizationURL(resp.AuthorizationURL)
	if err != nil {
		e := fmt.Errorf("login: get_authorization_url: %w: %w", ErrCommand, err)
		a.tel.loginStartDone(sctx, sp, e)
		a.fail(w, r, http.StatusBadGateway, e)
		return
	}
	if len(rt) > maxPendingReturnTo {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "oxd: return-to too long to keep; the login returns to DefaultReturnTo",
			slog.Int("length", len(rt)))
		rt = a.cfg.DefaultReturnTo
	}
	// The pending login goes into a cookie of its own, not the session:
	// no server-side state for a browser that has not come back yet.
	a.pending.put(w, r, pendingLogin{State: state, ReturnTo: rt, Created: a.now(), Restarts: restarts, Silent: silent}, a.now())
	a.tel.loginStartDone(sctx, sp, nil)
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

// takePending removes (in the response) and returns the pending login with
// this state. expired reports an entry older than PendingLoginTTL; present
// whether the browser sent any pending-login cookie.
func (a *Auth) takePending(w http.ResponseWriter, r *http.Request, state string) (p pendingLogin, found, expired, present bool) {
	p, found, present = a.pending.take(w, r, state)
	return p, found, found && a.now().Sub(p.Created) >= a.cfg.PendingLoginTTL, present
}
