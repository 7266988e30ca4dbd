package oxd

import (
	"context"
	"errors"
	"net/http"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/internal/telemetry"
)

// Telemetry of the middleware: see the package documentation,
// "Telemetry". Nothing here may carry a token, code, state, nonce, RPT,
// subject or raw path: span names are fixed, attributes are reason codes
// from reason(), route templates and HTTP methods of declared routes.

// Span names of the middleware.
const (
	spanLoginStart   = "oxd.login.start"
	spanCallback     = "oxd.callback"
	spanRefresh      = "oxd.refresh"
	spanLogout       = "oxd.logout"
	spanBackChannel  = "oxd.backchannel_logout"
	spanFrontChannel = "oxd.frontchannel_logout"
	spanUMADecision  = "oxd.uma.decision"
)

// Instrument names of the middleware's metrics.
const (
	metricLoginStarted   = "oxd.login.started"
	metricLoginCompleted = "oxd.login.completed"
	metricLoginFailures  = "oxd.login.failures"
	metricRefresh        = "oxd.refresh"
	metricLogout         = "oxd.logout"
	metricBackChannel    = "oxd.backchannel_logout"
	metricUMADecisions   = "oxd.uma.decisions"
	metricGrantCacheSize = "oxd.uma.grant_cache.size"
)

// Attribute keys used here beyond internal/telemetry's.
const (
	keyErrorType  = attribute.Key("error.type")          // OpenTelemetry semantic convention
	keyHTTPMethod = attribute.Key("http.request.method") // OpenTelemetry semantic convention
)

// rpTelemetry is the tracer and the instruments of one Auth.
type rpTelemetry struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	tracer trace.Tracer

	loginStarted, loginCompleted, loginFailures metric.Int64Counter
	refreshes, logouts, backChannel             metric.Int64Counter
	umaDecisions                                metric.Int64Counter
}

func newRPTelemetry(cfg *Config) *rpTelemetry {
	t := &rpTelemetry{tp: cfg.TracerProvider, mp: cfg.MeterProvider, tracer: telemetry.Tracer(cfg.TracerProvider)}
	m := telemetry.Meter(cfg.MeterProvider)
	// An instrument that cannot be created is a no-op instrument; the
	// error only says so.
	t.loginStarted, _ = m.Int64Counter(metricLoginStarted, metric.WithUnit("{login}"),
		metric.WithDescription("Logins started: browsers sent to the OP."))
	t.loginCompleted, _ = m.Int64Counter(metricLoginCompleted, metric.WithUnit("{login}"),
		metric.WithDescription("Logins completed: callbacks that signed a user in."))
	t.loginFailures, _ = m.Int64Counter(metricLoginFailures, metric.WithUnit("{login}"),
		metric.WithDescription("Failed login starts and callbacks, by reason (oxd.reason)."))
	t.refreshes, _ = m.Int64Counter(metricRefresh, metric.WithUnit("{refresh}"),
		metric.WithDescription("Access-token refreshes, by outcome (oxd.result)."))
	t.logouts, _ = m.Int64Counter(metricLogout, metric.WithUnit("{logout}"),
		metric.WithDescription("Logouts through LogoutHandler, by outcome (oxd.result)."))
	t.backChannel, _ = m.Int64Counter(metricBackChannel, metric.WithUnit("{request}"),
		metric.WithDescription("Back-channel logout requests, by outcome (oxd.result)."))
	t.umaDecisions, _ = m.Int64Counter(metricUMADecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("UMA decisions, by result, grant-cache use and route template."))
	return t
}

// observeGrantCache registers the grant-cache size gauge. The callback
// holds the guard weakly: an Auth that is no longer used can be collected.
func (t *rpTelemetry) observeGrantCache(g *umaGuard) {
	m := telemetry.Meter(t.mp)
	gauge, err := m.Int64ObservableGauge(metricGrantCacheSize, metric.WithUnit("{grant}"),
		metric.WithDescription("UMA grants in the cache."))
	if err != nil {
		return
	}
	wg := weak.Make(g)
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if g := wg.Value(); g != nil {
			o.ObserveInt64(gauge, int64(g.cache.len()))
		}
		return nil
	}, gauge)
}

// span is a middleware span; the zero value (tracing off) does nothing.
type span struct{ s trace.Span }

// start begins a span named name when tracing is on.
func (t *rpTelemetry) start(ctx context.Context, name string) (context.Context, span) {
	if !telemetry.TracingOn(t.tp) {
		return ctx, span{}
	}
	ctx, s := t.tracer.Start(ctx, name)
	return ctx, span{s}
}

// end records the outcome ("ok", or a bounded failure code, which also
// becomes error.type and the status description) and ends the span.
func (sp span) end(result string, failed bool) {
	if sp.s == nil {
		return
	}
	sp.s.SetAttributes(telemetry.KeyResult.String(result))
	if failed {
		sp.s.SetAttributes(keyErrorType.String(result))
		sp.s.SetStatus(codes.Error, result)
	}
	sp.s.End()
}

// count adds one to c, with the attribute key=value when key is set.
func (t *rpTelemetry) count(ctx context.Context, c metric.Int64Counter, key attribute.Key, value string) {
	if !telemetry.MetricsOn(t.mp) {
		return
	}
	if key == "" {
		c.Add(ctx, 1)
		return
	}
	c.Add(ctx, 1, metric.WithAttributes(key.String(value)))
}

// reasonCode is the bounded code of a middleware error (reason()'s).
func reasonCode(err error) string {
	code, _ := reason(err)
	return code
}

// opRecord collects the outcome of a request to a handler that t.wrap
// instruments: core.fail stores the failure, startLogin notes a restarted
// login and a login failure it counted itself.
type opRecord struct {
	err            error
	restarted      bool
	failureCounted bool
}

type opRecordKey struct{}

func opRecordFrom(ctx context.Context) *opRecord {
	rec, _ := ctx.Value(opRecordKey{}).(*opRecord)
	return rec
}

// noteFailure records err as the outcome of the instrumented request in
// ctx, if any (called by core.fail).
func noteFailure(ctx context.Context, err error) {
	if rec := opRecordFrom(ctx); rec != nil {
		rec.err = err
	}
}

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap instruments h with a span named name and, after it ran, done,
// which turns the request's record and answer status into the outcome
// (and counts it). With tracing and metrics off, h runs as is.
func (t *rpTelemetry) wrap(name string, done func(ctx context.Context, rec *opRecord, status int) (result string, failed bool), h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tracing, metrics := telemetry.TracingOn(t.tp), telemetry.MetricsOn(t.mp)
		if !tracing && !metrics {
			h.ServeHTTP(w, r)
			return
		}
		ctx, sp := t.start(r.Context(), name)
		rec := &opRecord{}
		sw := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(context.WithValue(ctx, opRecordKey{}, rec)))
		sp.end(done(ctx, rec, sw.status))
	})
}

// callbackDone is the outcome of a callback: a login completed, restarted,
// or failed (counted by reason unless startLogin counted it).
func (t *rpTelemetry) callbackDone(ctx context.Context, rec *opRecord, _ int) (string, bool) {
	switch {
	case rec.err != nil:
		code := reasonCode(rec.err)
		if !rec.failureCounted {
			t.count(ctx, t.loginFailures, telemetry.KeyReason, code)
		}
		return code, true
	case rec.restarted:
		return "restarted", false
	}
	t.count(ctx, t.loginCompleted, "", "")
	return "ok", false
}

// logoutDone is the outcome of a logout: "ok", "local_only" (the OP could
// not be told), or the failure's reason.
func (t *rpTelemetry) logoutDone(ctx context.Context, rec *opRecord, _ int) (string, bool) {
	result, failed := "ok", false
	switch {
	case rec.err == nil:
	case errors.Is(rec.err, ErrLocalLogoutOnly):
		result = "local_only"
	default:
		result, failed = reasonCode(rec.err), true
	}
	t.count(ctx, t.logouts, telemetry.KeyResult, result)
	return result, failed
}

// channelResult maps the status of a back- or front-channel logout answer
// to its outcome.
func channelResult(status int) (string, bool) {
	switch status {
	case http.StatusOK, 0:
		return "ok", false
	case http.StatusBadRequest:
		return "invalid", true
	case http.StatusMethodNotAllowed:
		return "method_not_allowed", true
	case http.StatusRequestEntityTooLarge:
		return "too_large", true
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type", true
	case http.StatusNotImplemented:
		return "not_configured", true
	}
	return "error", true
}

func (t *rpTelemetry) backChannelDone(ctx context.Context, _ *opRecord, status int) (string, bool) {
	result, failed := channelResult(status)
	t.count(ctx, t.backChannel, telemetry.KeyResult, result)
	return result, failed
}

func frontChannelDone(_ context.Context, _ *opRecord, status int) (string, bool) {
	return channelResult(status)
}

// loginStartDone records the outcome of startLogin (err nil: the browser
// was sent to the OP).
func (t *rpTelemetry) loginStartDone(ctx context.Context, sp span, err error) {
	if rec := opRecordFrom(ctx); rec != nil {
		rec.restarted = true
		rec.failureCounted = err != nil
	}
	if err != nil {
		code := reasonCode(err)
		t.count(ctx, t.loginFailures, telemetry.KeyReason, code)
		sp.end(code, true)
		return
	}
	t.count(ctx, t.loginStarted, "", "")
	sp.end("ok", false)
}

// Outcomes of a refresh beyond "ok" and the failure reasons.
const (
	refreshKept    = "kept_token" // oxd unreachable; the access token is still valid
	refreshRefused = "refused"    // oxd or the OP refused; the session ended
)

func (t *rpTelemetry) refreshDone(ctx context.Context, sp span, status int, err error, failedAtOxd bool) {
	result, failed := "ok", false
	switch {
	case err != nil && status == 0:
		result, failed = refreshRefused, true
	case err != nil:
		result, failed = reasonCode(err), true
	case failedAtOxd:
		result = refreshKept
	}
	t.count(ctx, t.refreshes, telemetry.KeyResult, result)
	sp.end(result, failed)
}

// umaResult is the bounded result of a UMA decision.
func umaResult(d *UMADecision) string {
	switch {
	case d.Granted:
		return "allowed"
	case errors.Is(d.Err, ErrUMAChallenge):
		return "challenge"
	case errors.Is(d.Err, ErrUMAUnreachable):
		return "unreachable"
	case errors.Is(d.Err, ErrUMAConfig):
		return "config_error"
	case errors.Is(d.Err, ErrUMADenied):
		return "denied"
	case errors.Is(d.Err, ErrUMASharedRPT):
		return "shared_rpt"
	}
	return "error"
}

func cacheAttr(hit bool) string {
	if hit {
		return "hit"
	}
	return "miss"
}

// spanMethod is the http.request.method of a span: a standard method, or
// "_OTHER" (OpenTelemetry's convention) for whatever else a client sent.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// startUMA begins the span of a UMA decision.
func (t *rpTelemetry) startUMA(ctx context.Context, method, template string) (context.Context, span) {
	if !telemetry.TracingOn(t.tp) {
		return ctx, span{}
	}
	ctx, s := t.tracer.Start(ctx, spanUMADecision, trace.WithAttributes(
		telemetry.KeyRoute.String(template), keyHTTPMethod.String(spanMethod(method))))
	return ctx, span{s}
}

// umaDecided records a decision made by umaGuard.decide.
func (t *rpTelemetry) umaDecided(ctx context.Context, sp span, template string, d *UMADecision) {
	result := umaResult(d)
	if telemetry.MetricsOn(t.mp) {
		t.umaDecisions.Add(ctx, 1, metric.WithAttributes(telemetry.KeyResult.String(result),
			telemetry.KeyCache.String(cacheAttr(d.Cached)), telemetry.KeyRoute.String(template)))
	}
	if sp.s != nil {
		sp.s.SetAttributes(telemetry.KeyCache.String(cacheAttr(d.Cached)))
	}
	sp.end(result, !d.Granted && !errors.Is(d.Err, ErrUMAChallenge))
}

// umaHitOptions are the precomputed metric options of a cached grant on
// template: the hot path adds to the counter without allocating.
func umaHitOptions(template string) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
		telemetry.KeyResult.String("allowed"), telemetry.KeyCache.String("hit"), telemetry.KeyRoute.String(template)))}
}

// umaCachedGrant records a grant served from the cache by UMAProtect's
// fast path.
func (t *rpTelemetry) umaCachedGrant(ctx context.Context, opts []metric.AddOption, method, template string) {
	if telemetry.MetricsOn(t.mp) {
		t.umaDecisions.Add(ctx, 1, opts...)
	}
	if telemetry.TracingOn(t.tp) {
		_, s := t.tracer.Start(ctx, spanUMADecision, trace.WithAttributes(
			telemetry.KeyRoute.String(template), keyHTTPMethod.String(spanMethod(method)),
			telemetry.KeyResult.String("allowed"), telemetry.KeyCache.String("hit")))
		s.End()
	}
}

// umaConfigError records a request refused before any decision because
// its route template is not the declared one, or the declaration is
// invalid.
func (t *rpTelemetry) umaConfigError(ctx context.Context, method, template string) {
	_, sp := t.startUMA(ctx, method, template)
	t.umaDecided(ctx, sp, template, &UMADecision{Err: ErrUMAConfig})
}
