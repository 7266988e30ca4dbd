package oxdserver_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// BenchmarkEngineTelemetry measures what the engine's spans and metrics
// cost: "off" with no provider (the global no-op ones), "on" with SDK
// providers (every span sampled and ended, metrics aggregated for a
// reader). get_authorization_url makes no OP call (one command span and
// one histogram record); login is a whole login through the engine
// (authorization URL, code exchange with JWKS-cached validation, userinfo:
// three commands and two OP calls).
func BenchmarkEngineTelemetry(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		cfg := oxdserver.Config{}
		if mode == "on" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
			cfg.TracerProvider, cfg.MeterProvider = tp, mp
		}
		b.Run("get_authorization_url/"+mode, func(b *testing.B) {
			srv := oxdtest.NewServer(b, oxdtest.WithEngineConfig(cfg))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := srv.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("login/"+mode, func(b *testing.B) {
			srv := oxdtest.NewServer(b, oxdtest.WithEngineConfig(cfg))
			ctx := context.Background()
			if err := engineLogin(ctx, srv); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := engineLogin(ctx, srv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
