package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// gatesInstalled: TestGates has installed the global providers.
var gatesInstalled bool

// TestGates: off with nothing installed, on with an explicit provider, off
// with the API's no-op providers, on once a global provider is installed.
// It changes the global providers, so it runs last in this package and
// is not parallel.
func TestGates(t *testing.T) {
	if gatesInstalled {
		// -count > 1: an earlier run installed the global providers, and
		// the placeholders cannot be put back.
		t.Skip("the global providers were installed by an earlier run in this process")
	}
	if defaultTracerProviderType == nil || defaultMeterProviderType == nil {
		t.Fatal("the global placeholders were not recognised")
	}
	if TracingOn(nil) || MetricsOn(nil) {
		t.Fatal("on without any provider")
	}
	if TracingOn(tracenoop.NewTracerProvider()) || MetricsOn(metricnoop.NewMeterProvider()) {
		t.Fatal("on with the no-op providers")
	}
	tp, mp := sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider()
	if !TracingOn(tp) || !MetricsOn(mp) {
		t.Fatal("off with SDK providers")
	}
	gatesInstalled = true
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	t.Cleanup(func() {
		// The placeholders cannot be put back; the SDK providers stay
		// installed but shut down, which records nothing.
		_ = tp.Shutdown(t.Context())
		_ = mp.Shutdown(t.Context())
	})
	if !TracingOn(nil) || !MetricsOn(nil) {
		t.Fatal("off after the global providers were installed")
	}
}
