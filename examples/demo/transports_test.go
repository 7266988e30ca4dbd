package main

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// startSocketOxd serves an engine behind the oxd-server socket protocol,
// with protection tokens enforced (the default).
func startSocketOxd(t *testing.T) string {
	t.Helper()
	eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &oxdserver.SocketServer{Engine: eng}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		_ = eng.Close()
	})
	return ln.Addr().String()
}

// startHTTPSOxd serves an engine behind the oxd-https-extension protocol
// (protection tokens required) with a test certificate, written to a PEM
// file for -oxd-https-ca.
func startHTTPSOxd(t *testing.T) (url, caFile string) {
	t.Helper()
	eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{}))
	t.Cleanup(func() {
		ts.Close()
		_ = eng.Close()
	})
	caFile = filepath.Join(t.TempDir(), "oxd-https.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts.URL, caFile
}

// The demo with -oxd: register, sign in, UMA, update and delete go over
// the socket protocol, with protection tokens from the setup client.
func TestDemoOverSocket(t *testing.T) {
	td := startTestDemo(t, "", "-oxd", startSocketOxd(t))
	if !strings.HasPrefix(td.d.oxdDesc, "oxd-server socket 127.0.0.1:") {
		t.Fatalf("oxd description %q", td.d.oxdDesc)
	}
	walkTransport(t, td)
}

// The demo with -oxd-https and -oxd-https-ca.
func TestDemoOverHTTPSExtension(t *testing.T) {
	u, ca := startHTTPSOxd(t)
	td := startTestDemo(t, "", "-oxd-https", u, "-oxd-https-ca", ca)
	if td.d.oxdDesc != "oxd-https-extension "+u {
		t.Fatalf("oxd description %q", td.d.oxdDesc)
	}
	walkTransport(t, td)
}

// Without the CA the extension's certificate is refused: TLS verification
// is never switched off.
func TestDemoHTTPSExtensionVerifiesTLS(t *testing.T) {
	u, _ := startHTTPSOxd(t)
	td := startTestDemo(t, "", "-oxd-https", u)
	status, _, body := td.post(t, "/settings/register", td.settingsForm())
	if status != http.StatusBadGateway || !strings.Contains(body, "setup_client failed") {
		t.Fatalf("register over unverified TLS: %d\n%s", status, body)
	}
}

func walkTransport(t *testing.T, td *testDemo) {
	t.Helper()
	td.register(t)
	td.login(t, "alice", "alice-password")
	page := td.requestResource(t, "photos")
	if !strings.Contains(page, `class="result granted"`) {
		t.Fatalf("photos not granted:\n%s", page)
	}
	form := td.settingsForm()
	form["scope"] = []string{"profile", "email", "offline_access"}
	if status, loc, body := td.post(t, "/settings/update", form); status != http.StatusSeeOther || loc != "/settings?m=updated" {
		t.Fatalf("update: %d %q\n%s", status, loc, body)
	}
	if status, loc, body := td.post(t, "/settings/delete", nil); status != http.StatusSeeOther || loc != "/settings?m=deleted" {
		t.Fatalf("delete: %d %q\n%s", status, loc, body)
	}
}

// A settings file registered with another oxd is not used: the demo says
// so and offers to register again.
func TestDemoSettingsFromAnotherOxd(t *testing.T) {
	settings := filepath.Join(t.TempDir(), "settings.json")
	first := startTestDemo(t, settings)
	first.register(t)

	second := startTestDemo(t, settings, "-oxd", startSocketOxd(t))
	if got := second.d.app.startupNote(); !strings.Contains(got, "registered with in-process engine") {
		t.Fatalf("startup note %q", got)
	}
	status, _, page := second.get(t, "/settings")
	if status != http.StatusOK || !strings.Contains(page, `id="register"`) || !strings.Contains(page, "Register it again") {
		t.Fatalf("settings page:\n%s", page)
	}
	second.register(t)
	second.login(t, "bob", "bob-password")
}

// TestDescribeOxdErrorCutsOnCharacterBoundary: an OP's long error
// description shown on the settings page is cut on a character boundary
// and marked.
func TestDescribeOxdErrorCutsOnCharacterBoundary(t *testing.T) {
	got := describeOxdError(&oxdclient.Error{Code: "invalid_request", Description: "a" + strings.Repeat("é", 300)})
	if want := "oxd answered invalid_request: a" + strings.Repeat("é", 149) + "…"; got != want {
		t.Fatalf("describeOxdError = %q", got)
	}
}
