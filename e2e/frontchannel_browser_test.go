package e2e_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/sessionindex"
)

// TestFrontChannelLogoutBrowserDevOP: OpenID Connect Front-Channel Logout
// in Chromium against the development OP. The application (plain HTTP on
// loopback, memory session index) registers only a front-channel logout
// URI, no back-channel one, so nothing but the browser loading the OP's
// iframe can end its session. Chromium signs in through the OP's login
// page and sees the protected page; signs out on the OP's own end-session
// page; the OP's signed-out page frames the application's front-channel
// URL (with iss and sid), which the browser loads and keeps (its
// frame-ancestors names exactly the OP's origin, so Chromium does not
// block it). Reloading the application's tab then asks for a login again.
func TestFrontChannelLogoutBrowserDevOP(t *testing.T) {
	start := time.Now()
	var handler http.Handler
	var hmu sync.RWMutex
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		h := handler
		hmu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	app.Config.ErrorLog = log.New(io.Discard, "", 0)
	app.Start() // plain http on 127.0.0.1
	t.Cleanup(app.Close)
	front := app.URL + "/logout/frontchannel"
	srv := oxdtest.NewServer(t,
		oxdtest.WithRedirectURIs(app.URL+"/callback", app.URL+"/logged-out", ""),
		oxdtest.WithLogoutURIs("", front))
	sm := scs.New()
	auth, err := oxd.New(srv.Client, sm, oxd.Config{
		OxdID:                 srv.OxdID,
		PostLogoutRedirectURI: app.URL + "/logged-out",
		SessionIndex:          sessionindex.NewMemory(sessionindex.MemoryOptions{}),
		Logger:                harness.DebugLogger(t, "middleware"),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/private/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := oxd.UserFrom(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>private</title><p id="who">%s</p>`, html.EscapeString(u.Subject))
	})))
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/logout/frontchannel", auth.FrontChannelLogoutHandler())
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "bye") })
	hmu.Lock()
	handler = sm.LoadAndSave(mux)
	hmu.Unlock()

	opURL, err := url.Parse(srv.OP.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	opOrigin := opURL.Scheme + "://" + opURL.Host

	ctx := demoBrowser(t)
	p := &pageDriver{t: t, ctx: ctx}
	p.do("open the protected page: the OP's login form",
		chromedp.Navigate(app.URL+"/private/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
	if loc := p.location(); !strings.HasPrefix(loc, opOrigin+"/") {
		t.Fatalf("e2e: the anonymous request went to %s, want the OP at %s", loc, opOrigin)
	}
	p.do("sign in at the development OP",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "alice-password"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#who`)))
	p.expectText("#who", "alice")
	// Signed in, and still so on reload: the session is the cookie's.
	p.do("reload the protected page while signed in",
		chromedp.Navigate(app.URL+"/private/"),
		chromedp.WaitVisible(chromedp.CSS(`#who`)))
	p.expectText("#who", "alice")

	// Record what Chromium receives for the front-channel URL.
	var rec frontChannelRecorder
	rec.done = make(chan struct{})
	if err := chromedp.Listen(ctx, func(ev any) { rec.event(ev, front) }); err != nil {
		t.Fatal(err)
	}
	p.do("sign out at the OP's own end-session page",
		chromedp.Navigate(srv.OP.Issuer()+"/end_session"),
		chromedp.WaitVisible(chromedp.CSS(`button[name="logout"]`)),
		chromedp.Click(chromedp.CSS(`button[name="logout"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[name="logout"]`)),
		chromedp.WaitReady(chromedp.CSS(`iframe`)))
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatal("e2e: the browser did not finish loading the front-channel logout URL")
	}
	status, hdr, frameURL, failed := rec.result()
	if failed != "" {
		t.Fatalf("e2e: the front-channel request failed in the browser: %s", failed)
	}
	q, _ := url.Parse(frameURL)
	if status != http.StatusOK || q == nil || q.Query().Get("iss") != srv.OP.Issuer() || q.Query().Get("sid") == "" {
		t.Fatalf("e2e: front-channel: status %d at %s (want 200 with iss and sid)", status, frameURL)
	}
	csp := header(hdr, "Content-Security-Policy")
	if got := directive(csp, "frame-ancestors"); len(got) != 1 || got[0] != opOrigin {
		t.Errorf("e2e: front-channel frame-ancestors = %q (CSP %q), want exactly %q", got, csp, opOrigin)
	}
	if cc := header(hdr, "Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("e2e: front-channel Cache-Control = %q, want no-store", cc)
	}
	if xfo := header(hdr, "X-Frame-Options"); strings.EqualFold(strings.TrimSpace(xfo), "DENY") {
		t.Errorf("e2e: front-channel X-Frame-Options DENY forbids the OP's frame")
	}
	if n := srv.OP.BackChannelLogoutsSent(); n != 0 {
		t.Fatalf("e2e: the OP sent %d back-channel logouts; only front-channel is registered", n)
	}
	// Chromium kept the frame: a frame it blocked (frame-ancestors, or
	// X-Frame-Options) shows an error page instead of the URL.
	waitChildFrame(t, ctx, front)
	p.screenshot("op-signed-out-frontchannel")

	p.do("reload the application's tab: signed out, the OP asks for a login",
		chromedp.Navigate(app.URL+"/private/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
	if loc := p.location(); !strings.HasPrefix(loc, opOrigin+"/") {
		t.Fatalf("e2e: after the front-channel logout the protected page is at %s, want the OP's login", loc)
	}
	p.screenshot("app-signed-out")
	t.Logf("e2e: front-channel logout in Chromium took %v", time.Since(start).Round(time.Millisecond))
}

// frontChannelRecorder keeps the browser's response to the front-channel
// logout URL and closes done when it has loaded (or failed).
type frontChannelRecorder struct {
	mu      sync.Mutex
	reqID   network.RequestID
	status  int64
	headers network.Headers
	url     string
	failed  string
	done    chan struct{}
	closed  bool
}

func (r *frontChannelRecorder) event(ev any, prefix string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventResponseReceived:
		if r.reqID == "" && e.Response != nil && strings.HasPrefix(e.Response.URL, prefix+"?") {
			r.reqID, r.status, r.headers, r.url = e.RequestID, e.Response.Status, e.Response.Headers, e.Response.URL
		}
	case *network.EventLoadingFinished:
		if r.reqID != "" && e.RequestID == r.reqID && !r.closed {
			r.closed = true
			close(r.done)
		}
	case *network.EventLoadingFailed:
		if r.reqID != "" && e.RequestID == r.reqID && !r.closed {
			r.failed = e.ErrorText
			r.closed = true
			close(r.done)
		}
	}
}

func (r *frontChannelRecorder) result() (int64, network.Headers, string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.headers, r.url, r.failed
}

// header is the value of the response header name, matched without case.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// directive is the source list of the CSP directive name.
func directive(csp, name string) []string {
	for d := range strings.SplitSeq(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && strings.EqualFold(f[0], name) {
			return f[1:]
		}
	}
	return nil
}

// waitChildFrame waits until the page has a child frame whose document is
// the front-channel URL (not an error page).
func waitChildFrame(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			t.Fatalf("e2e: frame tree: %v", err)
		}
		seen = seen[:0]
		if tree.FrameTree != nil {
			for _, c := range tree.FrameTree.ChildFrames {
				if c.Frame == nil {
					continue
				}
				seen = append(seen, c.Frame.URL+" "+c.Frame.UnreachableURL)
				if strings.HasPrefix(c.Frame.URL, prefix+"?") && c.Frame.UnreachableURL == "" {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: the OP's page has no loaded front-channel frame; frames: %q", seen)
}
