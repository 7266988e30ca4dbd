package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// UMA 2.0 resource-server protection (UMAProtect) and the optional
// requesting-party flow for browsers. The pieces live in the uma_*.go
// files: declarations and registration (uma_register.go), the grant cache
// (uma_cache.go), the challenge and the Bearer parser (uma_challenge.go),
// the browser flow (uma_browser.go) and the per-Auth state (uma_state.go).

// Defaults of [UMAConfig].
const (
	DefaultUMAMaxGrantTTL = time.Minute
	DefaultUMAMaxGrants   = 10000
)

// UMAWarning is the Warning header value of a 403 answer when no
// permission ticket could be obtained (UMA 2.0 Grant §3.2.2).
const UMAWarning = `199 - "UMA Authorization Server Unreachable"`

// UMAClaimTokenFormatIDToken is the claim token format of an OpenID Connect
// ID token (UMA 2.0 Grant §3.3.1), used with [UMAConfig.PushIDToken].
const UMAClaimTokenFormatIDToken = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"

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

// UMAConfig configures UMA protection; see [Auth.ConfigureUMA]. The zero
// value is usable: the issuer is read from oxd, the realm is Config.Realm,
// grants are cached for at most a minute, browser mode is off.
type UMAConfig struct {
	// Issuer is the AS issuer URI sent as as_uri in challenges (UMA Grant
	// §3.2.1): the issuer of the OP's /.well-known/uma2-configuration.
	// Default: the site's op_host as stored by oxd (get_rp), read once by
	// RegisterUMA or by the first challenge. Must be an absolute http(s)
	// URL without query or fragment.
	Issuer string

	// Realm is the realm of the UMA challenge. Default: Config.Realm.
	// Printable ASCII.
	Realm string

	// MaxGrantTTL bounds how long a grant is cached. A cached grant is
	// used until min(the RPT's expiry from introspection − 5s,
	// grant time + MaxGrantTTL), so a revoked RPT keeps working at most
	// that long. Default [DefaultUMAMaxGrantTTL]; negative disables the
	// cache (every request asks oxd).
	MaxGrantTTL time.Duration

	// MaxGrants bounds the number of cached grants (and of RPT expiries
	// remembered). Default [DefaultUMAMaxGrants].
	MaxGrants int

	// Browser turns browser RP mode on for every UMA route (it can be
	// turned on per route with UMARule.Browser). In browser mode, a
	// logged-in user's browser navigation without an Authorization header
	// is not answered with a challenge: the middleware obtains an RPT for
	// the user (uma_rp_get_rpt), sends the browser through claims
	// gathering when the AS needs more information, keeps the RPT in the
	// user's session and presents it on the user's later requests.
	Browser bool

	// ClaimsRedirectURL is the absolute URL where ClaimsCallbackHandler is
	// mounted; it must be registered at the OP as a claims_redirect_uri of
	// the site. Required for claims gathering in browser mode. oxd-server
	// 3.1.4 does not URL-encode it, so it must need no encoding: no query,
	// no fragment, and only letters, digits and - . _ ~ : / characters.
	ClaimsRedirectURL string

	// FingerprintFile, when set, is a file where RegisterUMA records a
	// fingerprint of the registered resources. It is only read when oxd
	// cannot tell which resources it protects (no get_rp, as with the
	// oxd-https-extension): an unchanged fingerprint then avoids an
	// overwrite, which would invalidate the RPTs issued so far.
	FingerprintFile string

	// PushIDToken, in browser mode, sends the user's ID token (while it
	// is valid) to the AS as a claim token with the RPT request, so that
	// policies needing the user's claims can decide without claims
	// gathering. The AS must be the OP that issued it.
	PushIDToken bool
}

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
	Conditions []UMACondition

	// Browser turns browser RP mode on for this route (see
	// UMAConfig.Browser).
	Browser bool
}

// UMACondition protects some HTTP methods of a template.
//
// oxd grants access when the RPT has a permission for the resource with
// any ONE of Scopes (an OR). For an AND, use a ScopeExpression: the AS
// evaluates it when it issues the RPT, and oxd then checks any one of its
// Data scopes.
type UMACondition struct {
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
	ScopeExpression *UMAScopeExpression
}

// UMAScopeExpression is an oxd scope expression: a JsonLogic rule (JSON
// text, e.g. {"and":[{"var":0},{"var":1}]}) whose vars index Data, the
// scopes, each listed once. A var is {"var":n}, {"var":[n]} or
// {"var":[n, default]} with 0 <= n < len(Data) (a number or a string of
// digits) and a literal default; a var that names no single scope
// ({"var":""}, {"var":"x"}, a computed one) is refused.
type UMAScopeExpression struct {
	Rule string
	Data []string
}

// UMADecision is the outcome of a UMA check; see [UMAResult] and
// [Auth.CheckUMA].
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

type routeTemplateKey struct{}

// WithRouteTemplate returns ctx carrying the route template of the
// request, for routers that do not set http.Request.Pattern. Router
// adapters call it before UMAProtect runs, for example in gin:
//
//	ctx := oxd.WithRouteTemplate(c.Request.Context(), c.FullPath())
//	c.Request = c.Request.WithContext(ctx)
//
// An empty template removes nothing: UMAProtect then falls back to
// Request.Pattern, and with neither it denies the request.
func WithRouteTemplate(ctx context.Context, template string) context.Context {
	return context.WithValue(ctx, routeTemplateKey{}, template)
}

// RouteTemplate returns the route template UMAProtect checks a request
// against: the value of [WithRouteTemplate], else the path part of
// Request.Pattern (http.ServeMux since Go 1.22, chi v5.1+), without a
// method. It is "" when the router provides neither.
func RouteTemplate(r *http.Request) string {
	if t, _ := r.Context().Value(routeTemplateKey{}).(string); t != "" {
		return t
	}
	if r.Pattern == "" {
		return ""
	}
	_, t := splitPattern(r.Pattern)
	return t
}

// splitPattern splits a ServeMux-style pattern "[METHOD ]template".
func splitPattern(p string) (method, template string) {
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		return p[:i], strings.TrimLeft(p[i:], " \t")
	}
	return "", p
}

// ConfigureUMA sets the UMA configuration. Call it before serving
// requests (before or after declaring routes); it fails on an invalid
// configuration and then changes nothing. It may be called again (for
// example after a settings change); concurrent requests see either the
// old or the new configuration.
func (a *Auth) ConfigureUMA(cfg UMAConfig) error {
	s, err := a.umaSettings(cfg)
	if err != nil {
		return err
	}
	g := a.uma()
	g.settings.Store(s)
	g.cache.setLimits(s.maxTTL, s.maxGrants)
	if s.issuer != "" {
		g.setIssuer(s.issuer)
	}
	return nil
}

// umaSettings is the validated form of UMAConfig.
type umaSettings struct {
	issuer          string
	realm           string
	maxTTL          time.Duration // <0: no cache
	maxGrants       int
	browser         bool
	claimsRedirect  string
	pushIDToken     bool
	fingerprintFile string
}

func (a *Auth) umaSettings(cfg UMAConfig) (*umaSettings, error) {
	s := &umaSettings{
		realm:           cfg.Realm,
		maxTTL:          cfg.MaxGrantTTL,
		maxGrants:       cfg.MaxGrants,
		browser:         cfg.Browser,
		claimsRedirect:  cfg.ClaimsRedirectURL,
		pushIDToken:     cfg.PushIDToken,
		fingerprintFile: cfg.FingerprintFile,
	}
	if cfg.Issuer != "" {
		if err := checkIssuer(cfg.Issuer); err != nil {
			return nil, fmt.Errorf("oxd: UMAConfig.Issuer: %w", err)
		}
		s.issuer = cfg.Issuer
	}
	if s.realm == "" {
		s.realm = a.cfg.Realm
	}
	if s.realm == "" {
		s.realm = "oxd"
	}
	if _, err := quoteString(s.realm); err != nil || strings.ContainsAny(s.realm, `"\`) {
		return nil, errors.New("oxd: UMAConfig.Realm must be printable ASCII without quotes or backslashes")
	}
	if s.maxTTL == 0 {
		s.maxTTL = DefaultUMAMaxGrantTTL
	}
	if s.maxGrants < 0 {
		return nil, errors.New("oxd: UMAConfig.MaxGrants must not be negative")
	}
	if s.maxGrants == 0 {
		s.maxGrants = DefaultUMAMaxGrants
	}
	if s.claimsRedirect != "" {
		if err := checkClaimsRedirectURL(s.claimsRedirect); err != nil {
			return nil, fmt.Errorf("oxd: UMAConfig.ClaimsRedirectURL: %w", err)
		}
	}
	return s, nil
}

// checkIssuer accepts an absolute http(s) URL without query, fragment or
// userinfo, made of characters a quoted-string carries unescaped.
func checkIssuer(s string) error {
	u, err := absoluteHTTPURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("must not have a query")
	}
	if strings.ContainsAny(s, "\"\\") {
		return errors.New("must not contain quotes or backslashes")
	}
	if _, err := quoteString(s); err != nil {
		return err
	}
	return nil
}

// checkClaimsRedirectURL enforces a claims redirect URI that oxd-server
// 3.1.4 can concatenate into the claims-gathering URL without encoding
// (anchors-uma §3: "claims_redirect_uri is not URL-encoded").
func checkClaimsRedirectURL(s string) error {
	u, err := absoluteHTTPURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("must not have a query (oxd does not URL-encode it)")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == ':', c == '/':
		default:
			return fmt.Errorf("character %q would need URL-encoding, which oxd does not do", c)
		}
	}
	return nil
}

// UMAProtect protects the route with UMA 2.0. pattern names the route as
// http.ServeMux does, "[METHOD ]template", for example "GET
// /photos/{id}"; the template is what the router reports for the request
// (see [UMARule.Template]). Access is granted when the request's RPT has a
// permission for the template's resource with any one of scopes. Without a
// method, GET, HEAD, POST, PUT, PATCH and DELETE are protected.
//
//	mux.Handle("GET /photos/{id}", auth.UMAProtect("GET /photos/{id}", "photos:view")(photos))
//
// The declaration is recorded in auth at once; [Auth.RegisterUMA]
// registers every declared template with oxd (uma_rs_protect) at startup.
// An invalid declaration (no scopes, a method declared twice for one
// template, …) makes RegisterUMA fail, and the route answer 500.
//
// For every request the middleware:
//
//   - answers 405 when the method is not declared for this route;
//   - takes the route template from [WithRouteTemplate] or
//     Request.Pattern and answers 500 (logged as a configuration error)
//     when there is none or it differs from the declared one, so a
//     declaration can never guard another route than its own;
//   - takes the RPT from the Authorization header with the Bearer scheme
//     (case-insensitive) only, never from a query parameter, a form or a
//     cookie;
//   - asks oxd (uma_rs_check_access) with the template and the method;
//     a grant lets the request through ([UMAResult] tells how);
//   - answers a denial with 401 and exactly one header
//     WWW-Authenticate: UMA realm="…", as_uri="<issuer>", ticket="…"
//     (UMA 2.0 Grant §3.2.1), built from oxd's ticket, with an empty body;
//   - answers 403 with Warning: 199 - "UMA Authorization Server
//     Unreachable" and an empty body when no ticket can be obtained (AS,
//     or oxd, unreachable or failing; §3.2.2);
//   - answers 500 (logged) when oxd does not protect the route
//     (RegisterUMA not called or failed).
//
// Grants (never denials) are cached; see [UMAConfig.MaxGrantTTL].
// Concurrent requests with one RPT for one resource share one oxd call.
// RPTs are never logged.
//
// oxd grants on any one of the scopes (an OR); see [UMACondition] for an
// AND. UMAProtect does not need RequireLogin (the RPT is the credential),
// except in browser mode ([UMAConfig.Browser]).
func (a *Auth) UMAProtect(pattern string, scopes ...string) func(http.Handler) http.Handler {
	method, template := splitPattern(pattern)
	var methods []string
	if method != "" {
		methods = []string{method}
	}
	return a.UMAProtectWith(UMARule{
		Template:   template,
		Conditions: []UMACondition{{Methods: methods, Scopes: scopes}},
	})
}

// defaultUMAMethods are protected by a UMAProtect pattern without method.
var defaultUMAMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// UMAProtectWith is UMAProtect with per-method scopes, ticket scopes and
// scope expressions, and browser mode per route:
//
//	photo := auth.UMAProtectWith(oxd.UMARule{
//		Template: "/photos/{id}",
//		Conditions: []oxd.UMACondition{
//			{Methods: []string{"GET"}, Scopes: []string{"photos:view"}},
//			{Methods: []string{"PUT", "DELETE"}, Scopes: []string{"photos:edit"}},
//		},
//	})
//	mux.Handle("/photos/{id}", photo(photos))
//
// A condition with no Methods (only allowed when it is the only one)
// covers GET, HEAD, POST, PUT, PATCH and DELETE. Several declarations may
// name one template (one per method pattern of a ServeMux); they are
// registered as one resource path with all their conditions.
func (a *Auth) UMAProtectWith(rule UMARule) func(http.Handler) http.Handler {
	g := a.uma()
	d := g.declare(rule)
	return func(next http.Handler) http.Handler {
		h := &umaHandler{a: a, g: g, d: d, next: next, cached: map[string]*UMADecision{}}
		h.loaded = a.sm.LoadAndSave(http.HandlerFunc(h.serveLoaded))
		for _, c := range d.conds {
			for _, m := range append(slices.Clone(c.methods), http.MethodHead) {
				if d.condFor(m) != nil {
					h.cached[m] = &UMADecision{Granted: true, Method: m, Template: d.template, Cached: true}
				}
			}
		}
		return h
	}
}

// umaHandler is the middleware of one declaration.
type umaHandler struct {
	a      *Auth
	g      *umaGuard
	d      *umaDecl
	next   http.Handler
	loaded http.Handler // h.serveLoaded inside LoadAndSave
	// cached are the (read-only) decisions of a cached grant by method,
	// shared by requests so that the hot path allocates no decision.
	cached map[string]*UMADecision
}

func (h *umaHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, g, d := h.a, h.g, h.d
	if d.err != nil {
		g.configError(a, w, r, &UMADecision{Template: d.template, Method: r.Method, Status: http.StatusInternalServerError,
			Err: fmt.Errorf("%w: route %q: %w", ErrUMAConfig, d.template, d.err)})
		return
	}
	cond := d.condFor(r.Method)
	if cond == nil {
		w.Header().Set("Allow", d.allow)
		a.errh(w, r, http.StatusMethodNotAllowed, fmt.Errorf("uma: %w", ErrMethodNotAllowed))
		return
	}
	tmpl := RouteTemplate(r)
	switch {
	case tmpl == "":
		g.configError(a, w, r, &UMADecision{Template: d.template, Method: r.Method, Status: http.StatusInternalServerError,
			Err: fmt.Errorf("%w: no route template for the request (use Request.Pattern, a router adapter, or oxd.WithRouteTemplate); declared %q", ErrUMAConfig, d.template)})
		return
	case tmpl != d.template:
		g.configError(a, w, r, &UMADecision{Template: d.template, Method: r.Method, Status: http.StatusInternalServerError,
			Err: fmt.Errorf("%w: the request's route template %q is not the declared %q", ErrUMAConfig, sanitizeText(tmpl, 200), d.template)})
		return
	}
	rpt, hasAuth := bearerRPT(r)
	if !hasAuth && g.browserMode(cond) {
		if !a.sessionLoaded(r.Context()) {
			h.loaded.ServeHTTP(w, r)
			return
		}
		h.serveLoaded(w, r)
		return
	}
	if rpt != "" {
		if dec := h.cached[r.Method]; dec != nil && g.cache.lookup(r.Context(), grantKey{rpt: hashRPT(rpt), method: r.Method, template: d.template}, a.now) {
			h.next.ServeHTTP(w, withDecision(r, dec))
			return
		}
	}
	dec := g.decide(r.Context(), a, r.Method, d.template, rpt)
	if !dec.Granted {
		g.writeDenied(a, w, r, dec)
		return
	}
	h.next.ServeHTTP(w, withDecision(r, dec))
}

// serveLoaded is the browser-mode path; the session is loaded.
func (h *umaHandler) serveLoaded(w http.ResponseWriter, r *http.Request) {
	h.g.serveBrowser(h.a, w, r, h.d.template, h.next)
}

func withDecision(r *http.Request, d *UMADecision) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), umaDecisionKey{}, d))
}

// CheckUMA makes the decision of UMAProtect for method on the route
// template with rpt (empty: no RPT), without writing anything: for pages
// that show the steps of UMA (the challenge, then the grant) and for
// custom middleware. The grant cache is used and filled as by UMAProtect.
// A denial with a ticket has Status 401 and Challenge set; use the ticket
// once (uma_rp_get_rpt).
func (a *Auth) CheckUMA(ctx context.Context, method, template string, rpt oxdclient.Secret) UMADecision {
	return *a.uma().decide(ctx, a, method, template, rpt.Reveal())
}

// writeDenied answers a refused request.
func (g *umaGuard) writeDenied(a *Auth, w http.ResponseWriter, r *http.Request, d *UMADecision) {
	h := w.Header()
	switch d.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", d.Challenge)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "oxd: UMA challenge",
			slog.String("method", d.Method), slog.String("template", d.Template))
	case http.StatusInternalServerError:
		g.configError(a, w, r, d)
	case http.StatusForbidden:
		if errors.Is(d.Err, ErrUMAUnreachable) {
			h.Set("Warning", UMAWarning)
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusForbidden)
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "oxd: UMA authorization server unreachable",
				slog.String("method", d.Method), slog.String("template", d.Template), slog.String("error", errString(d.Err)))
			return
		}
		a.fail(w, r, d.Status, d.Err)
	default:
		a.fail(w, r, d.Status, d.Err)
	}
}

// configError logs a configuration error loudly and answers 500 through
// the error handler.
func (g *umaGuard) configError(a *Auth, w http.ResponseWriter, r *http.Request, d *UMADecision) {
	a.log.LogAttrs(r.Context(), slog.LevelError, "oxd: UMA configuration error; request denied",
		slog.String("method", d.Method), slog.String("template", d.Template), slog.String("error", errString(d.Err)))
	setNoStore(w)
	a.errh(w, r, http.StatusInternalServerError, d.Err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// decide checks rpt for method on template: the grant cache first, then
// uma_rs_check_access (one call shared by concurrent requests with the
// same RPT and resource).
func (g *umaGuard) decide(ctx context.Context, a *Auth, method, template, rpt string) *UMADecision {
	if rpt == "" {
		return g.finish(ctx, a, method, template, g.checkAccess(ctx, a, method, template, ""))
	}
	key := grantKey{rpt: hashRPT(rpt), method: method, template: template}
	if g.cache.lookup(ctx, key, a.now) {
		return &UMADecision{Granted: true, Method: method, Template: template, Cached: true}
	}
	leader := false
	v, _, _ := g.flight.Do(key.flightKey(), func() (any, error) {
		leader = true
		// The call outlives a caller that goes away: others may share it.
		res := g.checkAccess(context.WithoutCancel(ctx), a, method, template, rpt)
		if res.granted {
			g.grantCached(a, key, rpt)
		}
		return res, nil
	})
	res := v.(checkResult)
	if !leader && !res.granted && res.err == nil {
		// A denial carries a single-use ticket: every request needs its
		// own.
		res = g.checkAccess(ctx, a, method, template, rpt)
	}
	return g.finish(ctx, a, method, template, res)
}

// checkResult is the outcome of one uma_rs_check_access call.
type checkResult struct {
	granted bool
	ticket  string
	err     error // wraps ErrUMAConfig or ErrUMAUnreachable
}

// checkAccess calls uma_rs_check_access once.
func (g *umaGuard) checkAccess(ctx context.Context, a *Auth, method, template, rpt string) checkResult {
	octx, cancel := a.oxdCtx(ctx)
	defer cancel()
	resp, err := a.client.UMARSCheckAccess(octx, oxdclient.UMARSCheckAccessParams{
		OxdID:      a.oxdID,
		RPT:        oxdclient.Secret(rpt),
		Path:       template,
		HTTPMethod: method,
	})
	if err != nil {
		var oe *oxdclient.Error
		if errors.As(err, &oe) {
			switch oe.Code {
			case oxdclient.CodeInvalidRequest:
				return checkResult{err: fmt.Errorf("%w: oxd does not protect %s %q (call RegisterUMA at startup): %w", ErrUMAConfig, method, template, err)}
			case oxdclient.CodeInvalidOxdID, oxdclient.CodeInvalidPathParameter, oxdclient.CodeInvalidHTTPMethod, oxdclient.CodeBadRequest:
				return checkResult{err: fmt.Errorf("%w: uma_rs_check_access: %w", ErrUMAConfig, err)}
			}
		}
		return checkResult{err: fmt.Errorf("%w: uma_rs_check_access: %w", ErrUMAUnreachable, err)}
	}
	switch resp.Access {
	case oxdclient.AccessGranted:
		return checkResult{granted: true}
	case oxdclient.AccessDenied:
		if resp.Ticket == "" {
			return checkResult{err: fmt.Errorf("%w: oxd denied access without a ticket", ErrUMAUnreachable)}
		}
		return checkResult{ticket: resp.Ticket}
	default:
		return checkResult{err: fmt.Errorf("%w: uma_rs_check_access answered access %q", ErrUMAUnreachable, sanitizeText(resp.Access, 32))}
	}
}

// finish turns a check result into a decision, building the challenge.
func (g *umaGuard) finish(ctx context.Context, a *Auth, method, template string, res checkResult) *UMADecision {
	d := &UMADecision{Method: method, Template: template}
	switch {
	case res.granted:
		d.Granted = true
	case res.err != nil:
		d.Err = res.err
		d.Status = http.StatusForbidden
		if errors.Is(res.err, ErrUMAConfig) {
			d.Status = http.StatusInternalServerError
		}
	default:
		s := g.settingsOrDefault(a)
		issuer, err := g.issuerFor(ctx, a)
		if err != nil {
			// Without as_uri the client cannot use the ticket.
			d.Err = fmt.Errorf("%w: no AS issuer for the challenge: %w", ErrUMAUnreachable, err)
			d.Status = http.StatusForbidden
			return d
		}
		ch, err := umaChallenge(s.realm, issuer, res.ticket)
		if err != nil {
			d.Err = fmt.Errorf("%w: %w", ErrUMAUnreachable, err)
			d.Status = http.StatusForbidden
			return d
		}
		d.Challenge, d.Ticket = ch, res.ticket
		d.Status = http.StatusUnauthorized
		d.Err = ErrUMAChallenge
	}
	return d
}

// issuerFor returns the configured or oxd-stored issuer, reading it from
// oxd (get_rp) once.
func (g *umaGuard) issuerFor(ctx context.Context, a *Auth) (string, error) {
	if p := g.issuer.Load(); p != nil {
		return *p, nil
	}
	v, err, _ := g.flight.Do("\x00issuer", func() (any, error) {
		if p := g.issuer.Load(); p != nil {
			return *p, nil
		}
		octx, cancel := a.oxdCtx(context.WithoutCancel(ctx))
		defer cancel()
		rp, err := a.client.GetRP(octx, oxdclient.GetRPParams{OxdID: a.oxdID})
		if err != nil {
			return "", fmt.Errorf("get_rp: %w (set UMAConfig.Issuer)", err)
		}
		var node struct {
			OPHost string `json:"op_host"`
		}
		if err := json.Unmarshal(rp.Node, &node); err != nil || node.OPHost == "" {
			return "", errors.New("get_rp: no op_host (set UMAConfig.Issuer)")
		}
		iss := strings.TrimRight(node.OPHost, "/")
		if !strings.Contains(iss, "://") {
			iss = "https://" + iss
		}
		if err := checkIssuer(iss); err != nil {
			return "", fmt.Errorf("get_rp: op_host is not a usable issuer: %w (set UMAConfig.Issuer)", err)
		}
		g.setIssuer(iss)
		return iss, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (g *umaGuard) setIssuer(iss string) { g.issuer.Store(&iss) }
