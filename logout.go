package oxd

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// LogoutHandler ends the session and sends the browser (303) to the OP's
// end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), as built
// by oxd's get_logout_uri: with id_token_hint (the session's ID token),
// with post_logout_redirect_uri when Config.PostLogoutRedirectURI is set
// (the OP then sends the browser there), and with client_id instead of the
// hint when no ID token is known. Without a signed-in user it goes to
// PostLogoutRedirectURI (or DefaultReturnTo).
//
// The local session always ends: it is destroyed, and removed from
// Config.SessionIndex. With Config.LogoutAllSessions every other session
// of the user ends too, on every replica (a failure there is reported as
// 500, [ErrSession], after the current session has ended), and the tokens
// those sessions hold are revoked as the current session's are (below).
//
// Token revocation: unless Config.SkipTokenRevocation, the session's
// refresh token and then its access token are revoked at the OP (RFC 7009)
// in the background, best effort, bounded by Config.CallTimeout; see
// [Config.SkipTokenRevocation]. Sessions ended by the OP (back- and
// front-channel logout) are not revoked here: the OP ended its session and
// decides about its tokens (Back-Channel Logout §2.7 keeps offline_access
// refresh tokens alive).
//
// Local-only logout: when the OP has no end_session_endpoint or oxd cannot
// build the URL, the session still ends here, and Config.ErrorHandler
// receives [ErrLocalLogoutOnly] (wrapping the cause) with status 200, so
// the application can tell the user that the OP session may still be
// active (the default page does) or redirect.
//
// It accepts POST (and GET when Config.LogoutMethods allows it). A POST
// must be same-origin, as decided by [http.CrossOriginProtection] with
// Config.TrustedOrigins; a cross-origin POST gets 403 ([ErrCrossOrigin]).
// Mount it as e.g. POST /logout and use a form:
//
//	<form method="post" action="/logout"><button>Sign out</button></form>
func (a *Auth) LogoutHandler() http.Handler {
	return a.tel.wrap(spanLogout, a.tel.logoutDone, a.withSession(http.HandlerFunc(a.logout)))
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
	if target == "" {
		target = a.cfg.DefaultReturnTo
	}
	var localOnly error // why the OP cannot be told
	u := a.sessionUser(ctx)
	if u != nil {
		octx, cancel := a.oxdCtx(ctx)
		resp, err := a.client.GetLogoutURI(octx, oxdclient.GetLogoutURIParams{
			OxdID:                 a.oxdID,
			IDTokenHint:           u.idTokenText(),
			PostLogoutRedirectURI: a.cfg.PostLogoutRedirectURI,
		})
		cancel()
		switch {
		case err != nil:
			_, e := oxdFailure("logout: get_logout_uri", err)
			localOnly = e
		default:
			if _, uerr := absoluteHTTPURL(resp.URI); uerr != nil {
				localOnly = fmt.Errorf("logout: get_logout_uri: %w: invalid URL", ErrCommand)
			} else {
				target = resp.URI
			}
		}
		a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: logout", slog.String("subject", u.Subject))
		if !a.cfg.SkipTokenRevocation {
			a.revokeTokens(ctx, u.refreshToken, u.accessToken)
		}
	}
	current := a.storeKey(a.sm.Token(ctx))
	if a.idx != nil && u != nil && current != "" {
		// Marked before it is deleted: a request of this session in
		// flight cannot write it back (see SessionIndex.MarkEnded).
		if err := a.idx.MarkEnded(ctx, current, time.Now().Add(a.sessionLifetime())); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: logout: session index mark failed", slog.String("error", err.Error()))
		}
	}
	if err := a.sm.Destroy(ctx); err != nil {
		a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("logout: %w: %w", ErrSession, err))
		return
	}
	if a.idx != nil && u != nil && current != "" {
		if err := a.idx.Remove(ctx, current); err != nil {
			// The session is gone from the store; a stale entry only costs
			// a lookup and expires with it.
			a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: logout: session index remove failed", slog.String("error", err.Error()))
		}
		if a.cfg.LogoutAllSessions {
			n, err := a.endOtherSessions(ctx, u, current)
			if err != nil {
				a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("logout: %w: ending the other sessions (%d ended): %w", ErrSession, n, err))
				return
			}
			a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: logout of all sessions", slog.Int("others_ended", n))
		}
	}
	if localOnly != nil {
		a.fail(w, r, http.StatusOK, fmt.Errorf("%w: %w", ErrLocalLogoutOnly, localOnly))
		return
	}
	a.redirect(w, target)
}
