package oxd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/oxdclient"
)

// Limits on callback parameters; larger values are refused with 400.
const (
	maxCallbackQuery   = 8 << 10
	maxStateLen        = 512
	maxIssLen          = 2048
	maxCodeLen         = 4096
	maxOPErrorLen      = 128
	maxOPErrorDescLen  = 1024
	maxShownOPErrorLen = 300
)

// CallbackHandler handles the OP's redirect back (the registered
// authorization_redirect_uri). It accepts GET only, and:
//
//   - refuses oversized or repeated parameters (400, [ErrBadCallback]);
//   - turns an OP error parameter into 400 with an [*OPError];
//   - requires a state equal (constant-time) to a pending login of this
//     browser (its pending-login cookie, see Config.PendingLoginKey), else
//     400 ([ErrStateMissing], [ErrStateMismatch], [ErrSessionCookieMissing])
//     without calling oxd; a pending login is used once (its cookie is
//     removed whatever the outcome);
//   - relays the response's iss (RFC 9207) to get_tokens_by_code; the
//     engine refuses an iss other than the OP's issuer, or a missing one
//     when the OP announces it (400, [ErrIssuerMismatch]), before the code
//     is exchanged;
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
	return a.tel.wrap(spanCallback, a.tel.callbackDone, a.withSession(http.HandlerFunc(a.callback)))
}

// redirectQuery does the checks shared by the redirects that come back
// from the OP/AS (the login callback, the UMA claims redirect): no caching,
// no Referer, GET only, a bounded query that parses. On failure it has
// answered with reason (labelled op) and returns false.
func (a *core) redirectQuery(w http.ResponseWriter, r *http.Request, op string, reason error) (url.Values, bool) {
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
	if err := checkCallbackParams(q); err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	state := q.Get("state")

	if opErr := q.Get("error"); opErr != "" {
		oe := &OPError{Code: sanitizeOPCode(opErr)}
		// The OP's description is shown only for a login this browser
		// started: otherwise anyone could put text on our error page with a
		// crafted link.
		if state != "" {
			if p, found, _, _ := a.takePending(w, r, state); found { // that attempt is over
				if p.Silent && interactionRequired[oe.Code] {
					// prompt=none found no usable OP session: log in
					// with the usual prompt.
					a.startLogin(w, r, p.ReturnTo, p.Restarts)
					return
				}
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
	p, found, expired, present := a.takePending(w, r, state)
	if !found {
		if !present {
			a.fail(w, r, http.StatusBadRequest, fmt.Errorf("callback: %w: %w", ErrSessionCookieMissing, a.missingCookieCause(r)))
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

	u, status, err := a.exchange(ctx, code, state, q.Get("iss"))
	if err != nil {
		if oxdclient.IsStateNotRegistered(err) {
			a.restartLogin(w, r, p, fmt.Errorf("callback: get_tokens_by_code: %w: %w", ErrCommand, err))
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
	deadline := a.now().Add(a.sessionLifetime())
	a.sm.SetDeadline(ctx, deadline)
	// Logout across sessions: the index learns the new session (iss, sub,
	// the ID token's sid). A session it does not know could not be logged
	// out, so a failure ends it.
	if err := a.indexSession(ctx, u, deadline); err != nil {
		_ = a.sm.Destroy(ctx)
		a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("callback: %w: session index: %w", ErrSession, err))
		return
	}
	a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: login completed", slog.String("subject", u.Subject))
	a.redirect(w, a.returnTo(r, p.ReturnTo))
}

// interactionRequired are the OP errors that answer prompt=none when the
// user must interact (OpenID Connect Core §3.1.2.6).
var interactionRequired = map[string]bool{
	"login_required": true, "interaction_required": true,
	"consent_required": true, "account_selection_required": true,
}

// checkCallbackParams refuses a repeated or oversized callback parameter.
func checkCallbackParams(q url.Values) error {
	for _, p := range [...]struct {
		name string
		max  int
	}{{"state", maxStateLen}, {"code", maxCodeLen}, {"iss", maxIssLen}, {"error", maxOPErrorLen}, {"error_description", maxOPErrorDescLen}, {"error_uri", maxOPErrorDescLen}} {
		v := q[p.name]
		if len(v) > 1 {
			return fmt.Errorf("callback: %w: parameter %s repeated", ErrBadCallback, p.name)
		}
		if len(v) == 1 && len(v[0]) > p.max {
			return fmt.Errorf("callback: %w: parameter %s too long", ErrBadCallback, p.name)
		}
	}
	return nil
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
//
// iss is the callback's iss parameter ("" when absent), relayed to the
// engine, which checks it against the OP's discovery (RFC 9207).
func (a *Auth) exchange(ctx context.Context, code, state, iss string) (*User, int, error) {
	octx, cancel := a.oxdCtx(ctx)
	defer cancel()
	tok, err := a.client.GetTokensByCode(octx, oxdclient.GetTokensByCodeParams{
		OxdID: a.oxdID,
		Code:  oxdclient.Secret(code),
		State: state,
		Iss:   &iss,
	})
	if err != nil {
		if oxdclient.IsStateNotRegistered(err) {
			return nil, http.StatusBadRequest, err
		}
		if oe := (*oxdclient.Error)(nil); errors.As(err, &oe) && oe.Code == oxdclient.CodeIssuerMismatch {
			return nil, http.StatusBadRequest, fmt.Errorf("callback: %w: %s", ErrIssuerMismatch, oe.Description)
		}
		status, e := oxdFailure("callback: get_tokens_by_code", err)
		return nil, status, e
	}
	if tok.AccessToken == "" || tok.IDToken == "" {
		return nil, http.StatusBadGateway, fmt.Errorf("callback: get_tokens_by_code: %w: answer without access or ID token", ErrCommand)
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

// cookieCause says why a callback came without the session cookie: log is
// for the application's log (it may name the request's host), page for the
// user (it names only configured addresses).
type cookieCause struct{ log, page string }

func (c *cookieCause) Error() string { return c.log }

// missingCookieCause tells apart the causes of a callback without the
// session cookie that a developer meets: the request's host differs from
// the registered redirect URI's (Config.RedirectURL), a Secure cookie over
// plain HTTP on a host that is not loopback, or (the callback itself being
// on the redirect URI's host) a sign-in started on another host, such as
// localhost when the redirect URI is on 127.0.0.1: cookies are per host.
func (a *Auth) missingCookieCause(r *http.Request) error {
	host := sanitizeText(r.Host, 255)
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	origin := ""
	if ru, err := url.Parse(a.cfg.RedirectURL); err == nil && a.cfg.RedirectURL != "" {
		origin = ru.Scheme + "://" + ru.Host
		if !strings.EqualFold(withoutDefaultPort(ru.Scheme, ru.Host), withoutDefaultPort(scheme, host)) {
			return &cookieCause{
				log: fmt.Sprintf("this request's host %q differs from the registered redirect URI's host %q (Config.RedirectURL): "+
					"a cookie set on one host is not sent to the other; open the application at %s and sign in there", host, ru.Host, origin),
				page: "Your browser did not send the session cookie back: this address is not the one sign-in returns to. Open the application at " + origin + " and sign in again.",
			}
		}
	}
	if r.TLS == nil && a.pending.secure && !hostutil.BrowserSecureContext(hostname) {
		return &cookieCause{
			log: fmt.Sprintf("the callback came over plain HTTP to %q, which is not a loopback host, and the session cookie is Secure: "+
				"browsers send Secure cookies over plain HTTP only to localhost and loopback addresses; use HTTPS (or a TLS-terminating proxy), "+
				"or set Config.InsecureCookies for development", host),
			page: "Your browser did not send the session cookie back over this unencrypted connection. Use the application's https:// address and sign in again.",
		}
	}
	where := "this address"
	if origin != "" {
		where = origin
	}
	return &cookieCause{
		log: fmt.Sprintf("the browser has no session cookie for %s://%s, the registered redirect URI's host: the sign-in was most likely started on another host "+
			"(for example localhost when the redirect URI is on 127.0.0.1, which are different cookie hosts); open the application on the redirect URI's host and sign in there "+
			"(otherwise: the browser refuses cookies, or a proxy or the cookie's Domain or Path drops it)", scheme, host),
		page: "Your browser did not send the session cookie back. Sign in again starting from " + where + " (the same address the sign-in returns to), with cookies enabled.",
	}
}

// withoutDefaultPort drops the scheme's default port from host ("a:443"
// for https is "a").
func withoutDefaultPort(scheme, host string) string {
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		return host[:strings.LastIndexByte(host, ':')]
	}
	return host
}
