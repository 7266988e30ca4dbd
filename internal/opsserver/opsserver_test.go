package opsserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/oxdgo/oxd/internal/connlimit/connlimittest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestServer: /healthz is up at once; /readyz is 503 until Ready, names
// the failed probes (never their error), 503 once stopping; /metrics
// exposes what the meter provider records, with the resource.
func TestServer(t *testing.T) {
	s, err := New("127.0.0.1:0", NewResource("oxd-test"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr().String()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || body != "starting\n" {
		t.Fatalf("/readyz before Ready: %d %q", code, body)
	}
	failing := errors.New("secret-detail")
	s.Ready([]Probe{
		{Name: "store", Check: func(context.Context) error { return nil }},
		{Name: "socket", Check: func(context.Context) error { return failing }},
	})
	if code, body := get(t, base+"/readyz"); code != 503 || body != "not ready: socket\n" {
		t.Fatalf("/readyz with a failing probe: %d %q", code, body)
	}
	failing = nil
	s.Ready([]Probe{{Name: "socket", Check: func(context.Context) error { return failing }}})
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}

	c, err := s.MeterProvider.Meter("test").Int64Counter("oxd.test.events", metric.WithUnit("{event}"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{"\noxd_test_events_total 3\n", `service_name="oxd-test"`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}

	s.Stopping()
	if code, body := get(t, base+"/readyz"); code != 503 || body != "stopping\n" {
		t.Fatalf("/readyz stopping: %d %q", code, body)
	}
}

func TestOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true,
		"0.0.0.0:9464": false, ":9464": false, "192.0.2.1:9464": false, "127.0.0.1": false,
	} {
		if OnLoopback(addr) != want {
			t.Errorf("OnLoopback(%q) = %v", addr, !want)
		}
	}
}

// TestServerConnectionCap: the listener bounds its connections, by default
// to DefaultMaxConns: connections that send nothing cannot pile up, and a
// request still gets through.
func TestServerConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want int
	}{{Options{}, DefaultMaxConns}, {Options{MaxConns: 4}, 4}} {
		s, err := New("127.0.0.1:0", NewResource("oxd-test"), nil, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Serve() }()
		connlimittest.CheckSlowLoris(t, s.Addr().String(), "/healthz", tc.want)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.StopServing(ctx)
		cancel()
	}
}
