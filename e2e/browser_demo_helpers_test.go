package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdserver"
)

// demoApp is the demo application running as its own process, started the
// way a user starts it (a built binary with flags).
type demoApp struct {
	proc     *harness.ProcessGroup
	url      string // https://127.0.0.1:<port>
	settings string
}

// buildDemo builds examples/demo into a temporary directory with the go
// command (workspace mode when go.work is there, the examples module's own
// replaces otherwise).
func buildDemo(t *testing.T) string {
	t.Helper()
	return goBuild(t, "examples", "./demo", "demo")
}

// goBuild builds the package pkg of the module in dir (relative to the
// repository's root) into a temporary directory and returns the binary.
func goBuild(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		harness.Required(t, "the go command is not on PATH (needed to build "+name+")")
	}
	e2eDir := harness.Dir()
	if e2eDir == "" {
		harness.Required(t, "the e2e directory was not found; set OXD_E2E_DIR")
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join(filepath.Dir(e2eDir), dir)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: go build %s: %v\n%s", path.Join(dir, pkg), err, out)
	}
	t.Logf("e2e: built %s in %v", name, time.Since(start).Round(time.Millisecond))
	return bin
}

var demoReadyLine = regexp.MustCompile(`^oxd for Go demo: open (https://127\.0\.0\.1:\d+)$`)

// startDemo starts the demo binary on a free loopback port with a fresh
// settings file and waits for its banner.
func startDemo(t *testing.T, bin string, args ...string) *demoApp {
	t.Helper()
	return startDemoEnv(t, bin, nil, args...)
}

// startDemoEnv is startDemo with extra environment variables (KEY=value)
// and, when args has no -addr, on a port the kernel picks.
func startDemoEnv(t *testing.T, bin string, env []string, args ...string) *demoApp {
	t.Helper()
	settings := filepath.Join(t.TempDir(), "settings.json")
	if !slices.Contains(args, "-addr") {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	cmd := exec.Command(bin, append([]string{"-settings", settings}, args...)...)
	cmd.Env = append(append(os.Environ(), "OXD_DEMO_VERBOSE=true"), env...) // debug logging, for the secrets audit
	proc := harness.StartProcessGroup(t, "demo", cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := proc.WaitForLine(ctx, demoReadyLine)
	if err != nil {
		t.Fatalf("e2e: the demo did not start: %v\n%s", err, proc.Output())
	}
	return &demoApp{proc: proc, url: m[1], settings: settings}
}

// startSocketOxd serves a fresh oxd engine behind the oxd-server socket
// protocol on a loopback port and returns its address.
func startSocketOxd(t *testing.T) string {
	t.Helper()
	eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")}) // the test OPs are plain http on loopback
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return serveSocket(t, eng)
}

// serveSocket serves eng behind the oxd-server socket protocol on a
// loopback port until the test ends and returns its address.
func serveSocket(t *testing.T, eng *oxdserver.Engine) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &oxdserver.SocketServer{Engine: eng, Logger: harness.DebugLogger(t, "oxd-socket")}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// demoBrowser starts headless Chromium (harness.NewBrowser) and makes it
// accept the demo's self-signed certificate: the test-only equivalent of
// --ignore-certificate-errors.
func demoBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx := harness.NewBrowser(t, harness.WithBrowserTimeout(4*time.Minute), harness.WithWindowSize(1200, 900))
	if _, err := chromedp.CallBrowser(ctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true}); err != nil {
		t.Fatalf("e2e: ignore certificate errors: %v", err)
	}
	return ctx
}

// pageDriver drives one browser tab through the demo, saving a screenshot
// of every page it checks.
type pageDriver struct {
	t    *testing.T
	ctx  context.Context
	shot int
}

// do runs steps; a failure is fatal and says which step.
func (p *pageDriver) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(p.ctx, chromedp.Location())
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("body")))
		p.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("e2e: %s: %v\n  at %s\n  page text: %s", what, err, loc, clip(body, 1500))
	}
}

// text returns the visible text of the first element matching sel.
func (p *pageDriver) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("e2e: text of %s: %v", sel, err)
	}
	return s
}

// value returns the value of the form field sel.
func (p *pageDriver) value(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("e2e: value of %s: %v", sel, err)
	}
	return v
}

// location is the address of the page.
func (p *pageDriver) location() string {
	p.t.Helper()
	loc, err := chromedp.Run(p.ctx, chromedp.Location())
	if err != nil {
		p.t.Fatalf("e2e: location: %v", err)
	}
	return loc
}

// expectText fails unless the text of sel contains every want.
func (p *pageDriver) expectText(sel string, wants ...string) {
	p.t.Helper()
	got := p.text(sel)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			p.t.Errorf("e2e: %s at %s does not show %q; it shows:\n%s", sel, p.location(), w, clip(got, 1500))
		}
	}
}

// expectNoText fails when the text of sel contains one of bad.
func (p *pageDriver) expectNoText(sel string, bad ...string) {
	p.t.Helper()
	got := p.text(sel)
	for _, b := range bad {
		if b != "" && strings.Contains(got, b) {
			p.t.Errorf("e2e: %s at %s shows %q", sel, p.location(), clip(b, 20))
		}
	}
}

// screenshot saves the page under e2e/artifacts with a running number.
func (p *pageDriver) screenshot(name string) {
	p.t.Helper()
	p.shot++
	harness.Screenshot(p.ctx, p.t, fmt.Sprintf("%02d-%s", p.shot, name))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
