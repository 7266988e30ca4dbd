// Package telemetry holds what every layer of oxd for Go shares for
// OpenTelemetry: the instrumentation scope, how a nil provider is resolved,
// and the attribute keys of the project's own spans and metrics.
//
// Nothing here may ever carry a token, secret, code, state, nonce or RPT:
// attributes are command names, transports, outcome codes, route templates
// and OP endpoint kinds, all from small fixed sets.
package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every tracer and meter.
const ScopeName = "github.com/oxdgo/oxd"

// Tracer returns the project's tracer from tp, or from the global provider
// when tp is nil (a no-op until the application installs one).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// Meter returns the project's meter from mp, or from the global provider
// when mp is nil (a no-op until the application installs one).
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// Attribute keys of the project's spans and metrics. Where OpenTelemetry
// semantic conventions name an attribute (http.*, server.*, error.type),
// those names are used instead.
const (
	// KeyCommand is the oxd command name (e.g. "get_tokens_by_code").
	KeyCommand = attribute.Key("oxd.command")
	// KeyTransport is "socket", "https" or "inprocess".
	KeyTransport = attribute.Key("oxd.transport")
	// KeyResult is "ok" or the outcome: an oxd error code, "transport",
	// "timeout", a typed login failure reason, "allowed"/"denied".
	KeyResult = attribute.Key("oxd.result")
	// KeyReason is the typed reason of a failure.
	KeyReason = attribute.Key("oxd.reason")
	// KeyRoute is a route template (never a raw path).
	KeyRoute = attribute.Key("oxd.route")
	// KeyCache is "hit" or "miss".
	KeyCache = attribute.Key("oxd.cache")
	// KeyEndpoint is the kind of OP/AS endpoint: "discovery", "jwks",
	// "token", "userinfo", "introspection", "registration", "revocation",
	// "uma_configuration", "uma_permission", "uma_resource", "end_session".
	KeyEndpoint = attribute.Key("oxd.op.endpoint")
	// KeyListener is "socket" or "https" on the server side.
	KeyListener = attribute.Key("oxd.listener")
	// KeyRetries is the number of retries a client command made.
	KeyRetries = attribute.Key("oxd.retries")
)
