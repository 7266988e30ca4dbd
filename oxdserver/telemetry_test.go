package oxdserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/internal/wire"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest/devop"
)

// opSeen records the trace context headers each request to the OP carried.
type opSeen struct {
	mu   sync.Mutex
	reqs []opReq
}

type opReq struct {
	method, path, traceparent string
}

func (o *opSeen) add(r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reqs = append(o.reqs, opReq{r.Method, r.URL.Path, r.Header.Get("traceparent")})
}

func (o *opSeen) all() []opReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]opReq(nil), o.reqs...)
}

// telFixture is an engine with recording tracer and meter providers, JSON
// logs in a buffer, the development OP behind a real HTTP listener (which
// records the traceparent of every request), the socket listener and the
// HTTPS extension.
type telFixture struct {
	op       *devop.OP
	seen     *opSeen
	engine   *oxdserver.Engine
	spans    *tracetest.SpanRecorder
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
	logs     *syncBuffer
	sockAddr string
	httpsURL string
	https    *http.Client
}

func newTelFixture(t *testing.T) *telFixture {
	t.Helper()
	f := &telFixture{seen: &opSeen{}, spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), logs: &syncBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.op, err = devop.NewOP("http://"+ln.Addr().String(), devop.OPConfig{})
	require.NoError(t, err)
	opSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.seen.add(r)
		f.op.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = opSrv.Serve(ln) }()
	t.Cleanup(func() { f.op.Close(); _ = opSrv.Close() })

	f.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	f.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.engine, err = oxdserver.New(oxdserver.Config{
		InsecureAllowLoopbackHTTP: true, TracerProvider: f.tp, MeterProvider: f.mp, Logger: log,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.engine.Close() })

	sock := &oxdserver.SocketServer{Engine: f.engine, Logger: log}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.sockAddr = sln.Addr().String()
	go func() { _ = sock.Serve(sln) }()
	t.Cleanup(func() { _ = sock.Close() })

	hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(f.engine, oxdserver.HTTPSConfig{Logger: log}))
	t.Cleanup(hs.Close)
	f.httpsURL = hs.URL
	f.https = hs.Client()
	return f
}

// sockClient speaks the socket protocol and adds a traceparent to params.
type sockClient struct {
	c  net.Conn
	br *bufio.Reader
}

func (f *telFixture) dialSocket(t *testing.T) *sockClient {
	t.Helper()
	c, err := net.Dial("tcp", f.sockAddr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &sockClient{c: c, br: bufio.NewReader(c)}
}

// do sends command with params (a struct or map) plus the given extra
// params keys, and decodes the answer's data into out.
func (s *sockClient) do(t *testing.T, command string, params any, extra map[string]any, out any) *oxdclient.Error {
	t.Helper()
	b, err := json.Marshal(params)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for k, v := range extra {
		m[k] = v
	}
	env, err := json.Marshal(map[string]any{"command": command, "params": m})
	require.NoError(t, err)
	frame, err := wire.AppendFrame(nil, wire.EscapeNonASCII(env))
	require.NoError(t, err)
	require.NoError(t, s.c.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = s.c.Write(frame)
	require.NoError(t, err)
	payload, err := wire.ReadFrame(s.br)
	require.NoError(t, err)
	var resp struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(payload, &resp))
	if resp.Status != "ok" {
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		require.NoError(t, json.Unmarshal(resp.Data, &oe))
		return &oxdclient.Error{Code: oe.Error, Description: oe.Description}
	}
	if out != nil {
		require.NoError(t, json.Unmarshal(resp.Data, out))
	}
	return nil
}

// traceparentOf returns the W3C traceparent of ctx's span.
func traceparentOf(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// session is the outcome of a full login through the fixture.
type session struct {
	setup  oxdclient.SetupClientResponse
	pat    string
	tokens oxdclient.GetTokensByCodeResponse
	code   string
	state  string
	nonce  string
	// appLogin is the application's span around get_tokens_by_code.
	appLogin trace.SpanContext
	// appUserInfo is the application's span around the HTTPS get_user_info.
	appUserInfo trace.SpanContext
}

// login runs setup_client, get_client_token, get_authorization_url and
// get_tokens_by_code over the socket listener, then get_user_info over the
// HTTPS extension, each under an application span whose traceparent the
// request carries.
func (f *telFixture) login(t *testing.T, extra map[string]any) *session {
	t.Helper()
	ctx := testCtx(t)
	app := f.tp.Tracer("app")
	sc := f.dialSocket(t)
	s := &session{}
	with := func(ctx context.Context) map[string]any {
		m := map[string]any{"traceparent": traceparentOf(ctx)}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	actx, span := app.Start(ctx, "app setup")
	require.Nil(t, sc.do(t, oxdclient.CmdSetupClient, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: f.op.Issuer(), AuthorizationRedirectURI: "https://rp.example.test/callback",
		PostLogoutRedirectURI: "https://rp.example.test/bye", Scope: []string{"openid", "profile", "email"},
	}}, with(actx), &s.setup))
	span.End()

	var tok oxdclient.TokenResponse
	actx, span = app.Start(ctx, "app client token")
	require.Nil(t, sc.do(t, oxdclient.CmdGetClientToken, oxdclient.GetClientTokenParams{
		ClientID: s.setup.ClientID, ClientSecret: s.setup.ClientSecret, OPHost: f.op.Issuer(), Scope: []string{"openid", "oxd"},
	}, with(actx), &tok))
	span.End()
	s.pat = tok.AccessToken.Reveal()
	require.NotEmpty(t, s.pat)

	var au oxdclient.GetAuthorizationURLResponse
	actx, span = app.Start(ctx, "app login start")
	require.Nil(t, sc.do(t, oxdclient.CmdGetAuthorizationURL, map[string]any{"oxd_id": s.setup.OxdID, "protection_access_token": s.pat}, with(actx), &au))
	span.End()
	u, err := url.Parse(au.AuthorizationURL)
	require.NoError(t, err)
	s.nonce = u.Query().Get("nonce")
	cb, err := f.op.Login(ctx, au.AuthorizationURL, "alice", "alice-password")
	require.NoError(t, err)
	s.code, s.state = cb.Query().Get("code"), cb.Query().Get("state")
	require.NotEmpty(t, s.code)

	actx, span = app.Start(ctx, "app callback")
	s.appLogin = span.SpanContext()
	require.Nil(t, sc.do(t, oxdclient.CmdGetTokensByCode, map[string]any{
		"oxd_id": s.setup.OxdID, "code": s.code, "state": s.state, "protection_access_token": s.pat,
	}, with(actx), &s.tokens))
	span.End()
	require.NotEmpty(t, s.tokens.AccessToken.Reveal())

	actx, span = app.Start(ctx, "app userinfo")
	s.appUserInfo = span.SpanContext()
	body, err := json.Marshal(map[string]any{"oxd_id": s.setup.OxdID, "access_token": s.tokens.AccessToken.Reveal()})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.httpsURL+"/get-user-info", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.pat)
	propagation.TraceContext{}.Inject(actx, propagation.HeaderCarrier(req.Header))
	res, err := f.https.Do(req)
	require.NoError(t, err)
	var env struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&env))
	res.Body.Close()
	require.Equal(t, "ok", env.Status)
	span.End()
	return s
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.String()
		}
	}
	return ""
}

func childrenOf(spans []sdktrace.ReadOnlySpan, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Parent().SpanID() == parent.SpanID() && s.Parent().TraceID() == parent.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// TestTraceSocketAndHTTPS: a login over the real socket listener and a
// get_user_info over the HTTPS extension, each carrying the application's
// traceparent, yield server spans that are children of the application's
// spans, the OP calls are client spans below them, and the OP receives a
// traceparent naming each OP call span.
func TestTraceSocketAndHTTPS(t *testing.T) {
	f := newTelFixture(t)
	s := f.login(t, nil)
	spans := f.spans.Ended()

	// Socket: get_tokens_by_code under the application's callback span.
	cmds := childrenOf(spans, s.appLogin)
	require.Len(t, cmds, 1, "one server span below the application's span")
	cmd := cmds[0]
	assert.Equal(t, "oxd-server get_tokens_by_code", cmd.Name())
	assert.Equal(t, trace.SpanKindServer, cmd.SpanKind())
	assert.True(t, cmd.Parent().IsRemote(), "the parent came over the wire")
	assert.Equal(t, "socket", attrOf(cmd, "oxd.listener"))
	assert.Equal(t, "get_tokens_by_code", attrOf(cmd, "oxd.command"))
	assert.Equal(t, "ok", attrOf(cmd, "oxd.result"))
	kinds := map[string]sdktrace.ReadOnlySpan{}
	for _, c := range childrenOf(spans, cmd.SpanContext()) {
		assert.Equal(t, trace.SpanKindClient, c.SpanKind())
		kinds[attrOf(c, "oxd.op.endpoint")] = c
	}
	require.Contains(t, kinds, "token", "the token endpoint call is a child of the command span")
	tokenSpan := kinds["token"]
	assert.Equal(t, "POST token", tokenSpan.Name())
	assert.Equal(t, "POST", attrOf(tokenSpan, "http.request.method"))
	assert.Equal(t, "200", attrOf(tokenSpan, "http.response.status_code"))
	assert.Equal(t, "127.0.0.1", attrOf(tokenSpan, "server.address"))
	assert.NotEmpty(t, attrOf(tokenSpan, "server.port"))
	assert.Equal(t, s.appLogin.TraceID(), tokenSpan.SpanContext().TraceID(), "one trace from the application to the OP's token endpoint")

	// HTTPS: get_user_info under the application's span, the userinfo call below.
	cmds = childrenOf(spans, s.appUserInfo)
	require.Len(t, cmds, 1)
	assert.Equal(t, "oxd-server get_user_info", cmds[0].Name())
	assert.Equal(t, "https", attrOf(cmds[0], "oxd.listener"))
	assert.Equal(t, trace.SpanKindServer, cmds[0].SpanKind())
	var userinfo sdktrace.ReadOnlySpan
	for _, c := range childrenOf(spans, cmds[0].SpanContext()) {
		if attrOf(c, "oxd.op.endpoint") == "userinfo" {
			userinfo = c
		}
	}
	require.NotNil(t, userinfo, "the userinfo call is a child of the HTTPS command span")

	// The OP saw every OP call span as the parent of its request.
	seen := map[string]opReq{}
	for _, r := range f.seen.all() {
		require.NotEmpty(t, r.traceparent, "%s %s reached the OP without traceparent", r.method, r.path)
		seen[r.traceparent] = r
	}
	opCalls := 0
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindClient {
			continue
		}
		opCalls++
		tp := fmt.Sprintf("00-%s-%s-01", sp.SpanContext().TraceID(), sp.SpanContext().SpanID())
		r, ok := seen[tp]
		require.True(t, ok, "the OP did not receive the traceparent of span %q", sp.Name())
		assert.Equal(t, strings.SplitN(sp.Name(), " ", 2)[0], r.method)
	}
	assert.Equal(t, len(f.seen.all()), opCalls, "one client span per request the OP received")
	_, ok := seen[fmt.Sprintf("00-%s-%s-01", s.appLogin.TraceID(), tokenSpan.SpanContext().SpanID())]
	assert.True(t, ok, "the token endpoint received the login's trace")
}

// TestTraceContextMalformed: a missing, malformed, oversized or ill-typed
// traceparent in params or headers makes a root span and never fails the
// command.
func TestTraceContextMalformed(t *testing.T) {
	f := newTelFixture(t)
	sc := f.dialSocket(t)
	valid := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for name, extra := range map[string]map[string]any{
		"garbage":         {"traceparent": "garbage"},
		"number":          {"traceparent": 42},
		"object":          {"traceparent": map[string]any{"a": 1}},
		"oversized":       {"traceparent": valid + strings.Repeat("-ab", 3000)},
		"zero ids":        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
		"upper case":      {"traceparent": strings.ToUpper(valid)},
		"huge tracestate": {"traceparent": valid, "tracestate": strings.Repeat("a=b,", 1000)},
		// Well-formed but over the bounds: a future version's longer
		// traceparent (accepted by the parser) and a tracestate of five
		// 200-character members.
		"long future version": {"traceparent": "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-" + strings.Repeat("a", 300)},
		"long tracestate":     {"traceparent": valid, "tracestate": longTracestate()},
		"tracestate alone":    {"tracestate": "a=b"},
	} {
		var out oxdclient.TokenResponse
		oe := sc.do(t, oxdclient.CmdGetClientToken, oxdclient.GetClientTokenParams{OPHost: f.op.Issuer()}, extra, &out)
		// The answer is the one without trace context: client_id is missing.
		require.NotNil(t, oe, name)
		assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code, name)
	}
	var roots, children int
	for _, s := range f.spans.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		if s.Parent().IsValid() {
			children++
			// Only the huge tracestate case has a valid traceparent.
			assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.Parent().TraceID().String())
			assert.Empty(t, s.Parent().TraceState().String(), "an oversized tracestate is dropped")
		} else {
			roots++
		}
	}
	assert.Equal(t, 8, roots)
	assert.Equal(t, 2, children)
	assert.NotContains(t, f.logs.String(), "0af7651916cd43dd8448eb211c80319c", "trace context is never logged")

	// HTTPS: oversized header.
	req, err := http.NewRequest(http.MethodPost, f.httpsURL+"/get-client-token", strings.NewReader(`{"op_host":"`+f.op.Issuer()+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", valid+strings.Repeat("-ab", 100))
	res, err := f.https.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	last := f.spans.Ended()[len(f.spans.Ended())-1]
	assert.Equal(t, "oxd-server get_client_token", last.Name())
	assert.False(t, last.Parent().IsValid(), "an oversized traceparent header is ignored")
}

// TestTraceParamsIgnoredByEveryCommand: traceparent and tracestate inside
// params do not change the answer of any command (the engine's parameter
// decoding ignores them), for empty params and for params naming a site.
func TestTraceParamsIgnoredByEveryCommand(t *testing.T) {
	f := newTelFixture(t)
	var setup oxdclient.SetupClientResponse
	require.NoError(t, f.engine.Do(testCtx(t), oxdclient.CmdSetupClient, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: f.op.Issuer(), AuthorizationRedirectURI: "https://rp.example.test/callback", Scope: []string{"openid"},
	}}, &setup))
	tc := map[string]any{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=x"}
	for _, cmd := range oxdserver.Commands() {
		if cmd == oxdclient.CmdRemoveSite {
			continue // it would remove the site for the next commands
		}
		for _, base := range []map[string]any{{}, {"oxd_id": setup.OxdID}} {
			with := map[string]any{}
			for k, v := range base {
				with[k] = v
			}
			for k, v := range tc {
				with[k] = v
			}
			errA := f.engine.Do(testCtx(t), cmd, base, nil)
			errB := f.engine.Do(testCtx(t), cmd, with, nil)
			codeOf := func(err error) string {
				if err == nil {
					return "ok"
				}
				oe, ok := err.(*oxdclient.Error)
				require.True(t, ok, "%s: %T", cmd, err)
				return oe.Code + " " + oe.Description
			}
			assert.Equal(t, codeOf(errA), codeOf(errB), "%s with %v", cmd, base)
			assert.NotContains(t, codeOf(errB), "malformed", "%s: the trace keys broke the parameters", cmd)
		}
	}
}

// metricsOf collects the reader's metrics by name.
func metricsOf(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func histCount(m metricdata.Metrics, match map[string]string) uint64 {
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		return 0
	}
	var n uint64
	for _, dp := range h.DataPoints {
		if attrsMatch(dp.Attributes, match) {
			n += dp.Count
		}
	}
	return n
}

func sumOf(m metricdata.Metrics, match map[string]string) int64 {
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			if attrsMatch(dp.Attributes, match) {
				n += dp.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if attrsMatch(dp.Attributes, match) {
				n += dp.Value
			}
		}
	}
	return n
}

func attrsMatch(set attribute.Set, match map[string]string) bool {
	for k, v := range match {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

// TestMetricsMoveDuringLogin: the command and OP call histograms, the JWKS
// and protection check counters and the gauges move as a login runs.
func TestMetricsMoveDuringLogin(t *testing.T) {
	f := newTelFixture(t)
	before := metricsOf(t, f.reader)
	assert.Equal(t, int64(0), sumOf(before["oxd.server.sites"], nil))

	sc := f.dialSocket(t)
	// The connection is counted once the server admitted it.
	require.NotNil(t, sc.do(t, "no_such_command_at_all", map[string]any{}, nil, nil))
	m := metricsOf(t, f.reader)
	assert.Equal(t, int64(1), sumOf(m["oxd.server.connections"], map[string]string{"oxd.listener": "socket"}))

	f.login(t, nil)
	m = metricsOf(t, f.reader)
	cmd := m["oxd.server.command.duration"]
	for _, c := range []string{"setup_client", "get_client_token", "get_authorization_url", "get_tokens_by_code"} {
		assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": c, "oxd.listener": "socket", "oxd.result": "ok"}), c)
	}
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "get_user_info", "oxd.listener": "https", "oxd.result": "ok"}))
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "unknown", "oxd.listener": "socket", "oxd.result": "unsupported_operation"}))
	op := m["oxd.server.op.request.duration"]
	// setup_client registers two clients: the setup client and the site.
	assert.Equal(t, uint64(2), histCount(op, map[string]string{"oxd.op.endpoint": "registration", "http.response.status_code": "201"})+
		histCount(op, map[string]string{"oxd.op.endpoint": "registration", "http.response.status_code": "200"}))
	assert.GreaterOrEqual(t, histCount(op, map[string]string{"oxd.op.endpoint": "token", "http.response.status_code": "200"}), uint64(2))
	assert.Equal(t, uint64(1), histCount(op, map[string]string{"oxd.op.endpoint": "userinfo", "http.response.status_code": "200"}))
	assert.GreaterOrEqual(t, histCount(op, map[string]string{"oxd.op.endpoint": "discovery"}), uint64(1))
	assert.Equal(t, int64(1), sumOf(m["oxd.server.jwks.refreshes"], map[string]string{"oxd.result": "ok"}))
	prot := m["oxd.server.protection.checks"]
	assert.Equal(t, int64(1), sumOf(prot, map[string]string{"oxd.result": "ok", "oxd.cache": "miss"}))
	assert.Equal(t, int64(2), sumOf(prot, map[string]string{"oxd.result": "ok", "oxd.cache": "hit"}))
	assert.GreaterOrEqual(t, sumOf(m["oxd.server.sites"], nil), int64(2), "setup_client stores the setup site and the site")
	assert.Equal(t, int64(0), sumOf(m["oxd.server.pending_states"], nil), "the login took its state and nonce")

	// A login in progress holds pending values; an OP that is down shows
	// as error.type unreachable.
	require.NoError(t, f.engine.Do(testCtx(t), oxdclient.CmdGetAuthorizationURL, map[string]any{"oxd_id": f.firstSite(t)}, nil))
	m = metricsOf(t, f.reader)
	assert.Equal(t, int64(1), sumOf(m["oxd.server.pending_states"], nil), "one record per pending login (state, nonce and PKCE verifier)")
	assert.Equal(t, uint64(1), histCount(m["oxd.server.command.duration"], map[string]string{"oxd.command": "get_authorization_url", "oxd.listener": "inprocess"}))

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String()
	require.NoError(t, dead.Close())
	err = f.engine.Do(testCtx(t), oxdclient.CmdGetClientToken, oxdclient.GetClientTokenParams{ClientID: "x", ClientSecret: "y", OPHost: deadURL}, nil)
	require.Error(t, err)
	m = metricsOf(t, f.reader)
	assert.Equal(t, uint64(1), histCount(m["oxd.server.op.request.duration"], map[string]string{"oxd.op.endpoint": "discovery", "error.type": "unreachable"}))
	assert.Equal(t, uint64(1), histCount(m["oxd.server.command.duration"], map[string]string{"oxd.command": "get_client_token", "oxd.result": "no_connect_discovery_response"}))
}

func (f *telFixture) firstSite(t *testing.T) string {
	t.Helper()
	sites, err := f.engine.Store().ListSites(testCtx(t))
	require.NoError(t, err)
	for _, s := range sites {
		if !s.IsSetupClient {
			return s.OxdID
		}
	}
	t.Fatal("no site")
	return ""
}

// TestMetricsCardinalityBounded: 10,000 garbage command names (in process),
// 300 over the socket and 300 unknown HTTPS paths collapse to the fixed
// label "unknown"; an OP's odd statuses collapse to classes.
func TestMetricsCardinalityBounded(t *testing.T) {
	f := newTelFixture(t)
	ctx := testCtx(t)
	for i := range 10000 {
		_, _ = f.engine.Execute(ctx, oxdserver.Request{Command: fmt.Sprintf("garbage-%d-%x", i, i*7919), Params: json.RawMessage(`{}`)})
	}
	sc := f.dialSocket(t)
	for i := range 300 {
		oe := sc.do(t, fmt.Sprintf("sock-garbage-%d", i), map[string]any{}, nil, nil)
		require.NotNil(t, oe)
		require.Equal(t, oxdclient.CodeUnsupportedOperation, oe.Code)
	}
	for i := range 300 {
		res, err := f.https.Post(f.httpsURL+fmt.Sprintf("/path-%d", i), "application/json", strings.NewReader("{}"))
		require.NoError(t, err)
		res.Body.Close()
	}
	m := metricsOf(t, f.reader)
	h := m["oxd.server.command.duration"].Data.(metricdata.Histogram[float64])
	labels := map[string]bool{}
	for _, dp := range h.DataPoints {
		v, _ := dp.Attributes.Value("oxd.command")
		labels[v.String()] = true
		for _, kv := range dp.Attributes.ToSlice() {
			assert.NotContains(t, kv.Value.String(), "garbage", "a raw command name became a label")
			assert.NotContains(t, kv.Value.String(), "path-", "a raw path became a label")
		}
	}
	assert.Equal(t, map[string]bool{"unknown": true}, labels)
	assert.LessOrEqual(t, len(h.DataPoints), 3, "inprocess, socket and https series only")
	assert.Equal(t, uint64(10000), histCount(m["oxd.server.command.duration"], map[string]string{"oxd.listener": "inprocess"}))
}

// telemetryText is every string the telemetry holds: span names,
// attributes, events, statuses, links and resources; metric names and
// label keys and values; the JSON logs.
func (f *telFixture) telemetryText(t *testing.T) map[string]string {
	t.Helper()
	var spans strings.Builder
	kvs := func(list []attribute.KeyValue) {
		for _, a := range list {
			fmt.Fprintf(&spans, "%s=%s\n", a.Key, a.Value.String())
		}
	}
	for _, s := range f.spans.Ended() {
		fmt.Fprintf(&spans, "%s %s %s\n", s.Name(), s.Status().Description, s.SpanContext().TraceState())
		kvs(s.Attributes())
		kvs(s.Resource().Attributes())
		for _, e := range s.Events() {
			spans.WriteString(e.Name + "\n")
			kvs(e.Attributes)
		}
		for _, l := range s.Links() {
			kvs(l.Attributes)
		}
	}
	var metrics strings.Builder
	for name, m := range metricsOf(t, f.reader) {
		metrics.WriteString(name + " " + m.Description + "\n")
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Gauge[int64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		default:
			t.Fatalf("metric %s has an unchecked data type %T", name, m.Data)
		}
		for _, s := range sets {
			for _, kv := range s.ToSlice() {
				fmt.Fprintf(&metrics, "%s=%s\n", kv.Key, kv.Value.String())
			}
		}
	}
	return map[string]string{"spans": spans.String(), "metrics": metrics.String(), "logs": f.logs.String()}
}

// leaks reports every secret (or its first 24 characters) found in text.
func leaks(text map[string]string, secrets map[string]string) []string {
	var out []string
	for where, s := range text {
		for name, v := range secrets {
			probes := []string{v}
			if len(v) > 24 {
				probes = append(probes, v[:24])
			}
			for _, p := range probes {
				if strings.Contains(s, p) {
					out = append(out, name+" in "+where)
					break
				}
			}
		}
	}
	return out
}

// TestTelemetryHoldsNoSecret runs a full flow (setup, protection token,
// login, userinfo over HTTPS, refresh, introspection, a failed code
// exchange) with a secret planted in every command's params and in a
// request header, then searches every span, span event, metric label and
// JSON log line for every secret the flow issued or carried. The search
// itself is shown to find a secret planted in each channel.
func TestTelemetryHoldsNoSecret(t *testing.T) {
	const planted = "PLANTED-s3cr3t-0f6c1d9e2b7a4c58"
	f := newTelFixture(t)
	s := f.login(t, map[string]any{"password": planted, "client_secret_extra": planted})
	ctx := testCtx(t)
	sc := f.dialSocket(t)
	var ref oxdclient.TokenResponse
	require.Nil(t, sc.do(t, oxdclient.CmdGetAccessTokenByRefreshToken, map[string]any{
		"oxd_id": s.setup.OxdID, "refresh_token": s.tokens.RefreshToken.Reveal(), "protection_access_token": s.pat,
	}, map[string]any{"password": planted}, &ref))
	require.Nil(t, sc.do(t, oxdclient.CmdIntrospectAccessToken, map[string]any{
		"oxd_id": s.setup.OxdID, "access_token": ref.AccessToken.Reveal(), "protection_access_token": s.pat,
	}, nil, nil))
	// A replayed code fails at the OP: the error path holds no secret either.
	oe := sc.do(t, oxdclient.CmdGetTokensByCode, map[string]any{
		"oxd_id": s.setup.OxdID, "code": s.code, "state": s.state, "protection_access_token": s.pat,
	}, nil, nil)
	require.NotNil(t, oe)
	// A wrong protection token.
	oe = sc.do(t, oxdclient.CmdGetAuthorizationURL, map[string]any{"oxd_id": s.setup.OxdID, "protection_access_token": planted}, nil, nil)
	require.NotNil(t, oe)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.httpsURL+"/get-user-info", strings.NewReader(`{"oxd_id":"`+s.setup.OxdID+`","access_token":"`+planted+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+planted)
	req.Header.Set("X-Secret", planted)
	res, err := f.https.Do(req)
	require.NoError(t, err)
	res.Body.Close()

	secrets := map[string]string{
		"planted": planted, "client_secret": s.setup.ClientSecret.Reveal(), "registration_access_token": s.setup.ClientRegistrationAccessToken.Reveal(),
		"protection_token": s.pat, "access_token": s.tokens.AccessToken.Reveal(), "id_token": s.tokens.IDToken.Reveal(),
		"refresh_token": s.tokens.RefreshToken.Reveal(), "code": s.code, "state": s.state, "nonce": s.nonce,
		"refreshed_access_token": ref.AccessToken.Reveal(), "refreshed_refresh_token": ref.RefreshToken.Reveal(),
	}
	for k, v := range secrets {
		if v == "" {
			delete(secrets, k) // e.g. no refresh token rotation
		}
	}
	require.GreaterOrEqual(t, len(secrets), 10)
	text := f.telemetryText(t)
	require.NotEmpty(t, text["spans"])
	require.NotEmpty(t, text["metrics"])
	require.Contains(t, text["logs"], `"msg":"oxd command"`, "the debug logs were collected")
	assert.Empty(t, leaks(text, secrets))

	// The search finds a secret planted in each channel.
	_, span := f.tp.Tracer("plant").Start(ctx, "planted span")
	span.AddEvent("event", trace.WithAttributes(attribute.String("k", "x"+secrets["id_token"])))
	span.End()
	assert.Equal(t, []string{"id_token in spans"}, leaks(f.telemetryText(t), secrets))
	f.logs.Write([]byte(`{"msg":"oops","v":"` + s.state + `"}` + "\n"))
	assert.ElementsMatch(t, []string{"id_token in spans", "state in logs"}, leaks(f.telemetryText(t), secrets))
	c, err := f.mp.Meter("plant").Int64Counter("planted")
	require.NoError(t, err)
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("oxd.result", s.pat[:30])))
	assert.ElementsMatch(t, []string{"id_token in spans", "state in logs", "protection_token in metrics"}, leaks(f.telemetryText(t), secrets))
}

// TestTraceHTTPSBehindTracingMiddleware: when a tracing middleware in front
// of the HTTPS handler already started a span, the command span is its
// child and the headers are not extracted a second time.
func TestTraceHTTPSBehindTracingMiddleware(t *testing.T) {
	f := newTelFixture(t)
	var mw trace.SpanContext
	h := oxdserver.NewHTTPSHandler(f.engine, oxdserver.HTTPSConfig{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := f.tp.Tracer("middleware").Start(r.Context(), "middleware")
		mw = span.SpanContext()
		h.ServeHTTP(w, r.WithContext(ctx))
		span.End()
	}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/get-client-token", strings.NewReader(`{"op_host":"`+f.op.Issuer()+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	cmds := childrenOf(f.spans.Ended(), mw)
	require.Len(t, cmds, 1)
	assert.Equal(t, "oxd-server get_client_token", cmds[0].Name())
	assert.NotEqual(t, "0af7651916cd43dd8448eb211c80319c", cmds[0].SpanContext().TraceID().String())
}

// TestMetricsRefusalsAndFailedChecks: HTTPS requests refused before the
// engine (no Authorization header, wrong content type) and failed
// protection checks are counted with fixed results.
func TestMetricsRefusalsAndFailedChecks(t *testing.T) {
	f := newTelFixture(t)
	s := f.login(t, nil)
	for _, ct := range []string{"application/json", "text/plain"} {
		req, err := http.NewRequest(http.MethodPost, f.httpsURL+"/get-user-info", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ct)
		if ct == "text/plain" {
			req.Header.Set("Authorization", "Bearer "+s.pat)
		}
		res, err := f.https.Do(req)
		require.NoError(t, err)
		res.Body.Close()
	}
	sc := f.dialSocket(t)
	oe := sc.do(t, oxdclient.CmdGetAuthorizationURL, map[string]any{"oxd_id": s.setup.OxdID, "protection_access_token": "not-a-token-0123456789"}, nil, nil)
	require.NotNil(t, oe)
	m := metricsOf(t, f.reader)
	cmd := m["oxd.server.command.duration"]
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "get_user_info", "oxd.listener": "https", "oxd.result": "forbidden"}))
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "get_user_info", "oxd.listener": "https", "oxd.result": "unsupported_media_type"}))
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "get_authorization_url", "oxd.listener": "socket", "oxd.result": oe.Code}))
	assert.Equal(t, int64(1), sumOf(m["oxd.server.protection.checks"], map[string]string{"oxd.result": oe.Code, "oxd.cache": "miss"}))
}

// longTracestate is a well-formed tracestate of 1,009 characters.
func longTracestate() string {
	m := make([]string, 5)
	for i := range m {
		m[i] = fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 198))
	}
	return strings.Join(m, ",")
}
