package oxdserver

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestTelemetryOffAllocatesNothing: with no provider (the global
// placeholders, which no test of this package replaces) and with the
// API's no-op providers, a command's and an OP call's telemetry allocate
// nothing, and an OP call still propagates the caller's trace context.
func TestTelemetryOffAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Log("allocation counts are not exact under the race detector: checking behaviour only")
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"nil providers", Config{}},
		{"no-op providers", Config{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &Engine{cfg: c.cfg, log: slog.New(slog.DiscardHandler), store: NewMemoryStore()}
			tel := newEngineTelemetry(e)
			defer tel.close()
			if tel.tracing() {
				t.Fatal("tracing on without a provider")
			}
			ctx := context.Background()
			start := time.Now()
			oe := &oxdclient.Error{Code: oxdclient.CodeInvalidState}
			h := http.Header{}
			allocs := testing.AllocsPerRun(200, func() {
				cctx, span := tel.startCommand(ctx, oxdclient.CmdGetAuthorizationURL, listenerSocket)
				octx, oc := tel.startOPCall(cctx, "token", http.MethodPost, "https://op.example/token")
				oc.inject(octx, h)
				oc.end(octx, http.StatusBadRequest, nil)
				tel.endCommand(cctx, span, oxdclient.CmdGetAuthorizationURL, listenerSocket, oe, start)
				tel.recordCommand(ctx, labelUnknown, listenerHTTPS, "not_found", time.Millisecond)
			})
			if !raceEnabled && allocs != 0 {
				t.Fatalf("telemetry off allocates %v times per command", allocs)
			}
			if len(h) != 0 {
				t.Fatalf("trace headers without a trace context: %v", h)
			}

			// The caller's trace context still reaches the OP.
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
			})
			pctx := trace.ContextWithRemoteSpanContext(ctx, sc)
			cctx, span := tel.startCommand(pctx, oxdclient.CmdGetTokensByCode, listenerSocket)
			octx, oc := tel.startOPCall(cctx, "token", http.MethodPost, "https://op.example/token")
			oc.inject(octx, h)
			oc.end(octx, http.StatusOK, nil)
			tel.endCommand(cctx, span, oxdclient.CmdGetTokensByCode, listenerSocket, nil, start)
			got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h)))
			if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
				t.Fatalf("the OP call propagates %v, want the caller's %v", got, sc)
			}
		})
	}
}
