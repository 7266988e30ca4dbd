package oxd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestFlowOxdDown: with the engine unreachable over the socket, a login
// attempt gets 503 within the timeout and a clear page; once oxd is back,
// logins work again.
func TestFlowOxdDown(t *testing.T) {
	srv := oxdtest.NewServer(t)
	port := newHeldPort(t) // bound, not listening: connection refused
	addr := port.addr
	sock, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sm := scs.New()
	creds := srv.Protection
	a, err := New(oxdclient.New(sock, oxdclient.Config{Protection: &creds}), sm, Config{OxdID: srv.OxdID, PostLogoutRedirectURI: "https://app.example/bye", CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := a.RequireLogin(http.NotFoundHandler())
	req := httptest.NewRequest("GET", "https://app.example/private", nil)
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("oxd down: %d after %v", w.Code, time.Since(start))
	}
	if !strings.Contains(w.Body.String(), "unavailable") {
		t.Fatalf("page: %q", w.Body.String())
	}

	// oxd comes up on that address.
	ln2 := port.listen(t)
	ss := &oxdserver.SocketServer{Engine: srv.Engine}
	done := make(chan struct{})
	go func() { defer close(done); _ = ss.Serve(ln2) }()
	defer func() { _ = ss.Close(); <-done }()
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://app.example/private", nil))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), srv.OP.Issuer()) {
		t.Fatalf("after recovery: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestFlowOPSlow: the OP hangs behind the engine; the callback answers 503
// within the configured oxd timeout.
func TestFlowOPSlow(t *testing.T) {
	fa := newFlowApp(t, "inprocess", memStore)
	fa.auth.callTimeout = 500 * time.Millisecond
	b := fa.browser()
	r := fa.do(b, "GET", "/private/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, r.header.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	fa.srv.OP.SetFault(oxdtest.EndpointToken, oxdtest.FaultSlow)
	start := time.Now()
	r = fa.do(b, "GET", cb.String(), nil)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	if r.status != http.StatusServiceUnavailable && r.status != http.StatusBadGateway {
		t.Fatalf("slow OP: %d %q", r.status, r.body)
	}
	if r := fa.do(b, "GET", "/private/", nil); r.status != http.StatusSeeOther {
		t.Fatal("logged in")
	}
}
