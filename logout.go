package oxd

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/oxdgo/oxd/oxdclient"
)

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
