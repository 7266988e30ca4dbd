package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/oxdgo/oxd/oxdclient"
)

// Reasons passed to [Config.ErrorHandler]. Every error the middleware
// reports wraps exactly one of these (test with errors.Is) and, where there
// is one, the underlying cause. No error string contains a token, a code or
// a client secret.
var (
	// ErrLoginRequired: an API-style request without a logged-in session
	// (status 401, with WWW-Authenticate).
	ErrLoginRequired = errors.New("oxd: login required")

	// ErrStateMissing: the callback carries no state parameter (400).
	ErrStateMissing = errors.New("oxd: callback without state")
	// ErrStateMismatch: the callback's state is not a pending login of this
	// browser: login CSRF, a replayed or foreign callback, a pending login
	// dropped beyond Config.PendingLoginLimit, or a pending-login cookie
	// sealed with another Config.PendingLoginKey (400). No oxd call is made.
	ErrStateMismatch = errors.New("oxd: callback state does not match a pending login")
	// ErrSessionCookieMissing: the callback arrived without any
	// pending-login cookie, so no pending login can match (400). Usually a
	// cookie setting: Secure over plain HTTP, or a proxy that strips
	// cookies.
	ErrSessionCookieMissing = errors.New("oxd: callback without the session cookie")
	// ErrCodeMissing: the callback has a valid state but no code (400).
	ErrCodeMissing = errors.New("oxd: callback without code")
	// ErrBadCallback: oversized or repeated callback parameters, or a
	// method other than GET (400 or 405).
	ErrBadCallback = errors.New("oxd: malformed callback")
	// ErrOPError: the OP redirected back with an error parameter (400). The
	// error is an [*OPError] carrying the OP's code.
	ErrOPError = errors.New("oxd: the OP returned an error")
	// ErrACRMismatch: the ID token's acr is not one of Config.AcrValues
	// (403).
	ErrACRMismatch = errors.New("oxd: authentication context (acr) not satisfied")
	// ErrIssuerMismatch: the authorization response's iss is not the OP's
	// issuer, or is missing although the OP announces it (RFC 9207): the
	// response may come from another OP (mix-up attack); the code is not
	// exchanged (400). Checked by this project's engine (oxdserver).
	ErrIssuerMismatch = errors.New("oxd: authorization response from another issuer")
	// ErrSubjectMismatch: userinfo's sub differs from the ID token's sub, or
	// the ID token has none (502).
	ErrSubjectMismatch = errors.New("oxd: userinfo subject does not match the ID token")

	// ErrUnavailable: oxd (the mediator, not the OP) could not be reached,
	// or its connection closed (503). Formerly ErrOxdUnavailable.
	ErrUnavailable = errors.New("oxd: oxd unavailable")
	// ErrTimeout: oxd did not answer an oxd command within
	// Config.CallTimeout (503). Formerly ErrOxdTimeout.
	ErrTimeout = errors.New("oxd: oxd timeout")
	// ErrCommand: an oxd command failed: oxd answered with an error, or
	// with something that is not a valid answer (502). The underlying
	// [*oxdclient.Error], when there is one, is wrapped too. Formerly
	// ErrOxdError.
	ErrCommand = errors.New("oxd: oxd returned an error")

	// ErrRefreshFailed: the access token could not be refreshed; the session
	// has been ended (401 for API requests; browsers log in again).
	ErrRefreshFailed = errors.New("oxd: access token refresh failed")

	// ErrCrossOrigin: a cross-origin logout POST was refused (403).
	ErrCrossOrigin = errors.New("oxd: cross-origin request refused")
	// ErrMethodNotAllowed: the handler does not accept this method (405).
	ErrMethodNotAllowed = errors.New("oxd: method not allowed")
	// ErrSession: the session could not be read or renewed, or not
	// recorded in Config.SessionIndex (500).
	ErrSession = errors.New("oxd: session error")

	// ErrLocalLogoutOnly: LogoutHandler ended the session here but could
	// not send the browser to the OP's end-session endpoint (the OP has
	// none, or oxd could not build the URL; the cause is wrapped too), so
	// the user may still be signed in at the OP. It is not a failure: the
	// ErrorHandler receives it with status 200 after the local session is
	// gone, to tell the user (the default page does) or to redirect (e.g.
	// to Config.PostLogoutRedirectURI). Test with errors.Is.
	ErrLocalLogoutOnly = errors.New("oxd: signed out of this application only")
)

// Reasons of UMA failures. They are passed to Config.ErrorHandler (where
// the answer is not a bare UMA answer, see [Auth.UMAProtect]) and are found
// in [UMADecision.Err]. Test with errors.Is.
var (
	// ErrUMAChallenge: no RPT, or one that does not grant the resource;
	// the answer is 401 with a UMA challenge carrying a permission ticket.
	ErrUMAChallenge = errors.New("oxd: UMA authorization required")
	// ErrUMAUnreachable: no permission ticket could be obtained (the AS or
	// oxd is unreachable or failing); the answer is 403 with
	// Warning: 199 - "UMA Authorization Server Unreachable".
	ErrUMAUnreachable = errors.New("oxd: UMA authorization server unreachable")
	// ErrUMAConfig: the protection is misconfigured (no route template, a
	// template that differs from the declared one, an invalid declaration,
	// a route oxd does not protect, no issuer). The answer is 500 and the
	// error is logged at error level. Never a pass-through.
	ErrUMAConfig = errors.New("oxd: UMA configuration error")
	// ErrUMADeclaration: RegisterUMA refused the declared resources
	// (duplicate method for one template, empty scopes, bad scope
	// expression, …). It also matches ErrUMAConfig.
	ErrUMADeclaration = fmt.Errorf("%w: invalid UMA declaration", ErrUMAConfig)
	// ErrUMADenied: browser mode only; the AS refused to issue an RPT for
	// the user (403).
	ErrUMADenied = errors.New("oxd: UMA access denied")
	// ErrUMAClaims: a claims-gathering redirect that does not belong to a
	// claims request of this browser's session, reuses the ticket that was
	// sent, or is malformed (400).
	ErrUMAClaims = errors.New("oxd: invalid UMA claims redirect")
	// ErrUMASharedRPT: oxd returned an RPT that this process already gave
	// to another user (oxd-server 3.1.4 caches one RPT per site); it is
	// refused (502).
	ErrUMASharedRPT = errors.New("oxd: oxd returned an RPT issued to another user")
)

// OPError is the error parameter of an OP's redirect to the callback
// (OAuth 2.0 §4.1.2.1). It matches [ErrOPError] with errors.Is. Code is
// restricted to the characters OAuth allows; Description is the OP's text
// as sent (truncated): escape it before putting it into HTML.
type OPError struct {
	// Code is the OP's error code (e.g. "access_denied"), or
	// "invalid_error_code" when it has characters OAuth does not allow.
	Code string
	// Description is the OP's error_description, kept only for a login
	// this browser started; untrusted text.
	Description string
}

// Error returns "oxd: the OP returned an error: " with the code and, when
// present, the description.
func (e *OPError) Error() string {
	if e.Description == "" {
		return "oxd: the OP returned an error: " + e.Code
	}
	return "oxd: the OP returned an error: " + e.Code + ": " + e.Description
}

// Is makes errors.Is(err, ErrOPError) true.
func (e *OPError) Is(target error) bool { return target == ErrOPError }

// ErrorHandler renders a failure. status is the HTTP status the middleware
// chose; err wraps one of the Err… reasons of this package. The handler must
// write a response. For status 401 the WWW-Authenticate header is already
// set.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, status int, err error)

// oxdFailure classifies an error of an oxdclient call into a status and a
// reason-wrapped error.
func oxdFailure(op string, err error) (int, error) {
	var oe *oxdclient.Error
	switch {
	case errors.As(err, &oe):
		return http.StatusBadGateway, fmt.Errorf("%s: %w: %w", op, ErrCommand, err)
	case errors.Is(err, oxdclient.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, fmt.Errorf("%s: %w: %w", op, ErrTimeout, err)
	case errors.Is(err, oxdclient.ErrUnavailable), errors.Is(err, oxdclient.ErrClosed):
		return http.StatusServiceUnavailable, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		// The browser went away; nobody will read the answer.
		return http.StatusServiceUnavailable, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	default:
		return http.StatusBadGateway, fmt.Errorf("%s: %w: %w", op, ErrCommand, err)
	}
}

// reason maps an error to a short machine-readable code and a sentence safe
// to show to a user.
func reason(err error) (code, message string) {
	var ope *OPError
	switch {
	case errors.As(err, &ope):
		msg := "The identity provider refused the sign-in (" + ope.Code + ")"
		if ope.Description != "" {
			msg += ": " + ope.Description
		}
		return "op_error", msg + "."
	case errors.Is(err, ErrLoginRequired):
		return "login_required", "Authentication is required."
	case errors.Is(err, ErrStateMissing):
		return "state_missing", "The sign-in response has no state. Please start again."
	case errors.Is(err, ErrSessionCookieMissing):
		var cc *cookieCause
		if errors.As(err, &cc) {
			return "session_cookie_missing", cc.page
		}
		return "session_cookie_missing", "Your browser did not send the session cookie back. Please enable cookies and start again."
	case errors.Is(err, ErrStateMismatch):
		return "state_mismatch", "This sign-in response does not belong to a sign-in started in this browser, or it was already used. Please start again."
	case errors.Is(err, ErrCodeMissing):
		return "code_missing", "The sign-in response has no authorization code. Please start again."
	case errors.Is(err, ErrBadCallback):
		return "bad_request", "The sign-in response is malformed."
	case errors.Is(err, ErrIssuerMismatch):
		return "issuer_mismatch", "The sign-in response does not come from the expected identity provider. Please start again."
	case errors.Is(err, ErrACRMismatch):
		return "acr_not_satisfied", "The sign-in did not use the required authentication method."
	case errors.Is(err, ErrSubjectMismatch):
		return "subject_mismatch", "The identity provider returned inconsistent user information."
	case errors.Is(err, ErrTimeout):
		return "oxd_timeout", "The sign-in service did not answer in time. Please try again shortly."
	case errors.Is(err, ErrUnavailable):
		return "oxd_unavailable", "The sign-in service is unavailable. Please try again shortly."
	case errors.Is(err, ErrCommand):
		return "oxd_error", "The sign-in service returned an error."
	case errors.Is(err, ErrRefreshFailed):
		return "session_expired", "Your session has expired. Please sign in again."
	case errors.Is(err, ErrCrossOrigin):
		return "cross_origin", "Cross-origin request refused."
	case errors.Is(err, ErrMethodNotAllowed):
		return "method_not_allowed", "Method not allowed."
	case errors.Is(err, ErrLocalLogoutOnly):
		return "local_logout_only", "You are signed out of this application. Your session at the identity provider could not be ended from here: sign out there too, or close the browser."
	case errors.Is(err, ErrSession):
		return "session_error", "The session could not be stored."
	case errors.Is(err, ErrUMAChallenge):
		return "uma_authorization_required", "An RPT with the required scopes is needed for this resource."
	case errors.Is(err, ErrUMAUnreachable):
		return "uma_unreachable", "The authorization server is unreachable. Please try again shortly."
	case errors.Is(err, ErrUMAConfig):
		return "uma_configuration_error", "This resource is not correctly protected; access is denied."
	case errors.Is(err, ErrUMADenied):
		return "uma_denied", "Access to this resource was denied."
	case errors.Is(err, ErrUMAClaims):
		return "uma_claims_error", "The claims-gathering response is invalid. Please start again."
	case errors.Is(err, ErrUMASharedRPT):
		return "uma_shared_rpt", "The authorization server returned a token that belongs to another user; access is denied."
	}
	return "error", "The request failed."
}

// defaultErrorHandler renders a small HTML page, or JSON for API requests
// (as decided by Config.APIRequest).
func (a *Auth) defaultErrorHandler(w http.ResponseWriter, r *http.Request, status int, err error) {
	code, msg := reason(err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.isAPI(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{code, msg})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	title := http.StatusText(status)
	if errors.Is(err, ErrLocalLogoutOnly) {
		title = "Signed out"
	}
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title></head><body>\n<h1>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n<p>")
	b.WriteString(html.EscapeString(msg))
	b.WriteString("</p>\n<p><a href=\"")
	b.WriteString(html.EscapeString(a.cfg.DefaultReturnTo))
	b.WriteString("\">Back to the start page</a></p>\n</body></html>\n")
	_, _ = w.Write([]byte(b.String()))
}
