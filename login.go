package oxd

import (
	"context"
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
		a.fail(w, r, http.StatusBadGateway, fmt.Errorf("login: get_authorization_url: %w: %w", ErrCommand, err))
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
	putPendingEntry[pendingLogins](a.core, ctx, sessionKeyPending, p, a.cfg.PendingLoginTTL, a.cfg.PendingLoginLimit)
}

// takePending removes and returns the pending login with this state. The
// comparison runs in constant time over every entry. expired reports an
// entry older than PendingLoginTTL.
func (a *Auth) takePending(ctx context.Context, state string) (p pendingLogin, found, expired bool) {
	p, found = takePendingEntry[pendingLogins](a.core, ctx, sessionKeyPending, state)
	return p, found, found && a.now().Sub(p.Created) >= a.cfg.PendingLoginTTL
}
