package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/connlimit/connlimittest"
	"github.com/oxdgo/oxd/internal/opsserver"
)

// TestMetricsListenOnLoopbackOnly: -metrics-listen takes a loopback
// address unless -insecure-metrics-any-interface; the switch alone and a
// too short development OP token lifetime are refused.
func TestMetricsListenOnLoopbackOnly(t *testing.T) {
	for _, args := range [][]string{
		{"-metrics-listen", "0.0.0.0:9465"},
		{"-metrics-listen", ":9465"},
		{"-metrics-listen", "192.0.2.1:9465"},
		{"-metrics-listen", "[::]:9465"},
		{"-insecure-metrics-any-interface"},
		{"-dev-op-access-token-ttl", "1s"},
		{"-dev-op-access-token-ttl", "30s", "-op", "https://op.example"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
	for _, args := range [][]string{
		{"-metrics-listen", "127.0.0.1:0"},
		{"-metrics-listen", "[::1]:0"},
		{"-metrics-listen", "localhost:0"},
		{"-metrics-listen", "0.0.0.0:0", "-insecure-metrics-any-interface"},
	} {
		if _, err := parseOptions(args, io.Discard); err != nil {
			t.Errorf("parseOptions(%q): %v", args, err)
		}
	}
}

// TestMetricsEndpoint: with -metrics-listen the demo serves /metrics with
// the middleware's, the client's and the in-process engine's metrics, and
// /healthz, /readyz; a login start moves oxd_login_started_total.
func TestMetricsEndpoint(t *testing.T) {
	td := startTestDemo(t, "", "-metrics-listen", "127.0.0.1:0")
	if td.d.ops == nil {
		t.Fatal("no metrics listener")
	}
	base := "http://" + td.d.ops.Addr().String()
	get := func(path string) string {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		res, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, res.Status, b)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	if got := get("/readyz"); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	td.register(t)
	res, err := td.c.Get(td.d.baseURL + "/login/start?return_to=/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	m := get("/metrics")
	for _, want := range []string{
		"\noxd_login_started_total 1\n",
		`oxd_client_command_duration_seconds_count{`,
		`oxd_server_command_duration_seconds_count{`,
		`oxd_transport="inprocess"`,
		`service_name="oxd-demo"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// TestMetricsListenerConnectionCap: the demo's metrics listener bounds its
// connections like oxd-server's (opsserver.DefaultMaxConns): connections
// that send nothing cannot pile up, and a scrape still gets through.
func TestMetricsListenerConnectionCap(t *testing.T) {
	td := startTestDemo(t, "", "-metrics-listen", "127.0.0.1:0")
	if td.d.ops == nil {
		t.Fatal("no metrics listener")
	}
	connlimittest.CheckSlowLoris(t, td.d.ops.Addr().String(), "/healthz", opsserver.DefaultMaxConns)
}
