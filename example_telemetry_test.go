package oxd_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/alexedwards/scs/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// Wiring OpenTelemetry SDK providers into the middleware, the oxd client
// and the engine. A deployment would give the tracer provider a batching
// OTLP exporter (sdktrace.WithBatcher) and the meter provider a Prometheus
// or OTLP reader; here spans go to memory and metrics are read by hand.
// Leaving the fields nil uses the global providers (otel.SetTracerProvider,
// otel.SetMeterProvider) instead, and costs nothing while none is set.
func ExampleConfig_telemetry() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) }()

	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer op.Close()
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	client := oxdclient.New(engine, oxdclient.Config{TracerProvider: tp, MeterProvider: mp})

	sessions := scs.New()
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(sessions.LoadAndSave(mux))
	defer app.Close()
	site, err := client.RegisterSite(context.Background(), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: app.URL + "/callback",
		Scope:                    []string{"openid", "profile"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := oxd.New(client, sessions, oxd.Config{
		OxdID:          site.OxdID,
		TracerProvider: tp,
		MeterProvider:  mp,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/account/", auth.RequireLogin(http.NotFoundHandler()))
	spans.Reset() // forget the site's registration

	// An anonymous visit: the browser is sent to the OP.
	noFollow := &http.Client{Transport: app.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(app.URL + "/account/")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode)

	for _, s := range spans.GetSpans() { // in the order they ended
		fmt.Println(s.Name)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "oxd.login.started" {
				fmt.Println(m.Name, s.DataPoints[0].Value)
			}
		}
	}
	// Output:
	// 303
	// oxd-server get_authorization_url
	// oxd get_authorization_url
	// oxd.login.start
	// oxd.login.started 1
}
