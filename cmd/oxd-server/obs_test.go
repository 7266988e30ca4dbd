package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/internal/wire"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// jsonRun is the program run in process with JSON logs.
type jsonRun struct {
	logs   lockedBuffer
	cancel context.CancelFunc
	done   chan int
	exited chan struct{}
}

func startJSONRun(t *testing.T, args ...string) *jsonRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &jsonRun{cancel: cancel, done: make(chan int, 1), exited: make(chan struct{})}
	go func() {
		r.done <- run(ctx, append([]string{"-log-format", "json"}, args...), &r.logs)
		close(r.exited)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// field waits for the log line with msg and returns its attribute key.
func (r *jsonRun) field(t *testing.T, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(r.logs.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
				if v, ok := m[key].(string); ok {
					return v
				}
			}
		}
		select {
		case <-r.exited:
			t.Fatalf("oxd-server exited before logging %q:\n%s", msg, r.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("oxd-server did not log %q:\n%s", msg, r.logs.String())
	return ""
}

// stop cancels the run (SIGTERM) and checks it exits 0.
func (r *jsonRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, r.logs.String())
		}
		r.done <- code
	case <-time.After(15 * time.Second):
		t.Error("run did not return")
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// promValue returns the value of the sample whose line starts with name
// and contains every label (name="value") given; -1 when there is none.
func promValue(text, name string, labels ...string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			return v
		}
	}
	return -1
}

// TestMetricsEndpoint starts the server as an operator would (-metrics-listen,
// -log-format json, the development OP), checks /healthz and /readyz, runs a
// login over the socket and a command over the HTTPS extension, and scrapes
// /metrics: the command, OP call, JWKS, protection, sites and connection
// series move. Every log line is JSON, and neither the logs nor the scrape
// hold a secret of the flow.
func TestMetricsEndpoint(t *testing.T) {
	r := startJSONRun(t, "-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0",
		"-dev-op", "-log-level", "debug")
	sockAddr := r.field(t, "oxd socket protocol listening", "addr")
	httpsURL := r.field(t, "oxd HTTPS extension listening", "url")
	issuer := r.field(t, "development OP listening", "issuer")
	metricsURL := r.field(t, "metrics and health listening", "url")
	base := strings.TrimSuffix(metricsURL, "/metrics")

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, _ := get(t, base+"/nothing"); code != http.StatusNotFound {
		t.Fatalf("/nothing: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oxdID, creds := setupSite(t, socketClient(t, sockAddr), issuer)
	c := protectedSocketClient(t, sockAddr, creds)
	au, err := c.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	cb, err := oxdtest.BrowserLogin(ctx, &http.Client{Jar: jar}, au.AuthorizationURL, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	code, state := cb.Query().Get("code"), cb.Query().Get("state")
	tokens, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(code), State: state})
	if err != nil {
		t.Fatal(err)
	}
	// A failure: the state was used (answered without asking the OP).
	if _, err := c.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: oxdclient.Secret(code), State: state}); err == nil {
		t.Fatal("a used code and state were accepted")
	}
	// The HTTPS extension (a keep-alive connection stays open for the scrape).
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test's own server
	defer hc.CloseIdleConnections()
	res, err := hc.Post(httpsURL+"/get-client-token", "application/json", strings.NewReader(
		`{"op_host":"`+issuer+`","client_id":"`+creds.ClientID+`","client_secret":"`+creds.ClientSecret.Reveal()+`","scope":["oxd"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Status string `json:"status"`
		Data   struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil || env.Status != "ok" {
		t.Fatalf("get-client-token over HTTPS: %v %+v", err, env)
	}
	res.Body.Close()

	status, text := get(t, metricsURL)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"oxd_server_command_duration_seconds_count", []string{`oxd_command="get_tokens_by_code"`, `oxd_listener="socket"`, `oxd_result="ok"`}, 1},
		{"oxd_server_command_duration_seconds_count", []string{`oxd_command="get_tokens_by_code"`, `oxd_listener="socket"`, `oxd_result="bad_request"`}, 1},
		{"oxd_server_command_duration_seconds_count", []string{`oxd_command="get_client_token"`, `oxd_listener="https"`, `oxd_result="ok"`}, 1},
		{"oxd_server_command_duration_seconds_bucket", []string{`oxd_command="setup_client"`, `le="+Inf"`}, 1},
		{"oxd_server_op_request_duration_seconds_count", []string{`oxd_op_endpoint="token"`, `http_response_status_code="200"`}, 2},
		{"oxd_server_op_request_duration_seconds_count", []string{`oxd_op_endpoint="jwks"`}, 1},
		{"oxd_server_op_request_duration_seconds_count", []string{`oxd_op_endpoint="registration"`}, 2},
		{"oxd_server_jwks_refreshes_total", []string{`oxd_result="ok"`}, 1},
		{"oxd_server_protection_checks_total", []string{`oxd_cache="miss"`, `oxd_result="ok"`}, 1},
		{"oxd_server_sites", nil, 2},
		{"oxd_server_pending_states", nil, 0},
		{"oxd_server_connections", []string{`oxd_listener="socket"`}, 1},
		{"oxd_server_connections", []string{`oxd_listener="https"`}, 1},
		{"go_goroutines", nil, 1},
	} {
		if v := promValue(text, tc.name, tc.labels...); v < tc.min {
			t.Errorf("%s%v = %v, want at least %v", tc.name, tc.labels, v, tc.min)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
	checkDeployFilesAgainst(t, text)

	// JSON logs only; no secret in the logs or the scrape.
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not JSON: %q", line)
		}
	}
	secrets := map[string]string{
		"client_secret": creds.ClientSecret.Reveal(), "access_token": tokens.AccessToken.Reveal(), "id_token": tokens.IDToken.Reveal(),
		"refresh_token": tokens.RefreshToken.Reveal(), "code": code, "state": state, "https_access_token": env.Data.AccessToken,
		"nonce": au.AuthorizationURL[strings.Index(au.AuthorizationURL, "nonce=")+6:][:20],
	}
	for name, v := range secrets {
		if len(v) < 16 {
			t.Fatalf("secret %s too short to search: %q", name, v)
		}
		for where, s := range map[string]string{"logs": r.logs.String(), "metrics": text} {
			if strings.Contains(s, v) {
				t.Errorf("%s appears in the %s", name, where)
			}
		}
	}
	// Nor an identifier of a site, client or user in the scrape.
	for name, v := range map[string]string{"oxd_id": oxdID, "client_id": creds.ClientID, "user": "alice", "issuer": issuer} {
		if strings.Contains(text, v) {
			t.Errorf("the scrape names the %s %q", name, v)
		}
	}

	// Stopping: /readyz goes 503 before the listeners close, then the
	// metrics listener closes too.
	r.stop(t)
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the metrics listener is still open after the stop")
	}
}

// TestReadyzStoreDown: /readyz answers 503 naming the store while Redis is
// down, and 200 again once it is back; /healthz stays 200.
func TestReadyzStoreDown(t *testing.T) {
	rs := redistest.Start(t)
	r := startJSONRun(t, "-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-store", "redis://"+rs.Addr()+"/0")
	base := strings.TrimSuffix(r.field(t, "metrics and health listening", "url"), "/metrics")
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d %q", code, body)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready: store\n" {
		t.Fatalf("/readyz with Redis down: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d", code)
	}
	rs.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis came back: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadinessProbes: the listener probes fail on a closed port and on a
// TLS server with another certificate.
func TestReadinessProbes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr()
	if err := socketProbe(addr).Check(ctx); err != nil {
		t.Fatalf("open listener: %v", err)
	}
	ln.Close()
	if err := socketProbe(addr).Check(ctx); err == nil {
		t.Fatal("a closed listener passed the socket probe")
	}

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health-check" {
			_, _ = io.WriteString(w, "running")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	own := srv.TLS.Certificates[0]
	if err := httpsProbe(srv.Listener.Addr(), own).Check(ctx); err != nil {
		t.Fatalf("own certificate: %v", err)
	}
	// Another certificate: the server's own with its last byte cut.
	bad := own
	bad.Certificate = [][]byte{append([]byte(nil), own.Certificate[0][:len(own.Certificate[0])-1]...)}
	if err := httpsProbe(srv.Listener.Addr(), bad).Check(ctx); err == nil {
		t.Fatal("the HTTPS probe accepted a certificate that is not the server's")
	}
	if dialAddr(&net.TCPAddr{IP: net.IPv4zero, Port: 9}) != "127.0.0.1:9" || dialAddr(&net.TCPAddr{IP: net.IPv6unspecified, Port: 9}) != "[::1]:9" {
		t.Fatal("a listener on every interface is not probed on loopback")
	}
}

// TestMetricsListenLoopbackOnly: -metrics-listen refuses an address off
// loopback unless -insecure-metrics-any-interface; -log-format is checked.
func TestMetricsListenLoopbackOnly(t *testing.T) {
	for _, a := range []string{"0.0.0.0:9464", ":9464", "192.0.2.1:9464", "[::]:9464", "example.com:9464"} {
		if _, err := parseFlags([]string{"-metrics-listen", a}, io.Discard); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("-metrics-listen %s: %v", a, err)
		}
		if _, err := parseFlags([]string{"-metrics-listen", a, "-insecure-metrics-any-interface"}, io.Discard); err != nil {
			t.Errorf("-metrics-listen %s -insecure-metrics-any-interface: %v", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1:9464", "[::1]:9464", "localhost:9464"} {
		if _, err := parseFlags([]string{"-metrics-listen", a}, io.Discard); err != nil {
			t.Errorf("-metrics-listen %s: %v", a, err)
		}
	}
	if _, err := parseFlags([]string{"-log-format", "xml"}, io.Discard); err == nil {
		t.Error("-log-format xml accepted")
	}
}

// TestTracingFromEnvironment: the OTEL_* variables switch OTLP export on
// and off; other exporters and protocols are refused.
func TestTracingFromEnvironment(t *testing.T) {
	t.Cleanup(func() { getenv = os.Getenv })
	for _, tc := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, bad: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, bad: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
	} {
		env := tc.env
		getenv = func(k string) string { return env[k] }
		on, err := tracingWanted()
		if on != tc.on || (err != nil) != tc.bad {
			t.Errorf("%v: on=%v err=%v", tc.env, on, err)
		}
	}
}

// collector is an OTLP/HTTP trace receiver on loopback.
type collector struct {
	mu    sync.Mutex
	reqs  []*coltracepb.ExportTraceServiceRequest
	ctype []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, &req)
	c.ctype = append(c.ctype, r.Header.Get("Content-Type"))
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// TestOTLPExportFlushedAtStop: with OTEL_EXPORTER_OTLP_ENDPOINT set, a
// command's span (a child of the traceparent the socket client sent inside
// params) reaches the collector, flushed by the graceful stop (the batch
// delay is an hour), with service.name oxd-server.
func TestOTLPExportFlushedAtStop(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	r := startJSONRun(t, "-listen", "127.0.0.1:0", "-insecure-loopback-http")
	addr := r.field(t, "oxd socket protocol listening", "addr")

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame, _ := wire.AppendFrame(nil, []byte(`{"command":"get_client_token","params":{"op_host":"http://127.0.0.1:1","traceparent":"00-`+traceID+`-00f067aa0ba902b7-01"}}`))
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ReadFrame(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	early := len(col.reqs)
	col.mu.Unlock()
	if early != 0 {
		t.Fatalf("spans exported before the stop (%d requests): the test cannot show the flush", early)
	}
	r.stop(t)

	col.mu.Lock()
	defer col.mu.Unlock()
	found := false
	for i, req := range col.reqs {
		if col.ctype[i] != "application/x-protobuf" {
			t.Errorf("content type %q", col.ctype[i])
		}
		for _, rs := range req.ResourceSpans {
			svc := ""
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					svc = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if sp.Name == "oxd-server get_client_token" && fmt.Sprintf("%x", sp.TraceId) == traceID && fmt.Sprintf("%x", sp.ParentSpanId) == "00f067aa0ba902b7" {
						found = true
						if svc != "oxd-server" {
							t.Errorf("service.name %q", svc)
						}
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("the collector did not receive the command's span (%d requests)", len(col.reqs))
	}
}

// checkDeployFilesAgainst checks the Grafana dashboard (valid JSON, unique
// panel ids, every query with a data source) and that every oxd-server
// metric the dashboard and the alert rules query is in the scrape.
func checkDeployFilesAgainst(t *testing.T, scrape string) {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/oxd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr       string          `json:"expr"`
				Datasource json.RawMessage `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || len(tg.Datasource) == 0 {
				t.Errorf("dashboard: panel %q has a query without expression or data source", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	alerts, err := os.ReadFile("../../deploy/prometheus/oxd-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`oxd_[a-z_]+`)
	used := map[string]bool{}
	for _, src := range append(exprs, string(alerts)) {
		for _, n := range names.FindAllString(src, -1) {
			if !strings.HasPrefix(n, "oxd_op_") && !strings.HasPrefix(n, "oxd_command") && n != "oxd_result" && n != "oxd_reason" &&
				n != "oxd_route" && n != "oxd_cache" && n != "oxd_listener" && n != "oxd_transport" {
				used[n] = true // a metric, not a label
			}
		}
	}
	if len(used) < 20 {
		t.Errorf("the dashboard and rules query only %d metrics: %v", len(used), used)
	}
	// The application's metrics (oxd middleware and oxdclient), as the
	// OpenTelemetry Prometheus exporter names the agreed instruments.
	app := appScrape(t)
	for n := range used {
		text := scrape
		if !strings.HasPrefix(n, "oxd_server_") {
			text = app
		}
		if !strings.Contains(text, "\n"+n+"{") && !strings.Contains(text, "\n"+n+" ") {
			t.Errorf("the dashboard or the alert rules query %s, which the exposition does not have", n)
		}
	}
}

// appScrape exposes the application side's instruments (names and units
// of the oxd middleware and oxdclient) through the Prometheus exporter.
func appScrape(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer mp.Shutdown(context.Background())
	m := mp.Meter("app")
	ctx := context.Background()
	for name, unit := range map[string]string{
		"oxd.client.command.duration": "s", "oxd.client.pool.wait.duration": "s",
	} {
		h, _ := m.Float64Histogram(name, metric.WithUnit(unit))
		h.Record(ctx, 0.01)
	}
	for name, unit := range map[string]string{
		"oxd.login.started": "{login}", "oxd.login.completed": "{login}", "oxd.login.failures": "{login}",
		"oxd.refresh": "{refresh}", "oxd.logout": "{logout}", "oxd.backchannel_logout": "{request}", "oxd.uma.decisions": "{decision}",
	} {
		c, _ := m.Int64Counter(name, metric.WithUnit(unit))
		c.Add(ctx, 1)
	}
	g, _ := m.Int64Gauge("oxd.uma.grant_cache.size", metric.WithUnit("{grant}"))
	g.Record(ctx, 1)
	u, _ := m.Int64UpDownCounter("oxd.client.pool.connections", metric.WithUnit("{connection}"))
	u.Add(ctx, 1)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	_, text := get(t, srv.URL)
	return text
}

// TestRunObservabilityFailures: a busy metrics address and an unsupported
// trace exporter stop the start with a message (exit status 1), after
// which nothing is left listening.
func TestRunObservabilityFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var out lockedBuffer
	if code := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-metrics-listen", busy.Addr().String()}, &out); code != 1 ||
		!strings.Contains(out.String(), "metrics listener") {
		t.Fatalf("busy metrics address: exit %d\n%s", code, out.String())
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	out = lockedBuffer{}
	if code := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, &out); code != 1 ||
		!strings.Contains(out.String(), "OTEL_TRACES_EXPORTER") {
		t.Fatalf("zipkin: exit %d\n%s", code, out.String())
	}
}
