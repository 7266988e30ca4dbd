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
	sctx, err := sm.Load(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	sm.Put(sctx, sessionKeyUser, benchSessionUser(time.Now()))
	token, _, err := sm.Commit(sctx)
	if err != nil {
		b.Fatal(err)
	}
	d := off.checkUMA(ctx, "GET", "/photos/{id}", "")
	r, err := srv.Client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: srv.OxdID, Ticket: d.Ticket})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/photos/1", nil)
	req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: token})
	req.Header.Set("Authorization", "Bearer "+r.AccessToken.Reveal())
	for _, a := range []*Auth{off, on} {
		uma[a].ServeHTTP(httptest.NewRecorder(), req)
		k := grantKey{rpt: hashRPT(r.AccessToken.Reveal()), method: "GET", template: "/photos/{id}"}
		for deadline := time.Now().Add(10 * time.Second); !a.uma.cache.lookup(ctx, k, a.now); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("grant not cached")
			}
		}
	}

	run := func(b *testing.B, h http.Handler) {
		w := &umaBenchWriter{h: http.Header{}}
		b.ReportAllocs()
		cpu0, cpuOK := processCPUTime()
		b.ResetTimer()
		for b.Loop() {
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, req)
		}
		b.StopTimer()
		if cpu1, ok := processCPUTime(); ok && cpuOK {
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
		}
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.Run("RequireLogin/off", func(b *testing.B) { run(b, login[off]) })
	b.Run("RequireLogin/on", func(b *testing.B) { run(b, login[on]) })
	b.Run("RequireLogin+UMAProtect(cached_grant)/off", func(b *testing.B) { run(b, uma[off]) })
	b.Run("RequireLogin+UMAProtect(cached_grant)/on", func(b *testing.B) { run(b, uma[on]) })
	// Interleaved: the cached-grant request off and on alternately (ABBA),
	// each timed; the median of the per-pair differences is the cost of
	// telemetry on the P4 request.
	b.Run("UMAInterleaved", func(b *testing.B) {
		w := &umaBenchWriter{h: http.Header{}}
		one := func(h http.Handler) time.Duration {
			clear(w.h)
			start := time.Now()
			h.ServeHTTP(w, req)
			return time.Since(start)
		}
		var dOff, dOn, dDiff []time.Duration
		i := 0
		for b.Loop() {
			var f, n time.Duration
			if i%2 == 0 {
				f, n = one(uma[off]), one(uma[on])
			} else {
				n, f = one(uma[on]), one(uma[off])
			}
			dOff, dOn, dDiff = append(dOff, f), append(dOn, n), append(dDiff, n-f)
			i++
		}
		b.ReportMetric(float64(umaMedian(dOff)), "off-median-ns")
		b.ReportMetric(float64(umaMedian(dOn)), "on-median-ns")
		b.ReportMetric(float64(umaMedian(dDiff)), "paired-extra-ns")
	})
}
