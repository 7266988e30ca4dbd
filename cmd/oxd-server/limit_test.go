package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/connlimit"
	"github.com/oxdgo/oxd/internal/testwait"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestHTTPSIdleConnectionsCannotExhaust (server hardening, defect 6): idle
// keep-alive TLS connections fill -https-max-conns; a new client is still
// answered (the longest idle connection makes room), and the socket
// listener keeps working.
func TestHTTPSIdleConnectionsCannotExhaust(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0", "-https-max-conns", "4"}, &logs)
		close(exited)
	}()
	httpsURL := logs.waitFor(t, regexp.MustCompile(`msg="oxd HTTPS extension listening" url=(\S+)`), exited)[1]
	get := func(tr *http.Transport) error {
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get(httpsURL + "/health-check")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "running" {
			t.Fatalf("health-check %q", b)
		}
		return nil
	}
	newTransport := func() *http.Transport {
		// The server's certificate is generated at start; this test is
		// about connections, not trust.
		return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec
	}
	var idle []*http.Transport
	for range 4 {
		tr := newTransport()
		if err := get(tr); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, tr) // keeps its connection open and idle
	}
	for i := range 6 {
		tr := newTransport()
		if err := get(tr); err != nil {
			t.Fatalf("new client %d at the cap: %v", i, err)
		}
		idle = append(idle, tr)
	}
	for _, tr := range idle {
		tr.CloseIdleConnections()
	}
	if !strings.Contains(logs.String(), "connection cap reached") {
		t.Fatalf("no cap warning:\n%s", logs.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
}

// TestShutdownTimeoutCutShortExitsNonZero: when -shutdown-timeout ends
// before the commands in flight, the process exits 1, not 0.
func TestShutdownTimeoutCutShortExitsNonZero(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slowOP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slowOP.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-insecure-loopback-http", "-shutdown-timeout", "200ms"}, &logs)
		close(exited)
	}()
	addr := logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`), exited)[1]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := `{"command":"get_client_token","params":{"op_host":"` + slowOP.URL + `","client_id":"c","client_secret":"s"}}`
	if _, err := c.Write([]byte(fmt.Sprintf("%04d%s", len(cmd), cmd))); err != nil {
		t.Fatal(err)
	}
	// The command waits for the OP when the shutdown begins.
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatalf("the command did not reach the OP:\n%s", logs.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(logs.String(), "cut short") {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}

// TestOperatorTokenFile: with -operator-token-file, setup_client over the
// (loopback) socket needs the operator token.
func TestOperatorTokenFile(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "operator-token")
	if err := os.WriteFile(tokFile, []byte("op-token-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	addr, stop := startRun(t, "-operator-token-file", tokFile)
	st, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	params := map[string]any{"op_host": op.Issuer(), "authorization_redirect_uri": "https://rp.example.test/cb"}
	var out map[string]any
	err = st.Do(context.Background(), oxdclient.CmdSetupClient, params, &out)
	var oe *oxdclient.Error
	if !errors.As(err, &oe) || oe.Code != oxdserver.CodeInvalidOperatorToken {
		t.Fatalf("without the operator token: %v", err)
	}
	params["operator_token"] = "op-token-SECRET"
	if err := st.Do(context.Background(), oxdclient.CmdSetupClient, params, &out); err != nil {
		t.Fatalf("with the operator token: %v", err)
	}
	stop()
}

// TestHTTPSStalledHandshakesCannotExhaust (slow-loris on the HTTPS
// listener): connections that open and send nothing (or half a TLS
// handshake) are never idle in http.Server's sense, so idle eviction alone
// leaves them their slots until the handshake timeout (30s), and an
// attacker who reconnects keeps every slot. At the cap the oldest one that
// has not sent its first request within connlimit.StalledGrace makes room.
func TestHTTPSStalledHandshakesCannotExhaust(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0", "-https-max-conns", "4",
			"-metrics-listen", "127.0.0.1:0"}, &logs)
		close(exited)
	}()
	httpsURL := logs.waitFor(t, regexp.MustCompile(`msg="oxd HTTPS extension listening" url=(\S+)`), exited)[1]
	metricsURL := logs.waitFor(t, regexp.MustCompile(`msg="metrics and health listening" url=(\S+)`), exited)[1]
	host := strings.TrimPrefix(httpsURL, "https://")
	var stalled []net.Conn
	for i := range 4 {
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the start of a TLS record
		}
		stalled = append(stalled, c)
	}
	// The grace counts from when the listener admitted each connection:
	// wait until it holds all four, then until the grace has passed.
	testwait.For(t, func() (bool, string) {
		_, scrape := get(t, metricsURL)
		n := promValue(scrape, "oxd_server_connections", `oxd_listener="https"`)
		return n == 4, fmt.Sprintf("the HTTPS listener holds %v connections, want 4", n)
	})
	time.Sleep(connlimit.StalledGrace + 10*time.Millisecond)
	for i := range 4 {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get(httpsURL + "/health-check")
		if err != nil {
			t.Fatalf("new client %d with stalled connections at the cap: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		defer tr.CloseIdleConnections() // stays open and idle meanwhile
	}
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("stalled connection %d still open: %v", i, err)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
}

// TestHTTPSHTTP2StreamsBounded: the HTTPS listener speaks HTTP/2, where
// one connection carries many concurrent commands; the server announces
// SETTINGS_MAX_CONCURRENT_STREAMS of httpsMaxStreams, so -https-max-conns
// bounds concurrent commands as it does over HTTP/1.1 (Go's default is 250
// streams per connection).
func TestHTTPSHTTP2StreamsBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0"}, &logs)
		close(exited)
	}()
	httpsURL := logs.waitFor(t, regexp.MustCompile(`msg="oxd HTTPS extension listening" url=(\S+)`), exited)[1]
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", strings.TrimPrefix(httpsURL, "https://"),
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}) //nolint:gosec
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	for {
		var h [9]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatal(err)
		}
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		if h[3] != 4 || h[4]&1 != 0 { // not SETTINGS, or an ACK
			continue
		}
		for i := 0; i+6 <= len(body); i += 6 {
			id := int(body[i])<<8 | int(body[i+1])
			v := uint32(body[i+2])<<24 | uint32(body[i+3])<<16 | uint32(body[i+4])<<8 | uint32(body[i+5])
			if id == 3 { // SETTINGS_MAX_CONCURRENT_STREAMS
				if v != httpsMaxStreams {
					t.Fatalf("max concurrent streams %d, want %d", v, httpsMaxStreams)
				}
				cancel()
				<-done
				return
			}
		}
		t.Fatalf("no SETTINGS_MAX_CONCURRENT_STREAMS in the server's SETTINGS (unbounded)")
	}
}
