package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the Chromium binary: $OXD_E2E_CHROMIUM, else
// /usr/bin/chromium (Debian's package), else chromium or chromium-browser on
// PATH. A missing browser is reported through Required.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OXD_E2E_CHROMIUM"); p != "" {
		if !fileExists(p) {
			Required(t, "OXD_E2E_CHROMIUM="+p+" does not exist")
		}
		return p
	}
	if fileExists("/usr/bin/chromium") {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Required(t, "chromium is not installed (Debian package chromium)")
	return ""
}

type browserConfig struct {
	timeout       time.Duration
	width, height int
}

// BrowserOption configures NewBrowser.
type BrowserOption func(*browserConfig)

// WithBrowserTimeout bounds the whole life of the browser context (default 3 min).
func WithBrowserTimeout(d time.Duration) BrowserOption {
	return func(c *browserConfig) { c.timeout = d }
}

// WithWindowSize sets the window size (default 1280×900).
func WithWindowSize(width, height int) BrowserOption {
	return func(c *browserConfig) { c.width, c.height = width, height }
}

// NewBrowser starts a headless Chromium (chromedp v0.23, over a pipe) with a
// fresh temporary profile and returns the context of its first tab: pass it
// to chromedp.Do and chromedp.Run. Host names do not resolve in this browser,
// only the literal 127.0.0.1 (and localhost) does, so pages can reach nothing
// but the loopback servers of the test. The browser is closed, its processes
// waited for and its profile removed when the test ends.
func NewBrowser(t testing.TB, opts ...BrowserOption) context.Context {
	t.Helper()
	cfg := browserConfig{timeout: 3 * time.Minute, width: 1280, height: 900}
	for _, o := range opts {
		o(&cfg)
	}
	execPath := Chromium(t)

	out := &tailWriter{max: 16 * 1024}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("no-default-browser-check", true),
		// The provider's pages @import web fonts; nothing but loopback may be reached.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.WindowSize(cfg.width, cfg.height),
		chromedp.CombinedOutput(out),
		// No UserDataDir: chromedp makes a temporary profile, and on close it
		// kills any Chromium child still using it and removes it.
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	// chromedp reports protocol errors from its own goroutines; t.Logf must not
	// be called once the test is over, so they stop at cleanup.
	var logMu sync.Mutex
	logOpen := true
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if logOpen {
			t.Logf("chromedp: "+format, args...)
		}
	}))
	ctx, cancelTimeout := context.WithTimeout(tabCtx, cfg.timeout)

	t.Cleanup(func() {
		logMu.Lock()
		logOpen = false
		logMu.Unlock()
		cancelTimeout()
		closeCtx, cancel := context.WithTimeout(tabCtx, 10*time.Second)
		_ = chromedp.Cancel(closeCtx) // graceful close of the browser
		cancel()
		cancelTab()
		cancelAlloc() // kills what is left and waits for the process to exit
		if t.Failed() {
			t.Logf("e2e: chromium output (tail):\n%s", out.String())
		}
	})

	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		t.Fatalf("e2e: start chromium (%s): %v\n%s", execPath, err, out.String())
	}
	return ctx
}

// ArtifactsDir returns e2e/artifacts (git-ignored), creating it if needed.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(e2eDir(t), "artifacts")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return d
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a PNG of the whole page of the browser context ctx to
// e2e/artifacts/<test name>-<name>.png and returns its path. A failure to
// capture or write is a test error, not a fatal one.
func Screenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Errorf("e2e: screenshot %q: %v", name, err)
		return ""
	}
	file := strings.Trim(unsafeName.ReplaceAllString(t.Name()+"-"+name, "_"), "_") + ".png"
	p := filepath.Join(ArtifactsDir(t), file)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Errorf("e2e: screenshot %q: %v", name, err)
		return ""
	}
	t.Logf("e2e: screenshot %s", p)
	return p
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
