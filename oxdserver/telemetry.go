package oxdserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/oxdclient"
)

// Values of the oxd.listener attribute.
const (
	listenerSocket    = "socket"
	listenerHTTPS     = "https"
	listenerInProcess = "inprocess"
)

// Labels that stand for values outside the fixed sets, so that an
// attacker-chosen command name or an OP's odd answer cannot create new
// metric series.
const (
	labelUnknown = "unknown"
	labelOther   = "other"
)

// Metric names of the engine (OpenTelemetry instrument names; a Prometheus
// exporter writes them with underscores and unit suffixes, e.g.
// oxd_server_command_duration_seconds).
const (
	metricCommandDuration   = "oxd.server.command.duration"
	metricOPRequestDuration = "oxd.server.op.request.duration"
	metricJWKSRefreshes     = "oxd.server.jwks.refreshes"
	metricSites             = "oxd.server.sites"
	metricPendingStates     = "oxd.server.pending_states"
	// MetricConnections is the instrument name of the open connections per
	// listener (an observable up-down counter with the attribute
	// oxd.listener). The engine reports its socket listeners; a program
	// that serves the HTTPS extension may report its own connections under
	// the same name with oxd.listener "https".
	MetricConnections      = "oxd.server.connections"
	metricProtectionChecks = "oxd.server.protection.checks"
)

// Semantic-convention attribute keys used by the engine.
const (
	keyHTTPMethod  = attribute.Key("http.request.method")
	keyHTTPStatus  = attribute.Key("http.response.status_code")
	keyErrorType   = attribute.Key("error.type")
	keyServerAddr  = attribute.Key("server.address")
	keyServerPort  = attribute.Key("server.port")
	keyRPCSystem   = attribute.Key("rpc.system")
	keyRPCMethod   = attribute.Key("rpc.method")
	rpcSystemValue = "oxd"
)

// latencyBuckets (seconds) cover a cached answer (sub-millisecond) to an
// OP at its timeout.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// engineTelemetry holds the engine's tracer and instruments.
type engineTelemetry struct {
	tracer trace.Tracer
	// tp is the configured tracer provider (nil: the global one), read by
	// telemetry.TracingOn before any span is started.
	tp            trace.TracerProvider
	cmdDur, opDur metric.Float64Histogram
	jwks, prot    metric.Int64Counter
	reg           metric.Registration
	// socketConns counts the open connections of the SocketServers serving
	// this engine.
	socketConns atomic.Int64
}

// StoreCounter is an optional interface of a [Store] that can count its
// sites and pending one-time values cheaply (without reading them). The
// engine's metrics oxd.server.sites and oxd.server.pending_states use it
// when the store implements it; MemoryStore, FileStore and redisstore.Store
// do.
type StoreCounter interface {
	// CountSites returns the number of sites.
	CountSites(ctx context.Context) (int64, error)
	// CountValues returns the number of pending one-time values (one
	// record per login in progress, claims-gathering states) not yet
	// expired.
	CountValues(ctx context.Context) (int64, error)
}

// storeCountTimeout bounds the store calls of one metrics collection.
const storeCountTimeout = 2 * time.Second

func newEngineTelemetry(e *Engine) *engineTelemetry {
	t := &engineTelemetry{tracer: telemetry.Tracer(e.cfg.TracerProvider), tp: e.cfg.TracerProvider}
	m := telemetry.Meter(e.cfg.MeterProvider)
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.cmdDur, err = m.Float64Histogram(metricCommandDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of oxd commands served by the engine, by command, listener and result (ok or the oxd error code)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	keep(err)
	t.opDur, err = m.Float64Histogram(metricOPRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of the engine's HTTP requests to the OP/AS, by endpoint kind and HTTP status (or error.type when no answer came)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	keep(err)
	t.jwks, err = m.Int64Counter(metricJWKSRefreshes, metric.WithUnit("{refresh}"),
		metric.WithDescription("JWKS fetches from the OP (first use, expiry or an unknown key id), by result."))
	keep(err)
	t.prot, err = m.Int64Counter(metricProtectionChecks, metric.WithUnit("{check}"),
		metric.WithDescription("Protection access token checks, by result and whether the cache answered."))
	keep(err)
	sites, err := m.Int64ObservableGauge(metricSites, metric.WithUnit("{site}"),
		metric.WithDescription("Sites (registered clients) in the store."))
	keep(err)
	pending, err := m.Int64ObservableGauge(metricPendingStates, metric.WithUnit("{value}"),
		metric.WithDescription("Pending one-time values in the store: logins in progress (one record each) and claims-gathering states."))
	keep(err)
	conns, err := m.Int64ObservableUpDownCounter(MetricConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Open connections, by listener."))
	keep(err)
	socketAttrs := metric.WithAttributes(telemetry.KeyListener.String(listenerSocket))
	t.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(conns, t.socketConns.Load(), socketAttrs)
		sc, ok := e.store.(StoreCounter)
		if !ok {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, storeCountTimeout)
		defer cancel()
		if n, err := sc.CountSites(ctx); err == nil {
			o.ObserveInt64(sites, n)
		}
		if n, err := sc.CountValues(ctx); err == nil {
			o.ObserveInt64(pending, n)
		}
		return nil
	}, sites, pending, conns)
	keep(err)
	if len(errs) > 0 {
		// The API hands out working no-op instruments with the error.
		e.log.Warn("oxdserver: some metrics are not available", "err", errors.Join(errs...).Error())
	}
	return t
}

func (t *engineTelemetry) close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// commandLabel is the command name when the engine serves it, else
// "unknown".
func commandLabel(name string) string {
	if _, ok := handlers[name]; ok {
		return name
	}
	return labelUnknown
}

// knownCodes are the oxd error codes the engine and its front-ends answer.
var knownCodes = map[string]bool{}

func init() {
	for _, c := range []string{
		oxdclient.CodeInternalError, oxdclient.CodeBadRequest, oxdclient.CodeNoIDToken, oxdclient.CodeNoAccessToken,
		oxdclient.CodeInvalidNonce, oxdclient.CodeInvalidState, oxdclient.CodeInvalidIDToken, oxdclient.CodeInvalidIDTokenBadNonce,
		oxdclient.CodeInvalidIDTokenBadAudience, oxdclient.CodeInvalidIDTokenExpired, oxdclient.CodeInvalidIDTokenBadIssuer,
		oxdclient.CodeInvalidIDTokenBadSignature, oxdclient.CodeInvalidIDTokenUnknown, oxdclient.CodeInvalidAccessTokenBadHash,
		oxdclient.CodeInvalidAuthorizationCodeBadHash, oxdclient.CodeInvalidRegistrationClientURL, oxdclient.CodeInvalidOxdID,
		oxdclient.CodeInvalidRequest, oxdclient.CodeRPTNotAuthorized, oxdclient.CodeUnsupportedOperation, oxdclient.CodeInvalidOPHost,
		oxdclient.CodeIssuerMismatch, oxdclient.CodeNoSetupClientForOxdID, oxdclient.CodeBlankProtectionAccessToken,
		oxdclient.CodeInvalidProtectionAccessToken, oxdclient.CodeInactiveProtectionAccessToken,
		oxdclient.CodeProtectionAccessTokenInsufficientScope, oxdclient.CodeInvalidIntrospectionResponse,
		oxdclient.CodeInvalidAuthorizationRedirectURI, oxdclient.CodeInvalidScope, oxdclient.CodeInvalidAcrValues,
		oxdclient.CodeInvalidAlgorithm, oxdclient.CodeNoConnectDiscoveryResponse, oxdclient.CodeNoUMADiscoveryResponse,
		oxdclient.CodeInvalidUMARequest, oxdclient.CodeInvalidHTTPMethod, oxdclient.CodeInvalidPathParameter,
		oxdclient.CodeInvalidTicketParameter, oxdclient.CodeInvalidClaimsRedirectURIParameter, oxdclient.CodeInvalidRPTParameter,
		oxdclient.CodeNeedInfo, oxdclient.CodeHTTPMethodNotUnique, oxdclient.CodeInvalidScopeExpression,
		oxdclient.CodeUMAProtectionExists, oxdclient.CodeNoEndSessionEndpoint, oxdclient.CodeNoRevocationEndpoint,
		oxdclient.CodeRemoveSiteFailed, oxdclient.CodeForbidden, CodeInvalidOperatorToken, CodeTooManyRegistrations,
	} {
		knownCodes[c] = true
	}
}

// resultLabel is "ok", the oxd error code when it is one the engine knows,
// http_status_4xx / _5xx / _other for the OP statuses passed on
// (http_status_<N>), else "other".
func resultLabel(oe *oxdclient.Error) string {
	if oe == nil {
		return "ok"
	}
	if knownCodes[oe.Code] {
		return oe.Code
	}
	if n := oe.HTTPStatus(); n != 0 {
		return oxdclient.CodeHTTPStatusPrefix + statusClass(n)
	}
	return labelOther
}

func statusClass(n int) string {
	switch {
	case n >= 400 && n < 500:
		return "4xx"
	case n >= 500 && n < 600:
		return "5xx"
	}
	return labelOther
}

// Span start options and names made once: with no provider installed a
// command then costs no allocation for its span's name or attributes.
var (
	serverKind   = trace.WithSpanKind(trace.SpanKindServer)
	internalKind = trace.WithSpanKind(trace.SpanKindInternal)
	clientKind   = trace.WithSpanKind(trace.SpanKindClient)
	spanNames    = map[string]string{}
)

func init() {
	for name := range handlers {
		spanNames[name] = "oxd-server " + name
	}
	spanNames[labelUnknown] = "oxd-server " + labelUnknown
}

// offSpan is the span of every command and OP call while tracing is off:
// nothing is started, so nothing is allocated, and the context keeps the
// caller's trace context (which an OP call still propagates).
var offSpan trace.Span = tracenoop.Span{}

// tracing reports whether spans can be recorded (telemetry.TracingOn: a
// provider is configured, or the application installed a global one).
func (t *engineTelemetry) tracing() bool { return telemetry.TracingOn(t.tp) }

// startCommand starts the span of one command (a server span behind a
// listener: its parent is the caller's trace context when the request
// carried one). Attributes are set only on a recording span; with tracing
// off no span is started.
func (t *engineTelemetry) startCommand(ctx context.Context, label, listener string) (context.Context, trace.Span) {
	if !t.tracing() {
		return ctx, offSpan
	}
	kind := serverKind
	if listener == listenerInProcess {
		kind = internalKind
	}
	ctx, span := t.tracer.Start(ctx, spanNames[label], kind)
	if span.IsRecording() {
		span.SetAttributes(telemetry.KeyCommand.String(label), telemetry.KeyListener.String(listener),
			keyRPCSystem.String(rpcSystemValue), keyRPCMethod.String(label))
	}
	return ctx, span
}

// endCommand ends the command's span and records its duration.
func (t *engineTelemetry) endCommand(ctx context.Context, span trace.Span, label, listener string, oe *oxdclient.Error, start time.Time) {
	result := resultLabel(oe)
	if span.IsRecording() {
		span.SetAttributes(telemetry.KeyResult.String(result))
		if oe != nil {
			span.SetAttributes(keyErrorType.String(result))
			span.SetStatus(codes.Error, result)
		}
	}
	span.End()
	t.recordCommand(ctx, label, listener, result, time.Since(start))
}

// recordCommand records one command's duration.
func (t *engineTelemetry) recordCommand(ctx context.Context, label, listener, result string, d time.Duration) {
	if !t.cmdDur.Enabled(ctx) {
		return
	}
	t.cmdDur.Record(ctx, d.Seconds(), metric.WithAttributes(telemetry.KeyCommand.String(label),
		telemetry.KeyListener.String(listener), telemetry.KeyResult.String(result)))
}

// The client JWKS route (ClientJWKSPathPrefix) of the HTTPS extension: its
// oxd.command label in oxd.server.command.duration, its span's name and
// http.route. The oxd_id in the path is never a label or an attribute.
const (
	routeClientJWKS         = "client_jwks"
	routeClientJWKSTemplate = ClientJWKSPathPrefix + "{oxd_id}"
	spanClientJWKS          = "GET " + routeClientJWKSTemplate
	keyHTTPRoute            = attribute.Key("http.route")
)

// observeClientJWKS serves the client JWKS route with a server span (the
// caller's W3C trace context as parent) and records its duration like a
// command: oxd.command "client_jwks", oxd.listener "https", oxd.result the
// outcome (ok, not_found, method_not_allowed, busy, internal_error).
func (h *httpsHandler) observeClientJWKS(w http.ResponseWriter, r *http.Request) (int, string) {
	t := h.tel
	if t == nil {
		return h.serveClientJWKS(w, r)
	}
	start := time.Now()
	span := offSpan
	if t.tracing() {
		var ctx context.Context
		ctx, span = t.tracer.Start(traceFromHeaders(r.Context(), r.Header), spanClientJWKS, serverKind)
		if span.IsRecording() {
			span.SetAttributes(keyHTTPMethod.String(httpMethodLabel(r.Method)), keyHTTPRoute.String(routeClientJWKSTemplate),
				telemetry.KeyListener.String(listenerHTTPS))
		}
		r = r.WithContext(ctx)
	}
	status, outcome := h.serveClientJWKS(w, r)
	if span.IsRecording() {
		span.SetAttributes(keyHTTPStatus.Int(status), telemetry.KeyResult.String(outcome))
		if status >= 500 {
			span.SetAttributes(keyErrorType.String(outcome))
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
	t.recordCommand(r.Context(), routeClientJWKS, listenerHTTPS, outcome, time.Since(start))
	return status, outcome
}

// opEndpointKinds maps the engine's endpoint names to the values of
// oxd.op.endpoint.
var opEndpointKinds = map[string]string{
	"discovery":             "discovery",
	"uma discovery":         "uma_configuration",
	"jwks":                  "jwks",
	"token":                 "token",
	"userinfo":              "userinfo",
	"introspection":         "introspection",
	"registration":          "registration",
	"revocation":            "revocation",
	"resource_registration": "uma_resource",
	"permission":            "uma_permission",
}

func opEndpointKind(name string) string {
	if k, ok := opEndpointKinds[name]; ok {
		return k
	}
	return labelOther
}

// opCall is the telemetry of one HTTP exchange with the OP/AS.
type opCall struct {
	t      *engineTelemetry
	span   trace.Span
	kind   string
	method string
	start  time.Time
}

// startOPCall starts the client span of an HTTP call to the OP/AS. Its
// attributes are the method, the endpoint kind and the server's host and
// port: never the URL's path or query, nor a header or body. With tracing
// off no span is started (the duration is still recorded when metrics
// are on).
func (t *engineTelemetry) startOPCall(ctx context.Context, endpoint, method, rawURL string) (context.Context, opCall) {
	kind := opEndpointKind(endpoint)
	method = httpMethodLabel(method)
	c := opCall{t: t, kind: kind, method: method, start: time.Now(), span: offSpan}
	if !t.tracing() {
		return ctx, c
	}
	ctx, c.span = t.tracer.Start(ctx, method+" "+kind, clientKind)
	if c.span.IsRecording() {
		attrs := []attribute.KeyValue{keyHTTPMethod.String(method), telemetry.KeyEndpoint.String(kind)}
		if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
			attrs = append(attrs, keyServerAddr.String(u.Hostname()))
			port := u.Port()
			if port == "" {
				port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
			}
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, keyServerPort.Int(p))
			}
		}
		c.span.SetAttributes(attrs...)
	}
	return ctx, c
}

// inject sends the call's trace context to the OP (W3C traceparent and
// tracestate headers).
func (c *opCall) inject(ctx context.Context, h http.Header) {
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}

// end ends the span and records the duration: status is the OP's HTTP
// status (0 when none came), err the failure (nil on a 2xx answer).
func (c *opCall) end(ctx context.Context, status int, err error) {
	errType := ""
	switch {
	case status != 0 && (status < 100 || status > 599):
		status, errType = 0, "invalid_status"
	case status >= 400:
		// error.type is the status, written only on a recording span (the
		// metric carries the status itself).
	case status == 0 && err != nil:
		errType = opErrorType(err)
	case err != nil:
		errType = "invalid_response"
	}
	if c.span.IsRecording() {
		if status >= 400 {
			errType = strconv.Itoa(status)
		}
		if status != 0 {
			c.span.SetAttributes(keyHTTPStatus.Int(status))
		}
		if errType != "" {
			c.span.SetAttributes(keyErrorType.String(errType))
			c.span.SetStatus(codes.Error, errType)
		}
	}
	c.span.End()
	if !c.t.opDur.Enabled(ctx) {
		return
	}
	attrs := []attribute.KeyValue{telemetry.KeyEndpoint.String(c.kind), keyHTTPMethod.String(c.method)}
	if status != 0 {
		attrs = append(attrs, keyHTTPStatus.Int(status))
	} else if errType != "" {
		attrs = append(attrs, keyErrorType.String(errType))
	}
	c.t.opDur.Record(ctx, time.Since(c.start).Seconds(), metric.WithAttributes(attrs...))
}

// opErrorType classifies a failure without an HTTP answer.
func opErrorType(err error) string {
	var ce *opCallError
	if errors.As(err, &ce) {
		switch ce.what {
		case whatTimeout:
			return "timeout"
		case whatUnreachable:
			return "unreachable"
		case whatPlainHTTP, whatNotAllowed:
			return "refused"
		case whatInvalid:
			return "invalid_response"
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return labelOther
}

func httpMethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
		return m
	}
	return "_OTHER"
}

// jwksRefreshed counts one JWKS fetch.
func (t *engineTelemetry) jwksRefreshed(ctx context.Context, err error) {
	if !t.jwks.Enabled(ctx) {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	t.jwks.Add(ctx, 1, metric.WithAttributes(telemetry.KeyResult.String(result)))
}

// protectionChecked counts one protection token check; cached: the cache
// answered.
func (t *engineTelemetry) protectionChecked(ctx context.Context, cached bool, err error) {
	if !t.prot.Enabled(ctx) {
		return
	}
	result := "ok"
	if err != nil {
		oe, _ := toOxd(err)
		result = resultLabel(oe)
	}
	cache := "miss"
	if cached {
		cache = "hit"
	}
	t.prot.Add(ctx, 1, metric.WithAttributes(telemetry.KeyResult.String(result), telemetry.KeyCache.String(cache)))
}

// Bounds of the trace context a caller sends. A version-00 traceparent is
// 55 characters; W3C asks to propagate at least 512 characters of
// tracestate.
const (
	maxTraceparent = 256
	maxTracestate  = 512
)

// boundedCarrier reads traceparent and tracestate, ignoring values over
// the bounds.
type boundedCarrier map[string]string

func (c boundedCarrier) Get(key string) string {
	v := c[key]
	switch key {
	case "traceparent":
		if len(v) > maxTraceparent {
			return ""
		}
	case "tracestate":
		if len(v) > maxTracestate {
			return ""
		}
	}
	return v
}
func (c boundedCarrier) Set(string, string) {}
func (c boundedCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

// withRemoteTrace returns ctx with the caller's trace context, when tp
// holds a valid W3C traceparent (and ts its tracestate); ctx unchanged
// otherwise. Malformed values are ignored.
func withRemoteTrace(ctx context.Context, tp, ts string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, boundedCarrier{"traceparent": tp, "tracestate": ts})
}

// traceFromParams reads the trace context a socket client sends inside the
// params object ("traceparent" and "tracestate" keys, which oxd-server
// 3.1.4 and this engine ignore as unknown parameters; the envelope admits
// no other top-level key). Only those exact top-level keys count, each
// present once with a string value: a key in another case (which
// encoding/json would match), a key of a nested object or a repeated key
// (which parsers resolve differently) leaves ctx without the caller's
// trace, as a malformed value does.
func traceFromParams(ctx context.Context, params json.RawMessage) context.Context {
	if len(params) == 0 || !bytes.Contains(params, []byte(`"traceparent"`)) {
		return ctx
	}
	tp, ts, ok := traceKeys(params)
	if !ok {
		return ctx
	}
	return withRemoteTrace(ctx, tp, ts)
}

// traceKeys returns the string values of the top-level keys "traceparent"
// and "tracestate" of the JSON object params; ok is false when params is
// not an object, either key is repeated or not a string, or traceparent
// is missing.
func traceKeys(params json.RawMessage) (tp, ts string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(params))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", "", false
	}
	var seenTP, seenTS bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		key, _ := t.(string)
		var dst *string
		switch key {
		case "traceparent":
			if seenTP {
				return "", "", false
			}
			seenTP, dst = true, &tp
		case "tracestate":
			if seenTS {
				return "", "", false
			}
			seenTS, dst = true, &ts
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", "", false
		}
		if dst != nil && (len(v) == 0 || v[0] != '"' || json.Unmarshal(v, dst) != nil) {
			return "", "", false
		}
	}
	return tp, ts, seenTP
}

// traceFromHeaders reads the W3C trace context headers of an HTTPS
// extension request, unless ctx already has a span (a tracing middleware
// in front of the handler extracted it). More than one traceparent header
// leaves ctx without the caller's trace; tracestate headers are combined
// (W3C Trace Context, "tracestate" header: multiple fields are allowed).
func traceFromHeaders(ctx context.Context, h http.Header) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	tps := h.Values("traceparent")
	if len(tps) != 1 {
		return ctx
	}
	return withRemoteTrace(ctx, tps[0], strings.Join(h.Values("tracestate"), ","))
}

var (
	_ StoreCounter = (*MemoryStore)(nil)
	_ StoreCounter = (*FileStore)(nil)
)
