package oxd

import (
	"context"
	"crypto/subtle"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// Session keys of browser RP mode.
const (
	sessionKeyUMARPT       = "oxd.uma.rpt"
	sessionKeyUMAPending   = "oxd.uma.pending"
	sessionKeyUMAChallenge = "oxd.uma.challenge"
)

// Limits of the claims redirect.
const (
	maxUMAClaimsAttempts = 3
	maxTicketLen         = 4096
)

func init() {
	gob.Register(&umaSessionRPT{})
	gob.Register(umaPendingClaims{})
}

// umaSessionRPT is the RPT browser mode obtained for the session's user.
// It is bound to the user's subject: a session whose user changes does not
// inherit it.
type umaSessionRPT struct {
	Subject  string
	RPT      oxdclient.Secret
	Obtained time.Time
}

// umaPendingClaim is a claims-gathering round trip in progress.
type umaPendingClaim struct {
	State     string // oxd's state, sent to the AS and expected back
	Ticket    string // the ticket sent to the AS; the one coming back must differ
	ReturnTo  string // the original request URI
	Subject   string
	Challenge string // the challenge the original request met
	Created   time.Time
	Attempts  int
}

type umaPendingClaims []umaPendingClaim

// serveBrowser is UMAProtect in browser RP mode for a request without an
// Authorization header; the session is loaded.
func (g *umaGuard) serveBrowser(w http.ResponseWriter, r *http.Request, template string, next http.Handler) {
	ctx := r.Context()
	u, ok := UserFrom(ctx)
	if !ok {
		u = g.sessionUser(ctx)
	}
	if u == nil {
		if !g.isAPI(r) {
			// The user must be known before an RPT is obtained for them.
			g.login.challenge(w, r, ErrLoginRequired)
			return
		}
		g.plain(w, r, template, "", next)
		return
	}
	sr := g.sessionRPT(ctx, u)
	if sr != "" {
		// The session's RPT rides on the cookie, so a state-changing
		// request must come from our own origin (Check passes GET, HEAD
		// and OPTIONS).
		if err := g.cop.Check(r); err != nil {
			g.fail(w, r, http.StatusForbidden, fmt.Errorf("uma: %w: %w", ErrCrossOrigin, err))
			return
		}
	}
	if sr == "" && g.isAPI(r) {
		g.plain(w, r, template, "", next)
		return
	}
	dec := g.decide(ctx, r.Method, template, sr)
	if dec.Granted {
		dec.SessionRPT = true
		if ch, _ := g.sm.Pop(ctx, sessionKeyUMAChallenge).(string); ch != "" {
			dec.NewRPT, dec.Challenge = true, ch
		}
		next.ServeHTTP(w, withDecision(r, dec))
		return
	}
	if dec.Status != http.StatusUnauthorized || g.isAPI(r) {
		g.writeDenied(w, r, dec)
		return
	}
	g.obtain(w, r, u, template, sr, dec, next)
}

// plain is the decision without browser mode.
func (g *umaGuard) plain(w http.ResponseWriter, r *http.Request, template, rpt string, next http.Handler) {
	dec := g.decide(r.Context(), r.Method, template, rpt)
	if !dec.Granted {
		g.writeDenied(w, r, dec)
		return
	}
	next.ServeHTTP(w, withDecision(r, dec))
}

// sessionRPT returns the RPT kept in the session for u, or "".
func (g *umaGuard) sessionRPT(ctx context.Context, u *User) string {
	v, _ := g.sm.Get(ctx, sessionKeyUMARPT).(*umaSessionRPT)
	if v == nil {
		return ""
	}
	if v.Subject != u.Subject {
		g.sm.Remove(ctx, sessionKeyUMARPT)
		return ""
	}
	return v.RPT.Reveal()
}

// keepRPT stores an RPT in u's session after checking that oxd did not
// give it to another user.
func (g *umaGuard) keepRPT(ctx context.Context, u *User, rpt string) error {
	if !g.owners.claim(hashRPT(rpt), u.Subject) {
		g.log.LogAttrs(ctx, slog.LevelError, "oxd: oxd returned an RPT already given to another user; refused (oxd-server 3.1.4 caches one RPT per site: browser mode needs an oxd without that cache)",
			slog.String("subject", u.Subject))
		return fmt.Errorf("uma: uma_rp_get_rpt: %w", ErrUMASharedRPT)
	}
	g.sm.Put(ctx, sessionKeyUMARPT, &umaSessionRPT{Subject: u.Subject, RPT: oxdclient.Secret(rpt), Obtained: g.now()})
	return nil
}

// obtain gets an RPT for the user with the ticket of dec: directly, or
// through claims gathering.
func (g *umaGuard) obtain(w http.ResponseWriter, r *http.Request, u *User, template, have string, dec *UMADecision, next http.Handler) {
	ctx := r.Context()
	rpt, ni, err := g.getRPT(ctx, u, dec.Ticket, have)
	switch {
	case err != nil:
		g.rpFailure(w, r, err)
	case ni != nil:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			g.fail(w, r, http.StatusForbidden, fmt.Errorf("uma: %w: the AS needs claims, which are gathered on a GET navigation", ErrUMADenied))
			return
		}
		g.startClaims(w, r, u, ni.Ticket, r.URL.RequestURI(), dec.Challenge, 0)
	default:
		if err := g.keepRPT(ctx, u, rpt); err != nil {
			g.fail(w, r, http.StatusBadGateway, err)
			return
		}
		d2 := g.decide(ctx, r.Method, template, rpt)
		if !d2.Granted {
			if d2.Status == http.StatusUnauthorized {
				g.fail(w, r, http.StatusForbidden, fmt.Errorf("uma: %w: the RPT the AS issued does not grant %s %s", ErrUMADenied, r.Method, template))
				return
			}
			g.writeDenied(w, r, d2)
			return
		}
		d2.SessionRPT, d2.NewRPT, d2.Challenge, d2.Ticket = true, true, dec.Challenge, dec.Ticket
		g.log.LogAttrs(ctx, slog.LevelDebug, "oxd: UMA RPT obtained for the user",
			slog.String("subject", u.Subject), slog.String("template", template))
		next.ServeHTTP(w, withDecision(r, d2))
	}
}

// getRPT calls uma_rp_get_rpt with the ticket, upgrading the RPT the user
// has, and pushing the user's ID token when configured. need_info comes
// back as ni (with a new ticket, checked to differ from the one sent).
func (g *umaGuard) getRPT(ctx context.Context, u *User, ticket, have string) (rpt string, ni *oxdclient.NeedInfo, err error) {
	p := oxdclient.UMARPGetRPTParams{OxdID: g.oxdID, Ticket: ticket, RPT: oxdclient.Secret(have)}
	if s := g.settings.Load(); s.pushIDToken && u.hasIDToken() {
		if exp, ok := u.IDTokenClaims.Int("exp"); !ok || g.now().Before(time.Unix(exp, 0)) {
			p.ClaimToken, p.ClaimTokenFormat = u.idTokenText(), UMAClaimTokenFormatIDToken
		}
	}
	octx, cancel := g.oxdCtx(ctx)
	defer cancel()
	resp, err := g.client.UMARPGetRPT(octx, p)
	if err != nil {
		var oe *oxdclient.Error
		if errors.As(err, &oe) {
			if n, ok := oe.NeedInfo(); ok {
				if n.Ticket == "" || n.Ticket == ticket || len(n.Ticket) > maxTicketLen {
					return "", nil, fmt.Errorf("uma: uma_rp_get_rpt: %w: need_info without a new ticket", ErrCommand)
				}
				return "", n, nil
			}
		}
		return "", nil, err
	}
	if resp.AccessToken == "" || !validB64Token(resp.AccessToken.Reveal()) {
		return "", nil, fmt.Errorf("uma: uma_rp_get_rpt: %w: no usable RPT in the answer", ErrCommand)
	}
	return resp.AccessToken.Reveal(), nil, nil
}

// rpFailure answers a failed uma_rp_get_rpt: the AS's refusal is 403,
// oxd failures 502/503.
func (g *umaGuard) rpFailure(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oxdclient.Error
	if errors.As(err, &oe) {
		switch st := oe.HTTPStatus(); {
		case st == http.StatusForbidden, st == http.StatusBadRequest:
			// request_denied, invalid_grant, invalid_scope…
			g.fail(w, r, http.StatusForbidden, fmt.Errorf("uma: %w: uma_rp_get_rpt: %s", ErrUMADenied, oe.Code))
			return
		}
	}
	if errors.Is(err, ErrCommand) || errors.Is(err, ErrUMASharedRPT) {
		g.fail(w, r, http.StatusBadGateway, err)
		return
	}
	status, e := oxdFailure("uma: uma_rp_get_rpt", err)
	g.fail(w, r, status, e)
}

// startClaims asks oxd for the claims-gathering URL of a ticket, keeps
// {ticket, state, original URL} in the session and redirects the browser
// to the AS.
func (g *umaGuard) startClaims(w http.ResponseWriter, r *http.Request, u *User, ticket, returnTo, challenge string, attempts int) {
	ctx := r.Context()
	s := g.settings.Load()
	if s.claimsRedirect == "" {
		g.configError(w, r, &UMADecision{Method: r.Method, Status: http.StatusInternalServerError,
			Err: fmt.Errorf("%w: the AS needs claims gathering and Config.UMA.ClaimsRedirectURL is not set", ErrUMAConfig)})
		return
	}
	octx, cancel := g.oxdCtx(ctx)
	resp, err := g.client.UMARPGetClaimsGatheringURL(octx, oxdclient.UMARPGetClaimsGatheringURLParams{
		OxdID: g.oxdID, Ticket: ticket, ClaimsRedirectURI: s.claimsRedirect,
	})
	cancel()
	if err != nil {
		status, e := oxdFailure("uma: uma_rp_get_claims_gathering_url", err)
		g.fail(w, r, status, e)
		return
	}
	if err := checkClaimsURL(resp.URL, ticket, s.claimsRedirect, resp.State); err != nil {
		g.fail(w, r, http.StatusBadGateway, fmt.Errorf("uma: uma_rp_get_claims_gathering_url: %w: %w", ErrCommand, err))
		return
	}
	now := g.now()
	if g.sm.Token(ctx) == "" {
		g.sm.SetDeadline(ctx, now.Add(g.login.pendingTTL))
	}
	putPendingEntry[umaPendingClaims](g.core, ctx, sessionKeyUMAPending, umaPendingClaim{
		State: resp.State, Ticket: ticket, ReturnTo: returnTo, Subject: u.Subject,
		Challenge: challenge, Created: now, Attempts: attempts + 1,
	}, g.login.pendingTTL, g.login.pendingLimit)
	g.log.LogAttrs(ctx, slog.LevelDebug, "oxd: UMA claims gathering started", slog.String("subject", u.Subject))
	setNoStore(w)
	g.redirect(w, resp.URL)
}

// checkClaimsURL verifies that the claims-gathering URL oxd built carries
// exactly our ticket, claims redirect URI and state: oxd-server 3.1.4
// concatenates them without URL-encoding, and a value that needed
// encoding would arrive altered at the AS.
func checkClaimsURL(raw, ticket, redirect, state string) error {
	u, err := absoluteHTTPURL(raw)
	if err != nil {
		return fmt.Errorf("claims-gathering URL: %w", err)
	}
	if state == "" || len(state) > maxStateLen {
		return errors.New("no usable state")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("claims-gathering URL query does not parse")
	}
	for _, p := range [...]struct{ name, want string }{{"ticket", ticket}, {"claims_redirect_uri", redirect}, {"state", state}} {
		if v := q[p.name]; len(v) != 1 || v[0] != p.want {
			return fmt.Errorf("claims-gathering URL does not carry the %s that was sent (unencoded value?)", p.name)
		}
	}
	return nil
}

// takeClaim removes and returns the pending claims request with this
// state (constant-time comparison over every entry).
func (g *umaGuard) takeClaim(ctx context.Context, state string) (p umaPendingClaim, found bool) {
	return takePendingEntry[umaPendingClaims](g.core, ctx, sessionKeyUMAPending, state)
}

// ClaimsCallbackHandler handles the AS's redirect back after claims
// gathering (browser mode); mount it at UMAConfig.ClaimsRedirectURL. It
// accepts GET only, and:
//
//   - requires a state equal (constant-time) to a claims request started
//     in this browser's session for the logged-in user, else 400
//     ([ErrUMAClaims]) without calling oxd; a state is used once (CSRF
//     protection of the claims redirect URI, UMA Grant §5.1);
//   - requires a ticket that differs from the one sent to the AS (§3.3.3);
//   - gets the RPT (uma_rp_get_rpt with the new ticket), keeps it in the
//     user's session only, and redirects (303) to the original request,
//     which then passes with the session's RPT.
//
// When the claims request expired, the browser is sent back to the
// original request, which starts a new one. When the AS still needs
// claims, the browser goes through claims gathering again (three times
// at most).
func (a *Auth) ClaimsCallbackHandler() http.Handler {
	return a.withSession(http.HandlerFunc(a.uma.claimsCallback))
}

func (g *umaGuard) claimsCallback(w http.ResponseWriter, r *http.Request) {
	q, ok := g.redirectQuery(w, r, "uma: claims redirect", ErrUMAClaims)
	if !ok {
		return
	}
	ticket, state := q["ticket"], q["state"]
	if len(state) != 1 || state[0] == "" || len(state[0]) > maxStateLen {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("uma: claims redirect: %w: no single state", ErrUMAClaims))
		return
	}
	if len(ticket) != 1 || ticket[0] == "" || len(ticket[0]) > maxTicketLen {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("uma: claims redirect: %w: no single ticket", ErrUMAClaims))
		return
	}
	ctx := r.Context()
	u := g.sessionUser(ctx)
	if u == nil {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("uma: claims redirect: %w: nobody is logged in in this browser", ErrUMAClaims))
		return
	}
	p, found := g.takeClaim(ctx, state[0])
	if !found || p.Subject != u.Subject {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("uma: claims redirect: %w: the state is not a claims request of this session", ErrUMAClaims))
		return
	}
	returnTo := g.login.returnTo(r, p.ReturnTo)
	if g.now().Sub(p.Created) >= g.login.pendingTTL {
		g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA claims request expired; retrying the original request")
		g.redirect(w, returnTo)
		return
	}
	if subtle.ConstantTimeCompare([]byte(ticket[0]), []byte(p.Ticket)) == 1 {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("uma: claims redirect: %w: the AS returned the ticket that was sent", ErrUMAClaims))
		return
	}
	rpt, ni, err := g.getRPT(ctx, u, ticket[0], g.sessionRPT(ctx, u))
	switch {
	case err != nil:
		g.rpFailure(w, r, err)
	case ni != nil:
		if p.Attempts >= maxUMAClaimsAttempts {
			g.fail(w, r, http.StatusForbidden, fmt.Errorf("uma: %w: the AS still needs claims after %d rounds", ErrUMADenied, p.Attempts))
			return
		}
		g.startClaims(w, r, u, ni.Ticket, p.ReturnTo, p.Challenge, p.Attempts)
	default:
		if err := g.keepRPT(ctx, u, rpt); err != nil {
			g.fail(w, r, http.StatusBadGateway, err)
			return
		}
		if p.Challenge != "" {
			g.sm.Put(ctx, sessionKeyUMAChallenge, p.Challenge)
		}
		g.log.LogAttrs(ctx, slog.LevelDebug, "oxd: UMA RPT obtained after claims gathering", slog.String("subject", u.Subject))
		g.redirect(w, returnTo)
	}
}
