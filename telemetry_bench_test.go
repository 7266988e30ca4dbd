package oxd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// BenchmarkTelemetryP10 is P10's information figure (design §5): the P1
// and P4 requests (a logged-in request through RequireLogin; the same
// with UMAProtect and a cached grant) through an Auth without providers
// ("off", the P1/P4 benchmarks' setting) and through one with SDK
// providers recording every span (batched to a discarding exporter) and
// every metric ("on"). Both Auths share the site, the session store and
// the RPT, so the pairs differ only in telemetry. The logged-in path has
// no instrumentation; the cached grant adds one span and one counter
// when on.
func BenchmarkTelemetryP10(b *testing.B) {
	srv := oxdtest.NewServer(b)
	sm := scs.New()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	cfg := Config{OxdID: srv.OxdID, PostLogoutRedirectURI: "https://app.example/bye", InsecureCookies: true}
	off, err := New(srv.Client, sm, cfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg.TracerProvider, cfg.MeterProvider = tp, mp
	on, err := New(oxdclient.New(srv.Engine, oxdclient.Config{TracerProvider: tp, MeterProvider: mp}), sm, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	login := map[*Auth]http.Handler{}
	uma := map[*Auth]http.Handler{}
	for _, a := range []*Auth{off, on} {
		lm, um := http.NewServeMux(), http.NewServeMux()
		lm.Handle("GET /photos/{id}", a.RequireLogin(ok))
		um.Handle("GET /photos/{id}", a.RequireLogin(a.UMAProtect("GET /photos/{id}", "photos:view")(ok)))
		login[a], uma[a] = lm, um
	}
	ctx := context.Background()
	if err := off.RegisterUMA(ctx); err != nil {
		b.Fatal(err)
	}
	req, rpt := umaBenchRequest(b, srv, sm, off, benchSessionUser(time.Now()))
	for _, a := range []*Auth{off, on} {
		uma[a].ServeHTTP(httptest.NewRecorder(), req)
		k := grantKey{rpt: hashRPT(rpt.Reveal()), method: "GET", template: "/photos/{id}"}
		for deadline := time.Now().Add(10 * time.Second); !a.uma.cache.lookup(ctx, k, a.now); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("grant not cached")
			}
		}
	}

	run := func(b *testing.B, h http.Handler) { umaBenchRun(b, h, req) }
	b.Run("RequireLogin/off", func(b *testing.B) { run(b, login[off]) })
	b.Run("RequireLogin/on", func(b *testing.B) { run(b, login[on]) })
	b.Run("RequireLogin+UMAProtect(cached_grant)/off", func(b *testing.B) { run(b, uma[off]) })
	b.Run("RequireLogin+UMAProtect(cached_grant)/on", func(b *testing.B) { run(b, uma[on]) })
	// Interleaved: the cached-grant request off and on alternately (ABBA),
	// each timed; the median of the per-pair differences is the cost of
	// telemetry on the P4 request.
	b.Run("UMAInterleaved", func(b *testing.B) {
		dOff, dOn, dDiff := umaBenchInterleaved(b, req, uma[off], uma[on])
		b.ReportMetric(float64(umaMedian(dOff)), "off-median-ns")
		b.ReportMetric(float64(umaMedian(dOn)), "on-median-ns")
		b.ReportMetric(float64(umaMedian(dDiff)), "paired-extra-ns")
	})
}
