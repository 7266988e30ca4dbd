package oxd

import (
	"context"
	"net/http"
)

// UMARule declares the UMA protection of one route template; see
// [Auth.UMAProtectWith].
type UMARule struct {
	// Template is the route template exactly as the router reports it:
	// the path of http.ServeMux's Request.Pattern (without the method),
	// chi's RoutePattern, gin's FullPath, echo's Path. It is registered at
	// oxd as the resource's path: every concrete path of the template is
	// one resource.
	Template string

	// Conditions give the scopes per HTTP method. Each method may appear
	// once per template (across all declarations of the template). A GET
	// condition also covers HEAD unless HEAD is declared.
	Conditions []UMAMethodRule

	// Browser turns browser RP mode on for this route (see
	// UMAConfig.Browser).
	Browser bool
}

// UMAMethodRule protects some HTTP methods of a template: one condition
// of a [UMARule]. It is the application-facing form of
// [oxdclient.UMACondition] (which names the methods HTTPMethods and is
// sent to oxd as is); RegisterUMA validates it and converts it. Formerly
// named UMACondition.
//
// oxd grants access when the RPT has a permission for the resource with
// any ONE of Scopes (an OR). For an AND, use a ScopeExpression: the AS
// evaluates it when it issues the RPT, and oxd then checks any one of its
// Data scopes.
type UMAMethodRule struct {
	// Methods are the HTTP methods (upper case, e.g. "GET", "POST").
	// Required.
	Methods []string
	// Scopes grant access (any one of them). Required unless
	// ScopeExpression is set.
	Scopes []string
	// TicketScopes are the scopes put into the permission ticket of a
	// challenge. Default: Scopes (or the expression's Data).
	TicketScopes []string
	// ScopeExpression replaces Scopes with a JsonLogic rule over Data.
	ScopeExpression *UMAExpression
}

// UMAExpression is an oxd scope expression: a JsonLogic rule whose vars
// index Data, the scopes, each listed once. A var is {"var":n},
// {"var":[n]} or {"var":[n, default]} with 0 <= n < len(Data) (a number
// or a string of digits) and a literal default; a var that names no
// single scope ({"var":""}, {"var":"x"}, a computed one) is refused.
// It differs from
// [oxdclient.UMAScopeExpression] in holding the rule as JSON text, which
// RegisterUMA validates and compacts before sending it. Formerly named
// UMAScopeExpression.
type UMAExpression struct {
	// Rule is the JsonLogic rule as JSON text, e.g.
	// {"and":[{"var":0},{"var":1}]}.
	Rule string
	// Data are the scopes the rule's vars index; each at most once.
	Data []string
}

// UMADecision is the outcome of a UMA check; see [UMAResult].
type UMADecision struct {
	// Granted reports that the RPT grants the resource.
	Granted bool
	// Method and Template name the resource that was checked.
	Method, Template string
	// Cached reports a grant served from the grant cache (no oxd call).
	Cached bool
	// SessionRPT reports that the RPT came from the user's session
	// (browser mode), not from an Authorization header.
	SessionRPT bool
	// NewRPT reports that browser mode obtained an RPT for the user on
	// the way to this grant (in this request, or through the claims
	// gathering this request completes).
	NewRPT bool
	// Challenge is the WWW-Authenticate value of a 401 answer; with
	// NewRPT, the challenge that the user's request met before the RPT
	// was obtained.
	Challenge string
	// Ticket is the permission ticket of Challenge. It is single use.
	Ticket string
	// Status is the HTTP status of the answer when not granted: 401
	// (challenge), 403 (AS unreachable, or denied in browser mode), 405
	// (method not declared), 500 (configuration error).
	Status int
	// Err is the reason when not granted; it wraps one of the ErrUMA…
	// values.
	Err error
}

type umaDecisionKey struct{}

// UMAResult returns the decision that let the request through
// [Auth.UMAProtect]: whether the grant was cached, whether the RPT came
// from the session, and in browser mode the challenge met before an RPT
// was obtained. ok is false outside UMAProtect.
func UMAResult(r *http.Request) (d UMADecision, ok bool) {
	p, ok := r.Context().Value(umaDecisionKey{}).(*UMADecision)
	if !ok || p == nil {
		return UMADecision{}, false
	}
	return *p, true
}

func withDecision(r *http.Request, d *UMADecision) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), umaDecisionKey{}, d))
}
