package oxd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdclient/umaclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// telRig is an application using the middleware with OpenTelemetry SDK
// providers (an in-memory span recorder, a manual metric reader) given to
// the middleware, the oxd client and the engine, in front of the
// development OP. Every HTTP exchange between the engine and the OP is
// recorded, so that a test can collect every secret issued in a flow, and
// every log line of the three layers goes to one buffer.
type telRig struct {
	t      *testing.T
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	srv    *oxdtest.Server
	client *oxdclient.Client
	auth   *Auth
	sm     *scs.SessionManager
	app    *httptest.Server
	opLog  *opRecorder
	logs   *syncBuffer
	clockD atomic.Int64
}

type telRigOpts struct {
	transport string // "inprocess", "socket" or "https"
	// spanProcessor replaces the recorder (the 10,000-path scan keeps no
	// spans).
	spanProcessor sdktrace.SpanProcessor
	authMethod    string
}

func newTelRig(t *testing.T, o telRigOpts) *telRig {
	t.Helper()
	rg := &telRig{t: t, spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), logs: &syncBuffer{}}
	var sp sdktrace.SpanProcessor = rg.spans
	if o.spanProcessor != nil {
		sp = o.spanProcessor
	}
	rg.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sp))
	rg.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(rg.reader))
	t.Cleanup(func() {
		_ = rg.tp.Shutdown(context.Background())
		_ = rg.mp.Shutdown(context.Background())
	})
	logger := slog.New(slog.NewJSONHandler(rg.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var handler atomic.Pointer[http.Handler]
	rg.app = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	rg.app.Config.ErrorLog = log.New(io.Discard, "", 0)
	rg.app.StartTLS()
	t.Cleanup(rg.app.Close)

	rg.opLog = &opRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(rg.opLog.next.(*http.Transport).CloseIdleConnections)
	opts := []oxdtest.ServerOption{
		oxdtest.WithOPConfig(oxdtest.OPConfig{AccessTokenTTL: 2 * time.Minute}),
		oxdtest.WithEngineConfig(oxdserver.Config{
			TracerProvider: rg.tp, MeterProvider: rg.mp, Logger: logger,
			HTTPClient: &http.Client{Transport: rg.opLog, Timeout: 10 * time.Second},
		}),
		oxdtest.WithRedirectURIs(rg.app.URL+"/callback", rg.app.URL+"/logged-out", ""),
	}
	if o.authMethod != "" {
		opts = append(opts, oxdtest.WithClientAuthMethod(o.authMethod))
	}
	rg.srv = oxdtest.NewServer(t, opts...)

	ccfg := oxdclient.Config{TracerProvider: rg.tp, MeterProvider: rg.mp, Logger: logger}
	switch o.transport {
	case "inprocess", "":
		rg.client = oxdclient.New(rg.srv.Engine, ccfg)
	case "socket":
		creds := rg.srv.Protection
		ccfg.Protection = &creds
		rg.client = oxdclient.New(socketTransport(t, rg.srv), ccfg)
	case "https":
		hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(rg.srv.Engine, oxdserver.HTTPSConfig{Logger: logger}))
		t.Cleanup(hs.Close)
		h, err := oxdclient.NewHTTPS(hs.URL, oxdclient.HTTPSConfig{HTTPClient: hs.Client()})
		if err != nil {
			t.Fatal(err)
		}
		creds := rg.srv.Protection
		ccfg.Protection = &creds
		rg.client = oxdclient.New(h, ccfg)
	default:
		t.Fatalf("transport %q", o.transport)
	}

	rg.sm = scs.New()
	a, err := New(rg.client, rg.sm, Config{
		OxdID:                 rg.srv.OxdID,
		RedirectURL:           rg.app.URL + "/callback",
		PostLogoutRedirectURI: rg.app.URL + "/logged-out",
		Logger:                logger,
		CallTimeout:           10 * time.Second,
		PendingLoginKey:       testPendingKey,
		TracerProvider:        rg.tp,
		MeterProvider:         rg.mp,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Now().Add(time.Duration(rg.clockD.Load())) }
	rg.auth = a
	t.Cleanup(a.revoker.wg.Wait)

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("/private/", a.RequireLogin(ok))
	mux.Handle("GET /callback", a.CallbackHandler())
	mux.Handle("POST /logout", a.LogoutHandler())
	mux.Handle("GET /photos/{id}", a.UMAProtect("GET /photos/{id}", "photos:view")(ok))
	mux.Handle("POST /logout/backchannel", a.BackChannelLogoutHandler())
	mux.Handle("GET /logout/frontchannel", a.FrontChannelLogoutHandler())
	// The application's own request span, as otelhttp would start it.
	app := rg.tp.Tracer("app")
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, s := app.Start(r.Context(), "app "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("app.path", r.URL.Path)))
		defer s.End()
		rg.sm.LoadAndSave(mux).ServeHTTP(w, r.WithContext(ctx))
	})
	handler.Store(&h)
	return rg
}

func (rg *telRig) browser() *http.Client {
	fa := &flowApp{app: rg.app}
	return fa.browser()
}

func (rg *telRig) do(c *http.Client, method, target string, hdr http.Header) resp {
	rg.t.Helper()
	fa := &flowApp{t: rg.t, app: rg.app}
	m := map[string]string{}
	for k := range hdr {
		m[k] = hdr.Get(k)
	}
	return fa.do(c, method, target, m)
}

// login signs alice in from /private/page and returns the authorization
// URL and the callback URL.
func (rg *telRig) login(b *http.Client) (authURL, callback *url.URL) {
	rg.t.Helper()
	r := rg.do(b, "GET", "/private/page", nil)
	if r.status != http.StatusSeeOther {
		rg.t.Fatalf("first visit: %d", r.status)
	}
	authURL, _ = url.Parse(r.header.Get("Location"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, authURL.String(), "alice", "alice-password")
	if err != nil {
		rg.t.Fatal(err)
	}
	if r := rg.do(b, "GET", cb.String(), nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/page" {
		rg.t.Fatalf("callback: %d %q\n%s", r.status, r.header.Get("Location"), rg.logs.String())
	}
	return authURL, cb
}

// rpt obtains an RPT for GET /photos/{id} (challenge, then
// uma_rp_get_rpt with its ticket) and returns it with the challenge.
func (rg *telRig) rpt() (rpt oxdclient.Secret, ticket string) {
	rg.t.Helper()
	if err := rg.auth.RegisterUMA(context.Background()); err != nil {
		rg.t.Fatal(err)
	}
	r := rg.do(rg.browser(), "GET", "/photos/1", nil)
	ch, err := umaclient.ParseChallenge(r.header)
	if r.status != http.StatusUnauthorized || err != nil {
		rg.t.Fatalf("UMA challenge: %d %v", r.status, err)
	}
	g, err := rg.client.UMARPGetRPT(context.Background(), oxdclient.UMARPGetRPTParams{OxdID: rg.srv.OxdID, Ticket: ch.Ticket})
	if err != nil {
		rg.t.Fatal(err)
	}
	return g.AccessToken, ch.Ticket
}

// settleGrant waits until the grant of rpt on GET /photos/{id} is cached
// with its expiry (read in the background after the first grant).
func (rg *telRig) settleGrant(rpt oxdclient.Secret) {
	rg.t.Helper()
	k := grantKey{rpt: hashRPT(rpt.Reveal()), method: "GET", template: "/photos/{id}"}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if rg.auth.uma.cache.lookup(context.Background(), k, rg.auth.now) {
			return
		}
	}
	rg.t.Fatal("grant not cached")
}

// metrics collects the metrics once.
func (rg *telRig) metrics() metricdata.ResourceMetrics {
	rg.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rg.reader.Collect(context.Background(), &rm); err != nil {
		rg.t.Fatal(err)
	}
	return rm
}

// point is one data point of a metric: its attributes and value (count
// for a histogram).
type point struct {
	attrs attribute.Set
	value float64
}

// points returns the data points of the metric name.
func points(rm metricdata.ResourceMetrics, name string) []point {
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				out = valuePoints(out, d.DataPoints)
			case metricdata.Sum[float64]:
				out = valuePoints(out, d.DataPoints)
			case metricdata.Gauge[int64]:
				out = valuePoints(out, d.DataPoints)
			case metricdata.Gauge[float64]:
				out = valuePoints(out, d.DataPoints)
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out = append(out, point{p.Attributes, float64(p.Count)})
				}
			}
		}
	}
	return out
}

func valuePoints[N int64 | float64](out []point, dps []metricdata.DataPoint[N]) []point {
	for _, p := range dps {
		out = append(out, point{p.Attributes, float64(p.Value)})
	}
	return out
}

// sum adds the values of name's points whose attributes include every
// key=value of want.
func sum(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) float64 {
	var total float64
	for _, p := range points(rm, name) {
		match := true
		for _, kv := range want {
			if v, ok := p.attrs.Value(kv.Key); !ok || v.String() != kv.Value.String() {
				match = false
				break
			}
		}
		if match {
			total += p.value
		}
	}
	return total
}

// metricLabels returns every "metric key=value" label of rm.
func metricLabels(rm metricdata.ResourceMetrics) []string {
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, p := range points(rm, m.Name) {
				for _, kv := range p.attrs.ToSlice() {
					out = append(out, m.Name+" "+string(kv.Key)+"="+kv.Value.String())
				}
			}
		}
	}
	return out
}

// opRecorder records every HTTP exchange between the engine and the OP.
type opRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	ex   []opExchange
}

type opExchange struct {
	reqHeader  http.Header
	reqBody    []byte
	respBody   []byte
	requestURL string
}

func (o *opRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := o.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	o.mu.Lock()
	o.ex = append(o.ex, opExchange{reqHeader: req.Header.Clone(), reqBody: body, respBody: rb, requestURL: req.URL.String()})
	o.mu.Unlock()
	return resp, nil
}

// secretNames are the form and JSON members that carry a secret.
var secretNames = map[string]bool{
	"access_token": true, "id_token": true, "refresh_token": true, "client_secret": true,
	"registration_access_token": true, "code": true, "client_assertion": true, "token": true,
	"rpt": true, "ticket": true, "code_verifier": true, "state": true, "nonce": true,
	"id_token_hint": true, "logout_token": true, "claim_token": true,
}

// secrets returns every secret the OP issued or received in the recorded
// exchanges: tokens, codes, client secrets and assertions, tickets, and
// the credentials of Authorization headers.
func (o *opRecorder) secrets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, e := range o.ex {
		if u, err := url.Parse(e.requestURL); err == nil {
			out = appendValues(out, u.Query())
		}
		if q, err := url.ParseQuery(string(e.reqBody)); err == nil {
			out = appendValues(out, q)
		}
		out = appendJSONSecrets(out, e.reqBody)
		out = appendJSONSecrets(out, e.respBody)
		if auth := e.reqHeader.Get("Authorization"); auth != "" {
			scheme, cred, _ := strings.Cut(auth, " ")
			out = append(out, cred)
			if strings.EqualFold(scheme, "Basic") {
				if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
					id, pw, _ := strings.Cut(string(raw), ":")
					_ = id // the client_id is not a secret
					if u, err := url.QueryUnescape(pw); err == nil {
						out = append(out, u)
					}
				}
			}
		}
	}
	return out
}

func appendValues(out []string, v url.Values) []string {
	for k, vs := range v {
		if secretNames[k] {
			out = append(out, vs...)
		}
	}
	return out
}

func appendJSONSecrets(out []string, b []byte) []string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return out
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		case string:
			if secretNames[key] {
				out = append(out, x)
			}
		}
	}
	walk("", v)
	return out
}

// spanTexts returns every text of the recorded spans a secret could hide
// in: names, attributes, events and their attributes, status
// descriptions, links' attributes.
func spanTexts(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	kvs := func(prefix string, attrs []attribute.KeyValue) {
		for _, kv := range attrs {
			out = append(out, prefix+string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, s := range spans {
		out = append(out, "span "+s.Name(), "status "+s.Status().Description)
		kvs("span "+s.Name()+" ", s.Attributes())
		for _, e := range s.Events() {
			out = append(out, "event "+e.Name)
			kvs("event "+e.Name+" ", e.Attributes)
		}
		for _, l := range s.Links() {
			kvs("link ", l.Attributes)
		}
	}
	return out
}

// findSecrets returns a line per secret (of at least 8 characters) found
// in texts, and per JWT signature found alone.
func findSecrets(secrets, texts []string) []string {
	var found []string
	seen := map[string]bool{}
	for _, s := range secrets {
		needles := []string{s}
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			needles = append(needles, parts[2])
		}
		for _, n := range needles {
			if len(n) < 8 || seen[n] {
				continue
			}
			seen[n] = true
			for _, t := range texts {
				if strings.Contains(t, n) {
					found = append(found, fmt.Sprintf("secret %.6s… in %.120q", n, t))
					break
				}
			}
		}
	}
	return found
}
