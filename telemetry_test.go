package oxd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/oxdclient"
)

// spanIndex gives the recorded spans by ID.
type spanIndex map[trace.SpanID]sdktrace.ReadOnlySpan

func indexSpans(spans []sdktrace.ReadOnlySpan) spanIndex {
	m := spanIndex{}
	for _, s := range spans {
		m[s.SpanContext().SpanID()] = s
	}
	return m
}

// parent returns the recorded parent of s, or nil.
func (ix spanIndex) parent(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	if !s.Parent().IsValid() {
		return nil
	}
	return ix[s.Parent().SpanID()]
}

// chain returns the names from s up to its root (s first), failing the
// test when a parent is missing from the recording or in another trace.
func (ix spanIndex) chain(t *testing.T, s sdktrace.ReadOnlySpan) []string {
	t.Helper()
	var names []string
	for s != nil {
		names = append(names, s.Name())
		p := ix.parent(s)
		if p == nil && s.Parent().IsValid() {
			t.Fatalf("the parent of span %q (chain %q) was not recorded", s.Name(), names)
		}
		if p != nil && p.SpanContext().TraceID() != s.SpanContext().TraceID() {
			t.Fatalf("span %q is in another trace than its parent", s.Name())
		}
		s = p
	}
	return names
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestTelemetryLoginTrace: a full login, with the oxd engine reached in
// process, through the socket listener and through the HTTPS handler, is
// one trace from the
// application's request span through the middleware's span and the client
// command span to the engine's command span and its call to the OP's token
// endpoint (parent/child links asserted at each step).
func TestTelemetryLoginTrace(t *testing.T) {
	for _, transport := range []string{"inprocess", "socket", "https"} {
		t.Run(transport, func(t *testing.T) {
			rg := newTelRig(t, telRigOpts{transport: transport})
			rg.login(rg.browser())
			spans := rg.spans.Ended()
			ix := indexSpans(spans)

			var tokenCalls, starts int
			for _, s := range spans {
				switch {
				case attr(s, telemetry.KeyEndpoint) == "token":
					ch := ix.chain(t, s)
					if !isSubsequence(ch, []string{"oxd-server get_tokens_by_code", "oxd get_tokens_by_code", spanCallback, "app GET"}) {
						continue // a protection-token request (socket) has its own chain
					}
					tokenCalls++
					// Direct links: the engine's command span is the
					// client span's child, the client span the
					// callback's, the callback the application's.
					var srv, cli, cb sdktrace.ReadOnlySpan
					for p := ix.parent(s); p != nil; p = ix.parent(p) {
						switch p.Name() {
						case "oxd-server get_tokens_by_code":
							srv = p
						case "oxd get_tokens_by_code":
							cli = p
						case spanCallback:
							cb = p
						}
					}
					if ix.parent(srv) != cli || ix.parent(cli) != cb || ix.parent(cb).Name() != "app GET" || ix.parent(ix.parent(cb)) != nil {
						t.Fatalf("token endpoint chain %q: not direct parent/child links", ch)
					}
					if attr(cli, telemetry.KeyTransport) != transport || attr(cli, telemetry.KeyResult) != "ok" ||
						cli.SpanKind() != trace.SpanKindClient || attr(cb, telemetry.KeyResult) != "ok" {
						t.Fatalf("client span %v, callback span %v", cli.Attributes(), cb.Attributes())
					}
					if attr(ix.parent(cb), "app.path") != "/callback" {
						t.Fatal("the callback span is not under the callback request")
					}
				case s.Name() == spanLoginStart:
					if p := ix.parent(s); p == nil || p.Name() != "app GET" || attr(p, "app.path") != "/private/page" {
						t.Fatalf("login start span not under the request: %q", ix.chain(t, s))
					}
					starts++
				}
			}
			if tokenCalls != 1 || starts != 1 {
				t.Fatalf("token endpoint spans under the callback: %d, login start spans: %d; want 1 and 1", tokenCalls, starts)
			}
			// get_authorization_url and get_user_info are children of the
			// middleware's spans too.
			for _, s := range spans {
				want := map[string]string{"oxd get_authorization_url": spanLoginStart, "oxd get_user_info": spanCallback}[s.Name()]
				if want != "" && (ix.parent(s) == nil || ix.parent(s).Name() != want) {
					t.Fatalf("%s: parent %q, want %q", s.Name(), ix.chain(t, s), want)
				}
			}
		})
	}
}

// TestTelemetryUMADecisionSpans: every UMA decision has its own span under
// the request, with the result, the grant-cache use and the route template
// (never the request's path).
func TestTelemetryUMADecisionSpans(t *testing.T) {
	rg := newTelRig(t, telRigOpts{transport: "inprocess"})
	rpt, _ := rg.rpt()
	b := rg.browser()
	get := func(path string, rpt string) int {
		h := http.Header{}
		if rpt != "" {
			h.Set("Authorization", "Bearer "+rpt)
		}
		return rg.do(b, "GET", path, h).status
	}
	steps := []struct {
		path, rpt     string
		status        int
		result, cache string
		settle        bool
	}{
		{"/photos/101", "", 401, "challenge", "miss", false},
		{"/photos/102", rpt.Reveal(), 200, "allowed", "miss", true},
		{"/photos/103", rpt.Reveal(), 200, "allowed", "hit", false},
		{"/photos/104", "not-an-rpt-0123456789", 401, "challenge", "miss", false},
	}
	for _, st := range steps {
		if got := get(st.path, st.rpt); got != st.status {
			t.Fatalf("GET %s: %d, want %d", st.path, got, st.status)
		}
		if st.settle {
			rg.settleGrant(rpt)
		}
	}
	spans := rg.spans.Ended()
	ix := indexSpans(spans)
	for _, st := range steps {
		var decisions []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() != spanUMADecision {
				continue
			}
			if p := ix.parent(s); p != nil && attr(p, "app.path") == st.path {
				decisions = append(decisions, s)
			}
		}
		if len(decisions) != 1 {
			t.Fatalf("GET %s: %d decision spans, want 1", st.path, len(decisions))
		}
		d := decisions[0]
		if attr(d, telemetry.KeyResult) != st.result || attr(d, telemetry.KeyCache) != st.cache ||
			attr(d, telemetry.KeyRoute) != "/photos/{id}" || attr(d, "http.request.method") != "GET" {
			t.Fatalf("GET %s: decision span %v, want result %s cache %s", st.path, d.Attributes(), st.result, st.cache)
		}
		for _, kv := range d.Attributes() {
			if strings.Contains(kv.Value.String(), st.path) {
				t.Fatalf("the decision span holds the raw path: %v", kv)
			}
		}
	}
}

// TestTelemetryMetricsMove: the counters and histograms move as a flow
// runs over the socket transport: logins started, completed and failed by
// reason, a refresh, UMA decisions by result and cache use, the grant
// cache, a logout, a back-channel logout, the oxd command latency by
// command, transport and result, and the socket pool.
func TestTelemetryMetricsMove(t *testing.T) {
	rg := newTelRig(t, telRigOpts{transport: "socket"})
	if n := sum(rg.metrics(), metricLoginCompleted); n != 0 {
		t.Fatalf("logins completed before any login: %v", n)
	}
	b := rg.browser()
	rg.login(b)
	rm := rg.metrics()
	if sum(rm, metricLoginStarted) != 1 || sum(rm, metricLoginCompleted) != 1 {
		t.Fatalf("after one login: started %v, completed %v", sum(rm, metricLoginStarted), sum(rm, metricLoginCompleted))
	}

	// A refresh past half of the token's lifetime.
	rg.clockD.Add(int64(61 * time.Second))
	if r := rg.do(b, "GET", "/private/r", nil); r.status != 200 {
		t.Fatalf("refresh request: %d", r.status)
	}
	// A callback in a browser that started no login.
	if r := rg.do(rg.browser(), "GET", "/callback?state=s0123456789&code=c0123456789", nil); r.status != http.StatusBadRequest {
		t.Fatalf("foreign callback: %d", r.status)
	}
	// UMA: a challenge, a grant, a cached grant.
	rpt, _ := rg.rpt()
	bearerH := http.Header{"Authorization": {"Bearer " + rpt.Reveal()}}
	if r := rg.do(b, "GET", "/photos/7", bearerH); r.status != 200 {
		t.Fatalf("UMA grant: %d", r.status)
	}
	rg.settleGrant(rpt)
	if r := rg.do(b, "GET", "/photos/8", bearerH); r.status != 200 {
		t.Fatalf("UMA cached grant: %d", r.status)
	}
	// Logout, and a back-channel logout without a session index (501).
	if r := rg.do(b, "POST", "/logout", http.Header{"Origin": {rg.app.URL}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := rg.do(rg.browser(), "POST", "/logout/backchannel", nil); r.status != http.StatusNotImplemented {
		t.Fatalf("back-channel logout: %d", r.status)
	}

	rm = rg.metrics()
	route := telemetry.KeyRoute.String("/photos/{id}")
	checks := []struct {
		name string
		got  float64
		min  float64
		max  float64
	}{
		{"login started", sum(rm, metricLoginStarted), 1, 1},
		{"login completed", sum(rm, metricLoginCompleted), 1, 1},
		{"login failures (session_cookie_missing)", sum(rm, metricLoginFailures, telemetry.KeyReason.String("session_cookie_missing")), 1, 1},
		{"login failures", sum(rm, metricLoginFailures), 1, 1},
		{"refresh ok", sum(rm, metricRefresh, telemetry.KeyResult.String("ok")), 1, 1},
		{"uma challenge", sum(rm, metricUMADecisions, telemetry.KeyResult.String("challenge"), telemetry.KeyCache.String("miss"), route), 1, 1},
		{"uma allowed miss", sum(rm, metricUMADecisions, telemetry.KeyResult.String("allowed"), telemetry.KeyCache.String("miss"), route), 1, 1},
		{"uma allowed hit", sum(rm, metricUMADecisions, telemetry.KeyResult.String("allowed"), telemetry.KeyCache.String("hit"), route), 1, 1},
		{"grant cache size", sum(rm, metricGrantCacheSize), 1, 1},
		{"logout ok", sum(rm, metricLogout, telemetry.KeyResult.String("ok")), 1, 1},
		{"back-channel not configured", sum(rm, metricBackChannel, telemetry.KeyResult.String("not_configured")), 1, 1},
		{"get_tokens_by_code latency", sum(rm, "oxd.client.command.duration", telemetry.KeyCommand.String("get_tokens_by_code"),
			telemetry.KeyTransport.String("socket"), telemetry.KeyResult.String("ok")), 1, 1},
		{"refresh command latency", sum(rm, "oxd.client.command.duration", telemetry.KeyCommand.String("get_access_token_by_refresh_token")), 1, 1},
		{"pool connections", sum(rm, "oxd.client.pool.connections"), 1, 4},
		{"pool idle", float64(len(points(rm, "oxd.client.pool.connections"))), 2, 2},
	}
	for _, c := range checks {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s: %v, want %v..%v", c.name, c.got, c.min, c.max)
		}
	}
	commands := sum(rm, "oxd.client.command.duration", telemetry.KeyTransport.String("socket"))
	if waits := sum(rm, "oxd.client.pool.wait.duration"); commands < 6 || waits < commands {
		t.Errorf("pool waits recorded %v for %v socket commands", waits, commands)
	}
	if t.Failed() {
		t.Logf("labels: %q", metricLabels(rm))
	}
}

// scanRecorder is a span processor that keeps no spans, only the span
// names and the attribute values of the project's instrumentation scope.
type scanRecorder struct {
	mu     sync.Mutex
	names  map[string]bool
	values map[string]bool
	spans  int
}

func (p *scanRecorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *scanRecorder) Shutdown(context.Context) error                  { return nil }
func (p *scanRecorder) ForceFlush(context.Context) error                { return nil }
func (p *scanRecorder) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name != telemetry.ScopeName {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spans++
	p.names[s.Name()] = true
	for _, kv := range s.Attributes() {
		if kv.Key != telemetry.KeyRetries && kv.Key != "oxd.pool.wait" && kv.Key != "http.response.status_code" {
			p.values[string(kv.Key)+"="+kv.Value.String()] = true
		}
	}
}

// TestTelemetryLabelsBounded10000Paths: 10,000 requests to distinct paths
// of one UMA-protected route (cached grants, challenges, unknown RPTs)
// leave a small, fixed set of metric label sets and span attribute
// values, none holding a path or an RPT.
func TestTelemetryLabelsBounded10000Paths(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	scan := &scanRecorder{names: map[string]bool{}, values: map[string]bool{}}
	rg := newTelRig(t, telRigOpts{transport: "inprocess", spanProcessor: scan})
	rpt, _ := rg.rpt()
	h := rg.app.Config.Handler
	warm := httptest.NewRequest("GET", "/photos/0", nil)
	warm.Header.Set("Authorization", "Bearer "+rpt.Reveal())
	h.ServeHTTP(httptest.NewRecorder(), warm)
	rg.settleGrant(rpt)

	statuses := map[int]int{}
	for i := range 10000 {
		path := fmt.Sprintf("/photos/%d-%x", i, i*7919)
		req := httptest.NewRequest("GET", path, nil)
		switch i % 50 {
		case 0: // no RPT: a challenge with a ticket from the AS
		case 1: // an RPT the AS never issued
			req.Header.Set("Authorization", fmt.Sprintf("Bearer unknown-rpt-%08d", i))
		default:
			req.Header.Set("Authorization", "Bearer "+rpt.Reveal())
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		statuses[w.Code]++
	}
	if statuses[200] != 9600 || statuses[401] != 400 {
		t.Fatalf("statuses %v", statuses)
	}

	rm := rg.metrics()
	pathRe := regexp.MustCompile(`/photos/[0-9]`)
	sets := map[string]map[string]bool{}
	for _, l := range metricLabels(rm) {
		if pathRe.MatchString(l) || strings.Contains(l, rpt.Reveal()) || strings.Contains(l, "unknown-rpt") {
			t.Fatalf("metric label %q holds a path or an RPT", l)
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, p := range points(rm, m.Name) {
				if sets[m.Name] == nil {
					sets[m.Name] = map[string]bool{}
				}
				sets[m.Name][p.attrs.Encoded(attribute.DefaultEncoder())] = true
			}
		}
	}
	total := 0
	for name, s := range sets {
		total += len(s)
		if len(s) > 12 {
			t.Errorf("%s: %d label sets", name, len(s))
		}
	}
	if n := len(sets[metricUMADecisions]); n < 2 || n > 4 {
		t.Errorf("uma decisions: %d label sets, want 2..4: %v", n, sets[metricUMADecisions])
	}
	if sum(rm, metricUMADecisions) < 10000 {
		t.Errorf("uma decisions counted: %v", sum(rm, metricUMADecisions))
	}
	if total > 60 {
		t.Errorf("%d label sets in all", total)
	}

	scan.mu.Lock()
	defer scan.mu.Unlock()
	if scan.spans < 10000 || len(scan.names) > 20 || len(scan.values) > 60 {
		t.Fatalf("%d spans: %d names %v, %d attribute values", scan.spans, len(scan.names), scan.names, len(scan.values))
	}
	for v := range scan.values {
		if pathRe.MatchString(v) || strings.Contains(v, rpt.Reveal()) || strings.Contains(v, "unknown-rpt") {
			t.Fatalf("span attribute %q holds a path or an RPT", v)
		}
	}
}

// TestTelemetrySecretsNeverExported runs the full flow (login, refresh,
// UMA with an RPT, logout with token revocation) over the socket
// transport, with client assertions (private_key_jwt), every span
// recorded, every metric collected and every log line of the middleware,
// the client and the engine captured, and searches all of them for every
// secret issued on the way: tokens, codes, state, nonce, client secrets,
// client assertions, protection tokens, the RPT and its ticket. A secret
// planted in a span, a metric label and a log line is found.
func TestTelemetrySecretsNeverExported(t *testing.T) {
	rg := newTelRig(t, telRigOpts{transport: "socket", authMethod: "private_key_jwt"})
	b := rg.browser()
	authURL, cb := rg.login(b)
	rg.clockD.Add(int64(61 * time.Second))
	if r := rg.do(b, "GET", "/private/r", nil); r.status != 200 {
		t.Fatalf("refresh: %d", r.status)
	}
	rpt, ticket := rg.rpt()
	bearerH := http.Header{"Authorization": {"Bearer " + rpt.Reveal()}}
	for i := range 2 {
		if r := rg.do(b, "GET", fmt.Sprintf("/photos/%d", i), bearerH); r.status != 200 {
			t.Fatalf("UMA: %d", r.status)
		}
		rg.settleGrant(rpt)
	}
	if r := rg.do(b, "POST", "/logout", http.Header{"Origin": {rg.app.URL}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	rg.auth.revoker.wg.Wait()

	secrets := rg.opLog.secrets()
	for _, q := range []url.Values{authURL.Query(), cb.Query()} {
		secrets = append(secrets, q.Get("state"), q.Get("nonce"), q.Get("code"))
	}
	secrets = append(secrets, rpt.Reveal(), ticket, rg.srv.Setup.ClientSecret.Reveal(),
		rg.srv.Setup.ClientRegistrationAccessToken.Reveal(), rg.srv.Protection.ClientSecret.Reveal())
	// The flow must have issued each kind of secret, or the search proves
	// little.
	var assertion, refresh bool
	rg.opLog.mu.Lock()
	for _, e := range rg.opLog.ex {
		q, _ := url.ParseQuery(string(e.reqBody))
		assertion = assertion || q.Get("client_assertion") != ""
		refresh = refresh || q.Get("grant_type") == "refresh_token"
	}
	rg.opLog.mu.Unlock()
	if !assertion || !refresh || authURL.Query().Get("nonce") == "" || len(secrets) < 20 {
		t.Fatalf("the flow did not issue every kind of secret: assertion %v, refresh %v, %d secrets", assertion, refresh, len(secrets))
	}

	search := func() (spans, labels, logs []string) {
		return spanTexts(rg.spans.Ended()), metricLabels(rg.metrics()), strings.Split(rg.logs.String(), "\n")
	}
	spans, labels, logs := search()
	if len(spans) < 50 || len(labels) < 20 || len(logs) < 10 {
		t.Fatalf("too little recorded: %d span texts, %d labels, %d log lines", len(spans), len(labels), len(logs))
	}
	for what, texts := range map[string][]string{"span": spans, "metric label": labels, "log line": logs} {
		for _, f := range findSecrets(secrets, texts) {
			t.Errorf("%s: %s", what, f)
		}
	}

	// Planted: the search finds a secret in each place.
	_, s := rg.tp.Tracer("planted").Start(context.Background(), "planted")
	s.AddEvent("e", trace.WithAttributes(attribute.String("v", "x"+rpt.Reveal()+"x")))
	s.End()
	c, _ := rg.mp.Meter("planted").Int64Counter("planted")
	c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("v", rg.srv.Protection.ClientSecret.Reveal())))
	slog.New(slog.NewJSONHandler(rg.logs, nil)).Info("planted", "v", cb.Query().Get("code"))
	spans, labels, logs = search()
	for what, texts := range map[string][]string{"span": spans, "metric label": labels, "log line": logs} {
		if len(findSecrets(secrets, texts)) == 0 {
			t.Errorf("the secret planted in a %s was not found", what)
		}
	}
}

// TestTelemetryOffStartsNoSpan: with the API's no-op providers, and with
// nil providers while no global provider is installed, the middleware
// starts no span, leaves the context alone and allocates nothing.
func TestTelemetryOffStartsNoSpan(t *testing.T) {
	offs := []*rpTelemetry{{tp: tracenoop.NewTracerProvider(), mp: metricnoop.NewMeterProvider()}}
	if !telemetry.TracingOn(nil) && !telemetry.MetricsOn(nil) {
		offs = append(offs, &rpTelemetry{})
	}
	for _, a := range offs {
		ctx := context.Background()
		if c, sp := a.start(ctx, spanRefresh); c != ctx || sp.s != nil {
			t.Fatal("a span was started with telemetry off")
		}
		if c, sp := a.startUMA(ctx, "GET", "/x"); c != ctx || sp.s != nil {
			t.Fatal("a UMA span was started with telemetry off")
		}
		allocs := testing.AllocsPerRun(100, func() {
			a.umaCachedGrant(ctx, nil, "GET", "/x")
			a.count(ctx, nil, telemetry.KeyResult, "ok")
			_, sp := a.start(ctx, spanLogout)
			sp.end("ok", false)
		})
		if allocs != 0 {
			t.Fatalf("%v allocations with telemetry off", allocs)
		}
	}
	if len(offs) != 2 && os.Getenv("CI") != "" {
		t.Fatal("a global provider is installed in this test binary: the nil case was not checked")
	}
}

// TestSpanMethodBounded: a client's method token never reaches a span
// as such.
func TestSpanMethodBounded(t *testing.T) {
	for m, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "_OTHER", "X-SECRET-0123": "_OTHER", "": "_OTHER"} {
		if got := spanMethod(m); got != want {
			t.Errorf("%q: %q, want %q", m, got, want)
		}
	}
}

// TestTelemetryLoginOutcomes: each login outcome is counted once, by the
// step that met it, and named in the span: a failed start, a callback
// whose state oxd forgot (the login restarts), a restart that fails, a
// completed login; then a refresh kept on a transport failure and one the
// OP refuses.
func TestTelemetryLoginOutcomes(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.TracerProvider, c.MeterProvider = tp, mp }})
	tr := &telRig{t: t, reader: reader}
	results := func(name string) []string {
		var out []string
		for _, s := range spans.Ended() {
			if s.Name() == name {
				out = append(out, attr(s, telemetry.KeyResult))
			}
		}
		return out
	}
	reasonOf := func(r string) attribute.KeyValue { return telemetry.KeyReason.String(r) }
	b := rg.browser()

	// 1. get_authorization_url fails: one failure, no start.
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, &oxdclient.Error{Code: "internal_error", Description: "x"})
	if r := rg.get(b, "/private/a"); r.status != http.StatusBadGateway {
		t.Fatalf("failed start: %d", r.status)
	}
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, nil)
	// 2. oxd forgot the state: the callback restarts the login.
	state := rg.startLogin(b, "/private/b")
	rg.fake.setFail(oxdclient.CmdGetTokensByCode, &oxdclient.Error{Code: oxdclient.CodeBadRequest, Description: oxdclient.DescStateNotRegistered})
	if r := rg.finish(b, state, "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("restarted callback: %d", r.status)
	}
	// 3. The same, but the restart itself fails: one failure, counted by
	// the start.
	state = rg.startLogin(b, "/private/c")
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, &oxdclient.Error{Code: "internal_error", Description: "x"})
	if r := rg.finish(b, state, "alice"); r.status != http.StatusBadGateway {
		t.Fatalf("failed restart: %d", r.status)
	}
	rg.fake.setFail(oxdclient.CmdGetAuthorizationURL, nil)
	rg.fake.setFail(oxdclient.CmdGetTokensByCode, nil)
	// 4. A login.
	if r := rg.login(b, "/private/d", "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	rm := tr.metrics()
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"started", sum(rm, metricLoginStarted), 4}, // b, its restart, c, d
		{"completed", sum(rm, metricLoginCompleted), 1},
		{"failures", sum(rm, metricLoginFailures), 2},
		{"failures oxd_error", sum(rm, metricLoginFailures, reasonOf("oxd_error")), 2},
	} {
		if c.got != c.want {
			t.Errorf("logins %s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := strings.Join(results(spanCallback), ","); got != "restarted,oxd_error,ok" {
		t.Errorf("callback results %q", got)
	}
	if got := strings.Join(results(spanLoginStart), ","); got != "oxd_error,ok,ok,ok,oxd_error,ok" {
		t.Errorf("login start results %q", got)
	}

	// 5. Refreshes: due but not expired, oxd unreachable → kept; then the
	// OP refuses → the session ends.
	rg.advance(3550 * time.Second)
	rg.fake.setFail(oxdclient.CmdGetAccessTokenByRefreshToken, fmt.Errorf("down: %w", oxdclient.ErrUnavailable))
	if r := rg.get(b, "/private/e"); r.status != 200 {
		t.Fatalf("kept token: %d", r.status)
	}
	rg.fake.setFail(oxdclient.CmdGetAccessTokenByRefreshToken, &oxdclient.Error{Code: "invalid_grant", Description: "x"})
	if r := rg.get(b, "/private/f"); r.status != http.StatusSeeOther {
		t.Fatalf("refused refresh: %d", r.status)
	}
	rm = tr.metrics()
	if sum(rm, metricRefresh, telemetry.KeyResult.String(refreshKept)) != 1 || sum(rm, metricRefresh, telemetry.KeyResult.String(refreshRefused)) != 1 {
		t.Errorf("refresh outcomes: %q", metricLabels(rm))
	}
	if got := strings.Join(results(spanRefresh), ","); got != "kept_token,refused" {
		t.Errorf("refresh results %q", got)
	}
}
