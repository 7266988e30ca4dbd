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
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"github.com/oxdgo/oxd/oxdclient"
)

// UMA 2.0 resource-server protection (UMAProtect) and the optional
// requesting-party flow for browsers. The pieces live in the uma_*.go
// files: the configuration (uma_config.go), the declarations
// (uma_rule.go, uma_declare.go) and their registration (uma_register.go),
// the route template (uma_template.go), the grant cache (uma_cache.go),
// the challenge and the Bearer parser (uma_challenge.go) and the browser
// flow (uma_browser.go).

// umaGuard is the UMA state of one Auth: declarations, settings, the
// resolved issuer, the grant cache and the flights. New creates it with
// everything it works with: the core it shares with Auth (oxd client and
// site, sessions, clock, logger, error handler), the login flow's hooks
// for browser mode, and the validated settings.
type umaGuard struct {
	*core
	login    umaLogin
	settings atomic.Pointer[umaSettings] // never nil after newUMAGuard
	issuer   atomic.Pointer[string]

	mu    sync.Mutex
	paths map[string]*umaPath // by template
	order []string            // templates in declaration order
	errs  []error             // invalid declarations

	cache      grantCache
	flight     singleflight.Group
	owners     rptOwners
	mismatches templateMismatches // requests refused for another route's template
}

// umaLogin is what browser mode needs from the login flow.
type umaLogin struct {
	// challenge sends a browser to log in (an API request gets 401).
	challenge func(w http.ResponseWriter, r *http.Request, err error)
	// returnTo applies the return-to rules to a saved request URI.
	returnTo func(r *http.Request, saved string) string
	// pendingTTL and pendingLimit bound the claims requests in progress
	// as Config bounds pending logins.
	pendingTTL   time.Duration
	pendingLimit int
}

func newUMAGuard(c *core, s *umaSettings, login umaLogin) *umaGuard {
	g := &umaGuard{core: c, login: login, paths: map[string]*umaPath{}}
	g.cache.init(s.maxTTL, s.maxGrants)
	g.owners.init(DefaultUMAMaxGrants)
	g.mismatches.init()
	g.apply(s)
	return g
}

// apply sets validated settings.
func (g *umaGuard) apply(s *umaSettings) {
	g.settings.Store(s)
	g.cache.setLimits(s.maxTTL, s.maxGrants)
	if s.issuer != "" {
		g.setIssuer(s.issuer)
	}
}

// browserMode reports whether browser RP mode applies to a condition.
func (g *umaGuard) browserMode(c *umaCond) bool {
	if c.browser {
		return true
	}
	return g.settings.Load().browser
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
// oxd grants on any one of the scopes (an OR); see [UMAMethodRule] for an
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
		Conditions: []UMAMethodRule{{Methods: methods, Scopes: scopes}},
	})
}

// defaultUMAMethods are protected by a UMAProtect pattern without method.
var defaultUMAMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// UMAProtectWith is UMAProtect with per-method scopes, ticket scopes and
// scope expressions, and browser mode per route:
//
//	photo := auth.UMAProtectWith(oxd.UMARule{
//		Template: "/photos/{id}",
//		Conditions: []oxd.UMAMethodRule{
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
	return a.uma.protect(rule)
}

// protect records the declaration of rule and returns its middleware.
func (g *umaGuard) protect(rule UMARule) func(http.Handler) http.Handler {
	d := g.declare(rule)
	return func(next http.Handler) http.Handler {
		h := &umaHandler{g: g, d: d, next: next, cached: map[string]*UMADecision{}, hit: umaHitOptions(d.template)}
		h.loaded = g.sm.LoadAndSave(http.HandlerFunc(h.serveLoaded))
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
	g      *umaGuard
	d      *umaDecl
	next   http.Handler
	loaded http.Handler // h.serveLoaded inside LoadAndSave
	// cached are the (read-only) decisions of a cached grant by method,
	// shared by requests so that the hot path allocates no decision.
	cached map[string]*UMADecision
	// hit are the metric options of a cached grant (telemetry.go).
	hit []metric.AddOption
}

// ServeHTTP checks the request against the declaration (see UMAProtect).
func (h *umaHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g, d := h.g, h.d
	if d.err != nil {
		g.tel.umaConfigError(r.Context(), r.Method, d.template)
		g.configError(w, r, &UMADecision{Template: d.template, Method: r.Method, Status: http.StatusInternalServerError,
			Err: fmt.Errorf("%w: route %q: %w", ErrUMAConfig, d.template, d.err)})
		return
	}
	cond := d.condFor(r.Method)
	if cond == nil {
		w.Header().Set("Allow", d.allow)
		g.errh(w, r, http.StatusMethodNotAllowed, fmt.Errorf("uma: %w", ErrMethodNotAllowed))
		return
	}
	if !g.templateMatches(w, r, d.template) {
		g.tel.umaConfigError(r.Context(), r.Method, d.template)
		return
	}
	rpt, hasAuth := bearerRPT(r)
	if !hasAuth && g.browserMode(cond) {
		if !g.sessionLoaded(r.Context()) {
			h.loaded.ServeHTTP(w, r)
			return
		}
		h.serveLoaded(w, r)
		return
	}
	if rpt != "" {
		if dec := h.cached[r.Method]; dec != nil && g.cache.lookup(r.Context(), grantKey{rpt: hashRPT(rpt), method: r.Method, template: d.template}, g.now) {
			g.tel.umaCachedGrant(r.Context(), h.hit, r.Method, d.template)
			h.next.ServeHTTP(w, withDecision(r, dec))
			return
		}
	}
	dec := g.decide(r.Context(), r.Method, d.template, rpt)
	if !dec.Granted {
		g.writeDenied(w, r, dec)
		return
	}
	h.next.ServeHTTP(w, withDecision(r, dec))
}

// serveLoaded is the browser-mode path; the session is loaded.
func (h *umaHandler) serveLoaded(w http.ResponseWriter, r *http.Request) {
	h.g.serveBrowser(w, r, h.d.template, h.next)
}

// writeDenied answers a refused request.
func (g *umaGuard) writeDenied(w http.ResponseWriter, r *http.Request, d *UMADecision) {
	h := w.Header()
	switch d.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", d.Challenge)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "oxd: UMA challenge",
			slog.String("method", d.Method), slog.String("template", d.Template))
	case http.StatusInternalServerError:
		g.configError(w, r, d)
	case http.StatusForbidden:
		if errors.Is(d.Err, ErrUMAUnreachable) {
			h.Set("Warning", UMAWarning)
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusForbidden)
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "oxd: UMA authorization server unreachable",
				slog.String("method", d.Method), slog.String("template", d.Template), slog.String("error", errString(d.Err)))
			return
		}
		g.fail(w, r, d.Status, d.Err)
	default:
		g.fail(w, r, d.Status, d.Err)
	}
}

// configError logs a configuration error loudly and answers 500 through
// the error handler.
func (g *umaGuard) configError(w http.ResponseWriter, r *http.Request, d *UMADecision) {
	g.log.LogAttrs(r.Context(), slog.LevelError, "oxd: UMA configuration error; request denied",
		slog.String("method", d.Method), slog.String("template", d.Template), slog.String("error", errString(d.Err)))
	setNoStore(w)
	g.errh(w, r, http.StatusInternalServerError, d.Err)
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
func (g *umaGuard) decide(ctx context.Context, method, template, rpt string) (dec *UMADecision) {
	ctx, sp := g.tel.startUMA(ctx, method, template)
	defer func() { g.tel.umaDecided(ctx, sp, template, dec) }()
	if rpt == "" {
		return g.finish(ctx, method, template, g.checkAccess(ctx, method, template, ""))
	}
	key := grantKey{rpt: hashRPT(rpt), method: method, template: template}
	if g.cache.lookup(ctx, key, g.now) {
		return &UMADecision{Granted: true, Method: method, Template: template, Cached: true}
	}
	leader := false
	v, _, _ := g.flight.Do(key.flightKey(), func() (any, error) {
		leader = true
		// The call outlives a caller that goes away: others may share it.
		res := g.checkAccess(context.WithoutCancel(ctx), method, template, rpt)
		if res.granted {
			g.grantCached(key, rpt)
		}
		return res, nil
	})
	res := v.(checkResult)
	if !leader && !res.granted && res.err == nil {
		// A denial carries a single-use ticket: every request needs its
		// own.
		res = g.checkAccess(ctx, method, template, rpt)
	}
	return g.finish(ctx, method, template, res)
}

// checkResult is the outcome of one uma_rs_check_access call.
type checkResult struct {
	granted bool
	ticket  string
	err     error // wraps ErrUMAConfig or ErrUMAUnreachable
}

// checkAccess calls uma_rs_check_access once.
func (g *umaGuard) checkAccess(ctx context.Context, method, template, rpt string) checkResult {
	octx, cancel := g.oxdCtx(ctx)
	defer cancel()
	resp, err := g.client.UMARSCheckAccess(octx, oxdclient.UMARSCheckAccessParams{
		OxdID:      g.oxdID,
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
func (g *umaGuard) finish(ctx context.Context, method, template string, res checkResult) *UMADecision {
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
		s := g.settings.Load()
		issuer, err := g.issuerFor(ctx)
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
func (g *umaGuard) issuerFor(ctx context.Context) (string, error) {
	if p := g.issuer.Load(); p != nil {
		return *p, nil
	}
	v, err, _ := g.flight.Do("\x00issuer", func() (any, error) {
		if p := g.issuer.Load(); p != nil {
			return *p, nil
		}
		octx, cancel := g.oxdCtx(context.WithoutCancel(ctx))
		defer cancel()
		rp, err := g.client.GetRP(octx, oxdclient.GetRPParams{OxdID: g.oxdID})
		if err != nil {
			return "", fmt.Errorf("get_rp: %w (set Config.UMA.Issuer)", err)
		}
		var node struct {
			OPHost string `json:"op_host"`
		}
		if err := json.Unmarshal(rp.Node, &node); err != nil || node.OPHost == "" {
			return "", errors.New("get_rp: no op_host (set Config.UMA.Issuer)")
		}
		iss := strings.TrimRight(node.OPHost, "/")
		if !strings.Contains(iss, "://") {
			iss = "https://" + iss
		}
		if err := checkIssuer(iss); err != nil {
			return "", fmt.Errorf("get_rp: op_host is not a usable issuer: %w (set Config.UMA.Issuer)", err)
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
