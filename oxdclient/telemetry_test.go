package oxdclient

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/internal/telemetry"
	"github.com/oxdgo/oxd/internal/wire"
)

// telProviders are SDK providers recording into memory.
type telProviders struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelProviders(t *testing.T) *telProviders {
	p := &telProviders{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	p.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans))
	p.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(p.reader))
	t.Cleanup(func() {
		_ = p.tp.Shutdown(context.Background())
		_ = p.mp.Shutdown(context.Background())
	})
	return p
}

// parentCtx returns a context carrying a recorded span (the caller's).
func (p *telProviders) parentCtx(t *testing.T) (context.Context, trace.SpanContext) {
	ctx, s := p.tp.Tracer("app").Start(context.Background(), "app")
	t.Cleanup(func() { s.End() })
	if ts, err := trace.ParseTraceState(`vendor=a"b\c,other=x`); err == nil {
		sc := s.SpanContext().WithTraceState(ts)
		ctx = trace.ContextWithSpanContext(ctx, sc)
		return ctx, sc
	}
	return ctx, s.SpanContext()
}

func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) (string, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.String(), true
		}
	}
	return "", false
}

// TestSocketTraceContextInParams: over a socket that behaves like
// oxd-server 3.1.4 (an unknown top-level key is a generic internal error
// and a closed connection), the trace context travels as "traceparent"
// and "tracestate" keys of params, is the client span's, and every
// command still succeeds on one connection; without a span nothing is
// added.
func TestSocketTraceContextInParams(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		return fakeReply{Body: `{"status":"ok","data":{"oxd_id":"id-1"}}`}
	})
	p := newTelProviders(t)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{}), Config{TracerProvider: p.tp})
	ctx, parent := p.parentCtx(t)
	if _, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "id-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRP(ctx, GetRPParams{}); err != nil { // params without other keys
		t.Fatal(err)
	}
	// A client without providers, no span in the context: nothing added.
	if _, err := New(c.Transport(), Config{}).UpdateSite(context.Background(), UpdateSiteParams{OxdID: "id-1"}); err != nil {
		t.Fatal(err)
	}
	frames := srv.Frames()
	if len(frames) != 3 || srv.Accepted() != 1 || len(srv.Violations()) != 0 {
		t.Fatalf("%d frames on %d connections, violations %q", len(frames), srv.Accepted(), srv.Violations())
	}
	spans := p.spans.Ended()
	for i, f := range frames[:2] {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(f.Raw[wire.PrefixLen:], &top); err != nil || len(top) != 2 || top["command"] == nil || top["params"] == nil {
			t.Fatalf("frame %d: top-level keys %v (%v)", i, top, err)
		}
		var params map[string]any
		if err := json.Unmarshal(f.Params, &params); err != nil {
			t.Fatal(err)
		}
		tp, _ := params["traceparent"].(string)
		if ts, _ := params["tracestate"].(string); ts != parent.TraceState().String() {
			t.Fatalf("frame %d: tracestate %q, want %q", i, ts, parent.TraceState().String())
		}
		// The traceparent names the client span of this command.
		cli := spans[i]
		want := "00-" + parent.TraceID().String() + "-" + cli.SpanContext().SpanID().String() + "-01"
		if tp != want || cli.Parent().SpanID() != parent.SpanID() {
			t.Fatalf("frame %d: traceparent %q, want %q (client span %s)", i, tp, want, cli.Name())
		}
	}
	if strings.Contains(string(frames[2].Raw), "traceparent") {
		t.Fatal("a command without a span carries a traceparent")
	}
}

// TestSocketTraceContextNeverMakesACommandFail: a request that fits in a
// frame only without the trace context is sent without it; params that
// are not an object or already hold a traceparent are left alone.
func TestSocketTraceContextNeverMakesACommandFail(t *testing.T) {
	p := newTelProviders(t)
	ctx, _ := p.parentCtx(t)
	tc := traceContextOf(ctx)
	if tc.parent == "" {
		t.Fatal("no trace context")
	}
	f := &frameBuf{}
	f.enc = json.NewEncoder(&f.buf)
	f.enc.SetEscapeHTML(false)
	// Fill params up to the limit: the frame without the context is 9999
	// units long.
	overhead := len(`{"command":"update_site","params":{"oxd_id":""}}`)
	big := UpdateSiteParams{OxdID: strings.Repeat("a", wire.MaxUnits-overhead)}
	b, err := encodeFrame(f, CmdUpdateSite, &big, tc)
	if err != nil || len(b)-wire.PrefixLen != wire.MaxUnits || strings.Contains(string(b), "traceparent") {
		t.Fatalf("full frame: %d units, %v", len(b)-wire.PrefixLen, err)
	}
	for _, params := range []any{[]string{"x"}, map[string]string{"traceparent": "mine"}} {
		b, err := encodeFrame(f, CmdUpdateSite, params, tc)
		if err != nil || strings.Count(string(b), "traceparent") > 1 || strings.Contains(string(b), tc.parent) {
			t.Fatalf("params %v: %s %v", params, b, err)
		}
	}
	// A tracestate too long or not printable ASCII is left out; the
	// traceparent still goes.
	for _, state := range []string{strings.Repeat("k=v,", 200), "k=\x01"} {
		b, err := encodeFrame(f, CmdGetRP, &GetRPParams{}, traceContext{parent: tc.parent, state: state})
		var env struct{ Params map[string]any }
		if err != nil || json.Unmarshal(b[wire.PrefixLen:], &env) != nil || env.Params["traceparent"] != tc.parent || env.Params["tracestate"] != nil {
			t.Fatalf("tracestate %.20q: %s %v", state, b, err)
		}
	}
}

// TestHTTPSTraceContextHeaders: the HTTPS transport sends traceparent and
// tracestate headers of the client span, and none without a span.
func TestHTTPSTraceContextHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	f := newFakeHTTPS(t, func(command string, params json.RawMessage, token string, r *http.Request) (int, string) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		return 200, `{"status":"ok","data":{"oxd_id":"id-1"}}`
	})
	p := newTelProviders(t)
	c := New(f.transport(t, HTTPSConfig{}), Config{TracerProvider: p.tp})
	ctx, parent := p.parentCtx(t)
	params := UpdateSiteParams{OxdID: "id-1"}
	params.ProtectionAccessToken = "pat-0123456789"
	if _, err := c.UpdateSite(ctx, params); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c.Transport(), Config{}).UpdateSite(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	cli := p.spans.Ended()[0]
	want := "00-" + parent.TraceID().String() + "-" + cli.SpanContext().SpanID().String() + "-01"
	if len(got) != 2 || got[0].Get("Traceparent") != want || got[0].Get("Tracestate") != parent.TraceState().String() {
		t.Fatalf("headers %v, want traceparent %q", got, want)
	}
	if got[1].Get("Traceparent") != "" || got[1].Get("Tracestate") != "" {
		t.Fatal("trace headers without a span")
	}
	if v, _ := spanAttr(cli, telemetry.KeyTransport); v != "https" {
		t.Fatalf("transport %q", v)
	}
}

// TestCommandSpanAndLatency: a command's span carries the command, the
// transport, the bounded result (an oxd error code, "unknown_code" for a
// code the package does not know, never the description), the retries
// after a rejected protection token, and error.type; the latency
// histogram is recorded by command, transport and result.
func TestCommandSpanAndLatency(t *testing.T) {
	p := newTelProviders(t)
	calls := 0
	tr := envelopeTransport(func(command string, params []byte) string {
		calls++
		switch {
		case command == CmdGetClientToken:
			return `{"status":"ok","data":{"access_token":"pat-` + strings.Repeat("x", calls) + `","expires_in":300,"scope":"oxd"}}`
		case command == CmdUMARSCheckAccess && calls == 2:
			return `{"status":"error","data":{"error":"invalid_protection_access_token","error_description":"x"}}`
		case command == CmdUMARSCheckAccess:
			return `{"status":"ok","data":{"access":"granted"}}`
		case command == CmdGetRP:
			return `{"status":"error","data":{"error":"brand_new_code_secret-123","error_description":"secret-description"}}`
		}
		return `{"status":"error","data":{"error":"http_status_502","error_description":"<html>"}}`
	})
	c := New(tr, Config{TracerProvider: p.tp, MeterProvider: p.mp, Protection: &ProtectionCredentials{ClientID: "c", ClientSecret: "s", OPHost: "https://op.example"}})
	ctx := context.Background()
	if _, err := c.UMARSCheckAccess(ctx, UMARSCheckAccessParams{OxdID: "o", RPT: "r", Path: "/p", HTTPMethod: "GET"}); err != nil {
		t.Fatal(err)
	}
	_, errRP := c.GetRP(ctx, GetRPParams{OxdID: "o"})
	_, errUI := c.GetUserInfo(ctx, GetUserInfoParams{OxdID: "o", AccessToken: "at"})
	if errRP == nil || errUI == nil {
		t.Fatal("errors expected")
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range p.spans.Ended() {
		byName[s.Name()] = s
	}
	for name, want := range map[string]map[attribute.Key]string{
		"oxd uma_rs_check_access": {telemetry.KeyCommand: CmdUMARSCheckAccess, telemetry.KeyTransport: "custom", telemetry.KeyResult: "ok", telemetry.KeyRetries: "1"},
		"oxd get_rp":              {telemetry.KeyResult: "unknown_code", "error.type": "unknown_code"},
		"oxd get_user_info":       {telemetry.KeyResult: "http_status_502", "error.type": "http_status_502"},
	} {
		s := byName[name]
		if s == nil {
			t.Fatalf("no span %q", name)
		}
		for k, v := range want {
			if got, _ := spanAttr(s, k); got != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got, v)
			}
		}
		if strings.Contains(s.Status().Description, "secret") || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("%s: status %q, kind %v", name, s.Status().Description, s.SpanKind())
		}
	}
	if s := byName["oxd get_client_token"]; s == nil || s.Parent().SpanID() != byName["oxd uma_rs_check_access"].SpanContext().SpanID() {
		t.Fatal("the protection token's command is not a child of the command it serves")
	}
	var rm metricdata.ResourceMetrics
	if err := p.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != metricCommandDuration {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				cmd, _ := dp.Attributes.Value(telemetry.KeyCommand)
				res, _ := dp.Attributes.Value(telemetry.KeyResult)
				seen[cmd.AsString()+" "+res.AsString()] += dp.Count
				if dp.Attributes.Len() != 3 {
					t.Errorf("labels %v", dp.Attributes.ToSlice())
				}
			}
		}
	}
	want := map[string]uint64{"uma_rs_check_access ok": 1, "get_rp unknown_code": 1, "get_user_info http_status_502": 1, "get_client_token ok": 2}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("latency %s: %d, want %d (all %v)", k, seen[k], v, seen)
		}
	}
}

// TestSocketPoolMetrics: the pool's connections (in use, idle) and the
// waits for a free connection are recorded; Close stops the observation.
func TestSocketPoolMetrics(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdUpdateSite {
			<-release
		}
		return fakeReply{Body: `{"status":"ok","data":{"oxd_id":"id-1"}}`}
	})
	p := newTelProviders(t)
	sock := newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1})
	c := New(sock, Config{TracerProvider: p.tp, MeterProvider: p.mp})
	ctx := context.Background()
	done := make(chan error, 2)
	go func() { _, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "a"}); done <- err }()
	for srv.Accepted() == 0 || len(srv.Frames()) == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := c.GetRP(ctx, GetRPParams{OxdID: "b"}); done <- err }()
	collect := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := p.reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						st, _ := dp.Attributes.Value("state")
						out[m.Name+" "+st.AsString()] = dp.Value
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						out[m.Name] += int64(dp.Count)
					}
				}
			}
		}
		return out
	}
	if m := collect(); m[metricPoolConnections+" in_use"] != 1 || m[metricPoolConnections+" idle"] != 0 {
		t.Fatalf("while a command runs: %v", m)
	}
	// The second command waits for the connection, long enough to be seen.
	awaitWaitingForConn(t)
	time.Sleep(20 * time.Millisecond)
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	m := collect()
	if m[metricPoolConnections+" in_use"] != 0 || m[metricPoolConnections+" idle"] != 1 || m[metricPoolWait] != 2 {
		t.Fatalf("after: %v", m)
	}
	var waited float64
	for _, s := range p.spans.Ended() {
		for _, kv := range s.Attributes() {
			if s.Name() == "oxd get_rp" && kv.Key == keyPoolWait {
				waited = kv.Value.AsFloat64()
			}
		}
	}
	if waited < 0.01 {
		t.Fatalf("the waiting command's span says it waited %vs", waited)
	}
	_ = sock.Close()
	if m := collect(); m[metricPoolConnections+" in_use"] != 0 || m[metricPoolConnections+" idle"] != 0 {
		t.Fatalf("pool still observed after Close: %v", m)
	}
	if _, ok := collect()[metricPoolConnections+" idle"]; ok {
		t.Fatal("pool still observed after Close")
	}
}

// TestResultOfIsBounded: whatever code oxd sends, the telemetry result is
// one of a fixed set.
func TestResultOfIsBounded(t *testing.T) {
	allowed := map[string]bool{"ok": true, "unknown_code": true, "timeout": true, "unavailable": true,
		"protocol": true, "too_large": true, "closed": true, "canceled": true, "error": true}
	for c := range knownCodes {
		allowed[c] = true
	}
	for n := 100; n < 600; n++ {
		allowed[CodeHTTPStatusPrefix+itoa(n)] = true
	}
	for _, code := range []string{"", "x", "secret-token-value", "http_status_", "http_status_99", "http_status_600",
		"http_status_abc", "http_status_1e3", "internal_error\n", strings.Repeat("a", 1000)} {
		if r := resultOf(&Error{Code: code}); !allowed[r] || strings.Contains(r, "secret") {
			t.Errorf("code %.20q: result %q", code, r)
		}
	}
	for _, kind := range []error{ErrUnavailable, ErrTimeout, ErrProtocol, ErrTooLarge, ErrClosed} {
		if r := resultOf(transportErr("x", kind, nil, false)); !allowed[r] || r == "error" {
			t.Errorf("%v: %q", kind, r)
		}
	}
	if resultOf(context.Canceled) != "canceled" || resultOf(nil) != "ok" {
		t.Error("canceled / ok")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
