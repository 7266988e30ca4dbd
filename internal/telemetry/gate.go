package telemetry

import (
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// The types of the global providers' placeholders, which record nothing and
// are replaced by otel.SetTracerProvider / otel.SetMeterProvider. nil when
// a provider was already installed before this package was initialised.
var (
	defaultTracerProviderType = placeholderType(otel.GetTracerProvider(), "tracerProvider")
	defaultMeterProviderType  = placeholderType(otel.GetMeterProvider(), "meterProvider")
)

// placeholderType returns the dynamic type of p when it is the global
// package's placeholder provider named name, else nil.
func placeholderType(p any, name string) reflect.Type {
	t := reflect.TypeOf(p)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	if e := t.Elem(); e.Name() != name || e.PkgPath() != "go.opentelemetry.io/otel/internal/global" {
		return nil
	}
	return t
}

// TracingOn reports whether spans started with Tracer(tp) can be recorded:
// tp is set (and is not the API's no-op provider), or tp is nil and the
// application has installed a global provider. It costs an atomic load and
// a comparison, so that code with nothing to record skips building spans
// and attributes altogether (design P10: telemetry compiled in but off
// costs nothing).
func TracingOn(tp trace.TracerProvider) bool {
	if tp != nil {
		_, noop := tp.(tracenoop.TracerProvider)
		return !noop
	}
	return reflect.TypeOf(otel.GetTracerProvider()) != defaultTracerProviderType
}

// MetricsOn is TracingOn for meter providers.
func MetricsOn(mp metric.MeterProvider) bool {
	if mp != nil {
		_, noop := mp.(metricnoop.MeterProvider)
		return !noop
	}
	return reflect.TypeOf(otel.GetMeterProvider()) != defaultMeterProviderType
}
