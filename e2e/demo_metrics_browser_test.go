package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/oxdgo/oxd/e2e/harness"
)

// TestDemoMetricsDashboard is the operator's walk-through of the README's
// "Try it with the demo": cmd/oxd-server with -metrics-listen, the demo
// (a process, with -metrics-listen and -oxd pointing at that server) used
// in Chromium (a login, an access-token refresh, a UMA decision, a login
// whose callback state was tampered with, a sign-out), then both /metrics
// are scraped: the login counters, the failure by reason and the client
// latency histogram moved in the demo, the engine's command and OP
// latency in oxd-server, and every metric the Grafana dashboard queries
// exists in the scrape of its side.
func TestDemoMetricsDashboard(t *testing.T) {
	server := startOxdServerBinary(t)
	bin := buildDemo(t)
	// Access tokens of 4s: the middleware refreshes them after 2s.
	demo := startDemo(t, bin, "-oxd", server.socket, "-metrics-listen", "127.0.0.1:0", "-dev-op-access-token-ttl", "4s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := demo.proc.WaitForLine(ctx, regexp.MustCompile(`^  metrics:  (http://127\.0\.0\.1:\d+)/metrics`))
	if err != nil {
		t.Fatalf("e2e: the demo's banner has no metrics address: %v\n%s", err, demo.proc.Output())
	}
	demoMetrics := m[1]
	for _, base := range []string{demoMetrics, server.metrics} {
		if got := httpGet(t, base+"/healthz"); got != "ok\n" {
			t.Errorf("e2e: %s/healthz answered %q", base, got)
		}
		if got := httpGet(t, base+"/readyz"); got != "ready\n" {
			t.Errorf("e2e: %s/readyz answered %q", base, got)
		}
	}
	before := scrapeMetrics(t, demoMetrics+"/metrics")

	p := &pageDriver{t: t, ctx: demoBrowser(t)}
	op := devOPPages()
	op.oxd = "oxd-server socket " + server.socket
	demoRegister(t, p, demo, op)
	demoSignIn(t, p, demo, op)

	// The access token expires in 4s: past 2s the next request refreshes it.
	time.Sleep(2500 * time.Millisecond)
	p.do("open the user info after the refresh point",
		chromedp.Navigate(demo.url+"/userinfo"), chromedp.WaitVisible(chromedp.CSS(`#claims`)))

	// One UMA decision.
	p.do("open the UMA page",
		chromedp.Navigate(demo.url+"/uma"), chromedp.WaitVisible(chromedp.CSS(`#request-photos`)))
	p.do("request the photos", chromedp.Click(chromedp.CSS(`#request-photos`)), chromedp.WaitVisible(chromedp.CSS(`#outcome`)))
	p.expectText("#outcome", "Access granted")
	p.do("browser-mode UMA page",
		chromedp.Navigate(demo.url+"/uma"),
		chromedp.WaitVisible(chromedp.CSS(`#browser-link`)),
		chromedp.Click(chromedp.CSS(`#browser-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#browser-granted`)))
	demoSignOut(t, p, demo, op)

	// A failed login: the browser is sent to the OP (a login started),
	// then comes back with a callback whose state was tampered with.
	p.do("start another login",
		chromedp.Navigate(demo.url+"/login/start?return_to=/userinfo"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
	p.do("a callback with a tampered state",
		chromedp.Navigate(demo.url+"/callback?code=forged-code&state=tampered-state-0123456789"),
		chromedp.WaitVisible(chromedp.CSS(`main`)))
	p.screenshot("tampered-callback")

	after := scrapeMetrics(t, demoMetrics+"/metrics")
	moved := func(name string, labels ...string) float64 {
		return after.sum(name, labels...) - before.sum(name, labels...)
	}
	t.Logf("e2e: the demo's metrics moved: logins started %v, completed %v, failed %v, refreshes %v, UMA decisions %v, client commands %v",
		moved("oxd_login_started_total"), moved("oxd_login_completed_total"), moved("oxd_login_failures_total"),
		moved("oxd_refresh_total"), moved("oxd_uma_decisions_total"), moved("oxd_client_command_duration_seconds_count"))
	t.Logf("e2e: login failures by reason:\n%s", after.grep("oxd_login_failures_total"))
	if d := moved("oxd_login_started_total"); d < 3 {
		t.Errorf("e2e: oxd_login_started_total moved by %v, want at least 3 (sign-in, browser-mode UMA, tampered login)", d)
	}
	if d := moved("oxd_login_completed_total"); d < 1 {
		t.Errorf("e2e: oxd_login_completed_total moved by %v", d)
	}
	if d := moved("oxd_login_failures_total", `oxd_reason="`); d < 1 {
		t.Errorf("e2e: oxd_login_failures_total moved by %v\n%s", d, after.grep("oxd_login_"))
	}
	if d := moved("oxd_refresh_total", `oxd_result="ok"`); d < 1 {
		t.Errorf("e2e: no refresh was counted\n%s", after.grep("oxd_refresh"))
	}
	if d := moved("oxd_uma_decisions_total"); d < 1 {
		t.Errorf("e2e: no UMA decision was counted")
	}
	for _, cmd := range []string{"get_authorization_url", "get_tokens_by_code", "get_user_info"} {
		if d := moved("oxd_client_command_duration_seconds_count", `oxd_command="`+cmd+`"`, `oxd_transport="socket"`); d < 1 {
			t.Errorf("e2e: the client latency histogram of %s did not move\n%s", cmd, after.grep("oxd_client_command_duration_seconds_count"))
		}
	}
	if after.sum("oxd_client_command_duration_seconds_bucket", `le="+Inf"`) == 0 {
		t.Errorf("e2e: the client latency histogram has no buckets")
	}
	// The tampered state is nowhere in a label.
	if strings.Contains(after.text, "tampered-state") || strings.Contains(after.text, "forged-code") {
		t.Errorf("e2e: a callback parameter is in the demo's metrics")
	}

	srv := scrapeMetrics(t, server.metrics+"/metrics")
	if srv.sum("oxd_server_command_duration_seconds_count", `oxd_command="get_tokens_by_code"`, `oxd_listener="socket"`) < 1 {
		t.Errorf("e2e: oxd-server counted no get_tokens_by_code\n%s", srv.grep("oxd_server_command_duration_seconds_count"))
	}
	if srv.sum("oxd_server_op_request_duration_seconds_count", `oxd_op_endpoint="token"`) < 1 {
		t.Errorf("e2e: oxd-server timed no call to the OP's token endpoint")
	}
	if srv.sum("oxd_server_sites") < 1 {
		t.Errorf("e2e: oxd-server reports no site")
	}

	// Every metric the dashboard queries is in the scrape of its side:
	// oxd_server_* from oxd-server, the others from the application.
	app, server2 := dashboardMetrics(t)
	for _, name := range app {
		if !after.has(name) {
			t.Errorf("e2e: the dashboard queries %s, which the demo's /metrics does not have", name)
		}
	}
	for _, name := range server2 {
		if !srv.has(name) {
			t.Errorf("e2e: the dashboard queries %s, which oxd-server's /metrics does not have", name)
		}
	}
	t.Logf("e2e: the dashboard's %d application metrics and %d server metrics are all scraped", len(app), len(server2))
}

// oxdServerProc is cmd/oxd-server running as a process.
type oxdServerProc struct {
	socket  string // host:port of the socket protocol
	metrics string // http://host:port of -metrics-listen
}

// startOxdServerBinary builds cmd/oxd-server and starts it with a socket
// listener and -metrics-listen on loopback ports the kernel picks, and
// plain-http loopback OPs allowed (the demo's development OP).
func startOxdServerBinary(t *testing.T) *oxdServerProc {
	t.Helper()
	bin := goBuild(t, ".", "./cmd/oxd-server", "oxd-server")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-insecure-loopback-http", "-log-level", "debug")
	cmd.Env = os.Environ()
	proc := harness.StartProcessGroup(t, "oxd-server", cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := proc.WaitForLine(ctx, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`))
	if err != nil {
		t.Fatalf("e2e: oxd-server did not start its socket listener: %v\n%s", err, proc.Output())
	}
	m, err := proc.WaitForLine(ctx, regexp.MustCompile(`msg="metrics and health listening" url=(http://127\.0\.0\.1:\d+)/metrics`))
	if err != nil {
		t.Fatalf("e2e: oxd-server did not start -metrics-listen: %v\n%s", err, proc.Output())
	}
	return &oxdServerProc{socket: s[1], metrics: m[1]}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("e2e: GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		t.Fatalf("e2e: GET %s: %v", url, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("e2e: GET %s: %s", url, res.Status)
	}
	return string(b)
}

// scraped is one Prometheus text exposition: every sample line.
type scraped struct {
	text    string
	samples map[string]float64 // name{labels} → value
}

func scrapeMetrics(t *testing.T, url string) scraped {
	t.Helper()
	s := scraped{text: httpGet(t, url), samples: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(s.text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("e2e: %s: a sample line without a value: %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("e2e: %s: %q: %v", url, line, err)
		}
		s.samples[line[:i]] = v
	}
	return s
}

// sum adds the samples of the metric name whose labels contain every one
// of labels (`key="value"`).
func (s scraped) sum(name string, labels ...string) float64 {
	var n float64
	for series, v := range s.samples {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(series, l)
		}
		if ok {
			n += v
		}
	}
	return n
}

func (s scraped) has(name string) bool {
	for series := range s.samples {
		if series == name || strings.HasPrefix(series, name+"{") {
			return true
		}
	}
	return false
}

func (s scraped) grep(prefix string) string {
	var out []string
	for series, v := range s.samples {
		if strings.HasPrefix(series, prefix) {
			out = append(out, series+" "+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// dashboardMetrics returns the metric names the Grafana dashboard's
// queries use, split into the application's and oxd-server's
// (oxd_server_*).
func dashboardMetrics(t *testing.T) (app, server []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(harness.Dir()), "deploy", "grafana", "oxd-dashboard.json"))
	if err != nil {
		t.Fatalf("e2e: the dashboard: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				} else {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("e2e: the dashboard: %v", err)
	}
	walk(doc)
	if len(exprs) == 0 {
		t.Fatal("e2e: the dashboard has no queries")
	}
	seen := map[string]bool{}
	name := regexp.MustCompile(`\boxd_[a-z0-9_]+\b`)
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			if strings.HasPrefix(n, "oxd_command") || strings.HasPrefix(n, "oxd_result") || strings.HasPrefix(n, "oxd_reason") ||
				strings.HasPrefix(n, "oxd_listener") || strings.HasPrefix(n, "oxd_op_endpoint") || strings.HasPrefix(n, "oxd_cache") ||
				strings.HasPrefix(n, "oxd_route") || strings.HasPrefix(n, "oxd_transport") {
				continue // a label, not a metric
			}
			if seen[n] {
				continue
			}
			seen[n] = true
			if strings.HasPrefix(n, "oxd_server_") {
				server = append(server, n)
			} else {
				app = append(app, n)
			}
		}
	}
	sort.Strings(app)
	sort.Strings(server)
	return app, server
}
