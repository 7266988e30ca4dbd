package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/ciutil"
	"github.com/oxdgo/oxd/internal/devcert"
	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/internal/syncbuf"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// lockedBuffer collects a process's stderr.
type lockedBuffer struct{ syncbuf.Buffer }

// waitFor polls the log until re matches, and returns the submatches.
func (l *lockedBuffer) waitFor(t *testing.T, re *regexp.Regexp, exited <-chan struct{}) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(l.String()); m != nil {
			return m
		}
		select {
		case <-exited:
			t.Fatalf("oxd-server exited before logging %s:\n%s", re, l)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("oxd-server did not log %s:\n%s", re, l)
	return nil
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oxd-server")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary builds oxd-server, starts it on free loopback ports with the
// development OP, runs commands over the socket and the HTTPS extension
// with oxdclient, and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() && !ciutil.Enabled() {
		t.Skip("builds and runs the binary (-short); under CI it always runs")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0",
		"-tls-cert-out", certFile, "-dev-op", "-log-level", "debug")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	sockAddr := logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`), exited)[1]
	httpsURL := logs.waitFor(t, regexp.MustCompile(`msg="oxd HTTPS extension listening" url=(https://127\.0\.0\.1:\d+)`), exited)[1]
	issuer := logs.waitFor(t, regexp.MustCompile(`msg="development OP listening" issuer=(http://127\.0\.0\.1:\d+)`), exited)[1]
	fp := logs.waitFor(t, regexp.MustCompile(`sha256=([0-9A-F:]{95})`), exited)[1]

	// The printed fingerprint is the one of the certificate written out.
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || devcert.Fingerprint(block.Bytes) != fp {
		t.Fatalf("fingerprint %s does not match %s", fp, certFile)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer httpClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Socket (protection on by default, as on every listener): setup_client,
	// a protection token, an authorization URL.
	st, err := oxdclient.NewSocket(sockAddr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc := oxdclient.New(st, oxdclient.Config{})
	setup, err := sc.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   issuer,
		AuthorizationRedirectURI: "https://rp.example.test/cb",
		PostLogoutRedirectURI:    "https://rp.example.test/out",
		Scope:                    []string{"openid", "profile", "email", "uma_protection"},
		GrantTypes:               []string{"authorization_code", "client_credentials", "refresh_token"},
	}})
	if err != nil {
		t.Fatalf("setup_client over the socket: %v\n%s", err, logs.String())
	}
	if setup.OxdID == "" || setup.ClientID == "" || setup.ClientSecret.IsZero() || setup.OPHost != issuer {
		t.Fatalf("setup_client answer %+v", setup)
	}
	tok, err := sc.GetClientToken(ctx, oxdclient.GetClientTokenParams{
		ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: issuer,
		Scope: []string{"openid", "oxd", "uma_protection"},
	})
	if err != nil || tok.AccessToken.IsZero() {
		t.Fatalf("get_client_token: %v %+v", err, tok)
	}
	if _, err := sc.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID}); !oxdclient.IsProtectionTokenError(err) {
		t.Fatalf("get_authorization_url over the socket without a token: %v", err)
	}
	sp := oxdclient.New(st, oxdclient.Config{Protection: &oxdclient.ProtectionCredentials{
		ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: issuer,
	}})
	au, err := sp.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	if err != nil || !strings.HasPrefix(au.AuthorizationURL, issuer+"/") || !strings.Contains(au.AuthorizationURL, "state=") {
		t.Fatalf("get_authorization_url over the socket: %v %+v", err, au)
	}

	// HTTPS extension (protection on by default): without a token the
	// extension refuses; with the setup client's credentials it works.
	ht, err := oxdclient.NewHTTPS(httpsURL, oxdclient.HTTPSConfig{HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	plain := oxdclient.New(ht, oxdclient.Config{})
	_, err = plain.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	var oe *oxdclient.Error
	if !errors.As(err, &oe) || oe.Code != "403" {
		t.Fatalf("HTTPS without a token: %v", err)
	}
	protected := oxdclient.New(ht, oxdclient.Config{Protection: &oxdclient.ProtectionCredentials{
		ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: issuer,
	}})
	au2, err := protected.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	if err != nil || !strings.HasPrefix(au2.AuthorizationURL, issuer+"/") || au2.AuthorizationURL == au.AuthorizationURL {
		t.Fatalf("get_authorization_url over HTTPS: %v %+v", err, au2)
	}
	resp, err := httpClient.Get(httpsURL + "/health-check")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "running" {
		t.Fatalf("health-check: %d %q", resp.StatusCode, body)
	}

	// Stop with SIGTERM: clean exit, status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("oxd-server did not stop after SIGTERM:\n%s", logs.String())
	}
	if waitErr != nil {
		t.Fatalf("exit: %v\n%s", waitErr, logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, `msg="oxd-server stopped"`) {
		t.Fatalf("no stop line:\n%s", out)
	}
	// Secrets never reach the log, even at debug level.
	for name, s := range map[string]string{
		"client secret":    setup.ClientSecret.Reveal(),
		"protection token": tok.AccessToken.Reveal(),
	} {
		if strings.Contains(out, s) {
			t.Errorf("the log contains the %s", name)
		}
	}
	for _, w := range []string{"command=setup_client", "command=get_authorization_url", "transport=https"} {
		if !strings.Contains(out, w) {
			t.Errorf("the debug log lacks %s", w)
		}
	}
}

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-listen", ""}, 2, "nothing to serve"},
		{[]string{"-tls-cert", "x"}, 2, "go together"},
		{[]string{"-log-level", "loud"}, 2, "invalid -log-level"},
		{[]string{"extra"}, 2, "unexpected arguments"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"-listen", "127.0.0.1:0", "-store", "bogus"}, 1, "want memory"},
		{[]string{"-listen", "127.0.0.1:0", "-store", "redis://u:hunter2@127.0.0.1:1/0"}, 1, "cannot reach Redis"},
		{[]string{"-listen", "127.0.0.1:0", "-store", "redis://u:hunter2@127.0.0.1:1/x"}, 1, "xxxxx"},
		{[]string{"-listen", "127.0.0.1:0", "-store", "file:"}, 1, "needs a path"},
		{[]string{"-listen", "256.0.0.1:1"}, 1, "socket listener"},
		{[]string{"-listen", "", "-https-listen", "127.0.0.1:0", "-tls-cert", "/nonexistent", "-tls-key", "/nonexistent"}, 1, "TLS certificate"},
		{[]string{"-h"}, 0, "-https-listen"},
		{[]string{"-protect-socket"}, 2, "flag provided but not defined"},
		{[]string{"-https-protect=false"}, 2, "flag provided but not defined"},
		{[]string{"-max-conns", "0"}, 2, "must be positive"},
		{[]string{"-op-host", "https://op.example/path"}, 1, "invalid OPHosts entry"},
	} {
		var out bytes.Buffer
		code := run(context.Background(), tc.args, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.msg) {
			t.Errorf("%q: exit %d, want %d; output:\n%s", tc.args, code, tc.code, out.String())
		}
		if strings.Contains(out.String(), "hunter2") {
			t.Errorf("%q: the log shows a password", tc.args)
		}
	}
}

// TestRunGracefulStop runs the program in process: cancelling its context
// (what SIGTERM does) stops both listeners and returns 0.
func TestRunGracefulStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-https-listen", "127.0.0.1:0", "-log-level", "debug"}, &logs)
		close(exited)
	}()
	addr := logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`), exited)[1]
	httpsURL := logs.waitFor(t, regexp.MustCompile(`msg="oxd HTTPS extension listening" url=(\S+)`), exited)[1]
	st, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = oxdclient.New(st, oxdclient.Config{}).Transport().Do(context.Background(), "license_status", map[string]any{}, nil)
	if !errors.Is(err, oxdclient.ErrUnsupportedCommand) {
		t.Fatalf("license_status: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
	if _, err := http.Get(strings.Replace(httpsURL, "https", "http", 1)); err == nil {
		t.Fatal("HTTPS listener still open")
	}
}

// startRun runs the program in process with args (plus a socket on a free
// port) and returns the socket address and a stop function that cancels it
// and checks the exit status.
func startRun(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-insecure-loopback-http"}, args...), &logs)
		close(exited)
	}()
	addr = logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(127\.0\.0\.1:\d+)`), exited)[1]
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("exit %d:\n%s", code, logs.String())
				}
			case <-time.After(10 * time.Second):
				t.Error("run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

func socketClient(t *testing.T, addr string) *oxdclient.Client {
	return protectedSocketClient(t, addr, nil)
}

// protectedSocketClient attaches protection tokens minted with creds (nil:
// none).
func protectedSocketClient(t *testing.T, addr string, creds *oxdclient.ProtectionCredentials) *oxdclient.Client {
	t.Helper()
	st, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return oxdclient.New(st, oxdclient.Config{Protection: creds})
}

// setupSite runs setup_client and returns the site and the credentials
// that mint its protection tokens.
func setupSite(t *testing.T, c *oxdclient.Client, issuer string) (string, *oxdclient.ProtectionCredentials) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: issuer, AuthorizationRedirectURI: "https://rp.example.test/cb",
		Scope: []string{"openid", "uma_protection"}, GrantTypes: []string{"authorization_code", "client_credentials"},
	}})
	if err != nil {
		t.Fatalf("setup_client: %v", err)
	}
	return r.OxdID, &oxdclient.ProtectionCredentials{ClientID: r.ClientID, ClientSecret: r.ClientSecret, OPHost: issuer}
}

func getRP(t *testing.T, c *oxdclient.Client, oxdID string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.GetRP(ctx, oxdclient.GetRPParams{OxdID: oxdID})
	return err
}

// TestStoreFileSurvivesRestart: with -store file:…, a site registered
// before a restart is still known after it.
func TestStoreFileSurvivesRestart(t *testing.T) {
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	file := filepath.Join(t.TempDir(), "sites.json")
	addr, stop := startRun(t, "-store", "file:"+file)
	oxdID, creds := setupSite(t, socketClient(t, addr), op.Issuer())
	stop()
	if st, err := os.Stat(file); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("store file: %v %v", st, err)
	}
	addr2, _ := startRun(t, "-store", "file:"+file)
	if err := getRP(t, protectedSocketClient(t, addr2, creds), oxdID); err != nil {
		t.Fatalf("get_rp after restart: %v", err)
	}
	// A memory store forgets.
	addr3, _ := startRun(t)
	if err := getRP(t, protectedSocketClient(t, addr3, creds), oxdID); !oxdclient.IsInvalidOxdID(err) {
		t.Fatalf("get_rp on a fresh memory store: %v", err)
	}
}

// TestStoreRedisShared: two servers on one Redis share their sites.
func TestStoreRedisShared(t *testing.T) {
	url := "redis://" + redistest.Start(t).Addr() + "/0"
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	a, _ := startRun(t, "-store", url, "-redis-prefix", "t1:")
	b, _ := startRun(t, "-store", url, "-redis-prefix", "t1:")
	other, _ := startRun(t, "-store", url, "-redis-prefix", "t2:")
	oxdID, creds := setupSite(t, socketClient(t, a), op.Issuer())
	if err := getRP(t, protectedSocketClient(t, b, creds), oxdID); err != nil {
		t.Fatalf("get_rp on the second server: %v", err)
	}
	if err := getRP(t, protectedSocketClient(t, other, creds), oxdID); !oxdclient.IsInvalidOxdID(err) {
		t.Fatalf("get_rp under another prefix: %v", err)
	}
}

// TestDevOPCannotPassForProduction (server hardening, defect 7): -dev-op
// logs a WARN banner, refuses a persistent store and a listener off
// loopback unless -dev-op-allow-unsafe, and a listener off loopback with
// protection off is warned about.
func TestDevOPCannotPassForProduction(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-dev-op", "-listen", "127.0.0.1:0", "-store", "file:" + filepath.Join(t.TempDir(), "s.json")}, "refuses a persistent -store"},
		{[]string{"-dev-op", "-listen", "127.0.0.1:0", "-store", "redis://127.0.0.1:1/0"}, "refuses a persistent -store"},
		{[]string{"-dev-op", "-listen", "0.0.0.0:0"}, "not on a loopback address"},
		{[]string{"-dev-op", "-listen", ":0"}, "not on a loopback address"},
		{[]string{"-dev-op", "-listen", "", "-https-listen", "[::]:0"}, "not on a loopback address"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out); code != 2 || !strings.Contains(out.String(), tc.msg) {
			t.Errorf("%q: exit %d; output:\n%s", tc.args, code, out.String())
		}
	}

	// A listener off loopback with protection off is warned about (checked
	// without listening: tests listen on loopback only).
	var warned bytes.Buffer
	exposureWarnings(&options{listen: "0.0.0.0:8099", noProtection: true}, false, slog.New(slog.NewTextHandler(&warned, nil)))
	if !strings.Contains(warned.String(), `level=WARN msg="a listener is not on a loopback address and protection is OFF`) {
		t.Errorf("no exposure warning: %s", warned.String())
	}

	// Allowed with the second flag; the banner is a WARN.
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"-dev-op", "-dev-op-allow-unsafe", "-insecure-no-protection", "-listen", "127.0.0.1:0", "-store", "file:" + filepath.Join(t.TempDir(), "s.json")}, &logs)
		close(exited)
	}()
	logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening"`), exited)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="DEVELOPMENT OP RUNNING (-dev-op): NOT FOR PRODUCTION`,
		`level=WARN msg="protection access tokens are OFF (-insecure-no-protection)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in:\n%s", want, out)
		}
	}
}

// TestDevOPAddr: -dev-op-addr fixes the development OP's address, so its
// issuer is the same after a restart; the start logs a WARN that the
// development OP forgets its clients and sessions and names what to
// delete; the address must be on loopback and needs -dev-op.
func TestDevOPAddr(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-dev-op-addr", "127.0.0.1:8090"}, "-dev-op-addr needs -dev-op"},
		{[]string{"-dev-op-addr", "127.0.0.1:0"}, "-dev-op-addr needs -dev-op"},
		{[]string{"-dev-op", "-dev-op-addr", "0.0.0.0:8090"}, "want a loopback host:port"},
		{[]string{"-dev-op", "-dev-op-addr", ":8090"}, "want a loopback host:port"},
		{[]string{"-dev-op", "-dev-op-allow-unsafe", "-dev-op-addr", "192.0.2.1:8090"}, "want a loopback host:port"},
		{[]string{"-dev-op", "-dev-op-addr", "localhost.example:8090"}, "want a loopback host:port"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out); code != 2 || !strings.Contains(out.String(), tc.msg) {
			t.Errorf("%q: exit %d; output:\n%s", tc.args, code, out.String())
		}
	}

	addr := freeLoopbackAddr(t)
	start := func() string {
		ctx, cancel := context.WithCancel(context.Background())
		var logs lockedBuffer
		done := make(chan int, 1)
		exited := make(chan struct{})
		go func() {
			done <- run(ctx, []string{"-dev-op", "-dev-op-addr", addr, "-listen", "127.0.0.1:0"}, &logs)
			close(exited)
		}()
		issuer := logs.waitFor(t, regexp.MustCompile(`msg="development OP listening" issuer=(http://\S+)`), exited)[1]
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
		out := logs.String()
		for _, want := range []string{
			`level=WARN msg="The development OP keeps its clients and users' sessions in memory: after a restart it has forgotten them`,
			`A site file an application wrote in a previous run is stale: delete it`,
			"dev_op_addr=" + addr,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %s in:\n%s", want, out)
			}
		}
		return issuer
	}
	first, second := start(), start()
	if first != "http://"+addr || second != first {
		t.Fatalf("issuers %s then %s, want http://%s twice", first, second, addr)
	}
}

// freeLoopbackAddr returns a loopback address that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
