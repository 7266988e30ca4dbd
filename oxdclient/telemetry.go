package oxdclient

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/internal/wire"
)

// Telemetry of the client (see the package documentation, "Telemetry").

// Instrument names of the client's metrics.
const (
	metricCommandDuration = "oxd.client.command.duration"
	metricPoolConnections = "oxd.client.pool.connections"
	metricPoolWait        = "oxd.client.pool.wait.duration"
)

// keyPoolWait is the span attribute holding the time a command waited
// for a free socket connection, in seconds.
const keyPoolWait = attribute.Key("oxd.pool.wait")

// keyErrorType is OpenTelemetry's error.type: here the bounded outcome
// code, never an error message.
const keyErrorType = attribute.Key("error.type")

// latencyBuckets are the histogram boundaries (seconds) of command
// latency and pool waits: loopback round trips are tens of microseconds,
// an OP behind oxd can take seconds.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// clientTelemetry holds a client's tracer and instruments.
type clientTelemetry struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	tracer    trace.Tracer
	duration  metric.Float64Histogram
	transport string
}

func newClientTelemetry(t Transport, cfg Config) *clientTelemetry {
	ct := &clientTelemetry{
		tp:        cfg.TracerProvider,
		mp:        cfg.MeterProvider,
		tracer:    telemetry.Tracer(cfg.TracerProvider),
		transport: transportName(t),
	}
	meter := telemetry.Meter(cfg.MeterProvider)
	// An instrument that cannot be created is a no-op instrument: the
	// error only says so.
	ct.duration, _ = meter.Float64Histogram(metricCommandDuration,
		metric.WithDescription("Duration of oxd commands sent by the client, protection-token refresh and retries included."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...))
	if s, ok := t.(*Socket); ok {
		s.instrument(cfg.TracerProvider, cfg.MeterProvider, meter)
	}
	return ct
}

// transportName is the oxd.transport attribute: "socket", "https",
// "inprocess" for the engine of package oxdserver, "custom" otherwise.
func transportName(t Transport) string {
	switch t.(type) {
	case *Socket:
		return "socket"
	case *HTTPS:
		return "https"
	}
	rt := reflect.TypeOf(t)
	for rt != nil && rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt != nil && rt.PkgPath() == "github.com/oxdgo/oxd/oxdserver" {
		return "inprocess"
	}
	return "custom"
}

// callStats collects what a transport knows about one command for its
// span: the time waited for a connection and the retries on a new one.
// It travels in the context only while tracing is on.
type callStats struct {
	poolWait time.Duration
	retries  int
}

type callStatsKey struct{}

func statsFrom(ctx context.Context) *callStats {
	st, _ := ctx.Value(callStatsKey{}).(*callStats)
	return st
}

// start begins the span of one command; span is nil when tracing is off.
func (ct *clientTelemetry) start(ctx context.Context, command string) (context.Context, trace.Span, *callStats) {
	if !telemetry.TracingOn(ct.tp) {
		return ctx, nil, nil
	}
	ctx, span := ct.tracer.Start(ctx, "oxd "+command, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.KeyCommand.String(command), telemetry.KeyTransport.String(ct.transport)))
	st := &callStats{}
	return context.WithValue(ctx, callStatsKey{}, st), span, st
}

// end finishes a command: the span's outcome and the latency histogram.
// retries are the client's own (protection-token) retries.
func (ct *clientTelemetry) end(ctx context.Context, span trace.Span, st *callStats, command string, start time.Time, retries int, err error) {
	metrics := telemetry.MetricsOn(ct.mp)
	if span == nil && !metrics {
		return
	}
	result := resultOf(err)
	if metrics {
		ct.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			telemetry.KeyCommand.String(command), telemetry.KeyTransport.String(ct.transport), telemetry.KeyResult.String(result)))
	}
	if span == nil {
		return
	}
	attrs := []attribute.KeyValue{telemetry.KeyResult.String(result), telemetry.KeyRetries.Int(retries + st.retries)}
	if st.poolWait > 0 {
		attrs = append(attrs, keyPoolWait.Float64(st.poolWait.Seconds()))
	}
	if err != nil {
		attrs = append(attrs, keyErrorType.String(result))
		// The description is the bounded code: error messages may quote
		// an OP's answer.
		span.SetStatus(codes.Error, result)
	}
	span.SetAttributes(attrs...)
	span.End()
}

// resultOf is the bounded outcome of a command: "ok", an oxd error code
// this package knows ("http_status_<N>" for a valid N), "unknown_code" for
// any other code, or the transport failure ("unavailable", "timeout",
// "protocol", "too_large", "closed", "canceled", "error").
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	var oe *Error
	if errors.As(err, &oe) {
		if knownCodes[oe.Code] {
			return oe.Code
		}
		if n := oe.HTTPStatus(); n != 0 {
			return CodeHTTPStatusPrefix + strconv.Itoa(n)
		}
		return "unknown_code"
	}
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// knownCodes are the error codes kept as they are in telemetry.
var knownCodes = map[string]bool{}

func init() {
	for _, c := range []string{
		CodeInternalError, CodeBadRequest, CodeNoIDToken, CodeNoAccessToken, CodeInvalidNonce, CodeInvalidState,
		CodeInvalidIDToken, CodeInvalidIDTokenBadNonce, CodeInvalidIDTokenBadAudience, CodeInvalidIDTokenExpired,
		CodeInvalidIDTokenBadIssuer, CodeInvalidIDTokenBadSignature, CodeInvalidIDTokenUnknown,
		CodeInvalidAccessTokenBadHash, CodeInvalidAuthorizationCodeBadHash, CodeInvalidRegistrationClientURL,
		CodeInvalidOxdID, CodeInvalidRequest, CodeRPTNotAuthorized, CodeUnsupportedOperation, CodeInvalidOPHost,
		CodeIssuerMismatch, CodeNoSetupClientForOxdID, CodeBlankProtectionAccessToken, CodeInvalidProtectionAccessToken,
		CodeInactiveProtectionAccessToken, CodeProtectionAccessTokenInsufficientScope, CodeInvalidIntrospectionResponse,
		CodeInvalidAuthorizationRedirectURI, CodeInvalidScope, CodeInvalidAcrValues, CodeInvalidAlgorithm,
		CodeNoConnectDiscoveryResponse, CodeNoUMADiscoveryResponse, CodeInvalidUMARequest, CodeInvalidHTTPMethod,
		CodeInvalidPathParameter, CodeInvalidTicketParameter, CodeInvalidClaimsRedirectURIParameter,
		CodeInvalidRPTParameter, CodeNeedInfo, CodeHTTPMethodNotUnique, CodeInvalidScopeExpression,
		CodeUMAProtectionExists, CodeNoEndSessionEndpoint, CodeNoRevocationEndpoint, CodeRemoveSiteFailed,
		CodeForbidden,
	} {
		knownCodes[c] = true
	}
}

// socketTelemetry is the pool instrumentation of a Socket, installed by
// the first Client created on it ([Config.MeterProvider] of that client).
type socketTelemetry struct {
	once  sync.Once
	ready atomic.Bool // the fields below are set
	tp    trace.TracerProvider
	mp    metric.MeterProvider
	wait  metric.Float64Histogram
	reg   metric.Registration
}

// instrument installs the pool metrics of s once: connections in use and
// idle (observed at collection) and the wait for a free connection.
func (s *Socket) instrument(tp trace.TracerProvider, mp metric.MeterProvider, meter metric.Meter) {
	s.tel.once.Do(func() {
		t := &s.tel
		t.tp, t.mp = tp, mp
		t.wait, _ = meter.Float64Histogram(metricPoolWait,
			metric.WithDescription("Time a command waited for a free connection of the oxd socket pool."),
			metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...))
		conns, err := meter.Int64ObservableUpDownCounter(metricPoolConnections,
			metric.WithDescription("Connections of the oxd socket pool, by state (in_use, idle)."),
			metric.WithUnit("{connection}"))
		if err == nil {
			inUse := metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "in_use")))
			idle := metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "idle")))
			t.reg, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
				s.mu.Lock()
				nIdle, nAll := len(s.idle), len(s.conns)
				s.mu.Unlock()
				o.ObserveInt64(conns, int64(nAll-nIdle), inUse)
				o.ObserveInt64(conns, int64(nIdle), idle)
				return nil
			}, conns)
		}
		t.ready.Store(true)
	})
}

// forCall returns the span statistics of the command in ctx (nil when
// tracing is off) and whether the wait histogram records.
func (t *socketTelemetry) forCall(ctx context.Context) (*callStats, bool) {
	if !t.ready.Load() {
		return nil, false
	}
	var st *callStats
	if telemetry.TracingOn(t.tp) {
		st = statsFrom(ctx)
	}
	return st, telemetry.MetricsOn(t.mp)
}

// waited records the wait for a connection that began at start.
func (t *socketTelemetry) waited(ctx context.Context, st *callStats, hist bool, start time.Time) {
	if start.IsZero() {
		return
	}
	d := time.Since(start)
	if st != nil {
		st.poolWait = d
	}
	if hist {
		t.wait.Record(ctx, d.Seconds())
	}
}

// close stops the pool observations (Socket.Close).
func (t *socketTelemetry) close() {
	if t.ready.Load() && t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// traceContext is the W3C trace context of a command: traceparent and
// tracestate as propagation.TraceContext writes them.
type traceContext struct{ parent, state string }

func (c *traceContext) Get(string) string { return "" }
func (c *traceContext) Keys() []string    { return nil }
func (c *traceContext) Set(k, v string) {
	switch k {
	case "traceparent":
		c.parent = v
	case "tracestate":
		c.state = v
	}
}

// traceContextOf returns the trace context of ctx's span, empty when ctx
// has no valid span context.
func traceContextOf(ctx context.Context) traceContext {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return traceContext{}
	}
	tc := new(traceContext)
	propagation.TraceContext{}.Inject(ctx, tc)
	return *tc
}

// maxTraceState bounds the tracestate sent in a socket frame; a longer
// one is left out (W3C allows 32 members of up to 256 characters).
const maxTraceState = 512

// addTraceContext adds "traceparent" (and "tracestate") as the first keys
// of the params object that starts at b[at] (b is f.buf's content), and
// returns the new frame. oxd-server 3.1.4 ignores unknown params keys
// (where an unknown top-level key would make it fail and close the
// connection). Nothing is added when params is not an object, already
// has a traceparent key, or the frame would no longer fit in 9999 units:
// the trace context never makes a command fail.
func (f *frameBuf) addTraceContext(b []byte, at int, tc traceContext) []byte {
	if at+1 >= len(b) || b[at] != '{' || bytes.Contains(b[at:], []byte(`"traceparent"`)) {
		return b
	}
	state := tc.state
	if len(state) > maxTraceState || strings.ContainsFunc(state, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		state = ""
	}
	extra := len(`"traceparent":"",`) + len(tc.parent)
	if state != "" {
		extra += len(`,"tracestate":""`) + len(state) + strings.Count(state, `"`) + strings.Count(state, `\`)
	}
	if len(b)-wire.PrefixLen+extra > wire.MaxUnits || strings.ContainsAny(tc.parent, `"\`) {
		return b
	}
	f.tmp = append(f.tmp[:0], b[at+1:]...)
	f.buf.Truncate(at + 1)
	f.buf.WriteString(`"traceparent":"`)
	f.buf.WriteString(tc.parent)
	f.buf.WriteByte('"')
	if state != "" {
		f.buf.WriteString(`,"tracestate":"`)
		for i := 0; i < len(state); i++ {
			if c := state[i]; c == '"' || c == '\\' {
				f.buf.WriteByte('\\')
			}
			f.buf.WriteByte(state[i])
		}
		f.buf.WriteByte('"')
	}
	if f.tmp[0] != '}' {
		f.buf.WriteByte(',')
	}
	f.buf.Write(f.tmp)
	return f.buf.Bytes()
}
