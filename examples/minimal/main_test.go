package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/syncbuf"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdclient/umaclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestMinimal runs the README's two lines for real: it builds
// cmd/oxd-server, starts it with -dev-op on a fixed -dev-op-addr, starts
// the application (run, as main does) with a fresh site file, signs in with
// a cookie jar through the development OP's form, calls the UMA route
// (401 challenge, an RPT through oxd with umaclient, 200), signs out; then
// restarts the development server and the application on the same
// addresses and signs in again. Between the restarts, EnsureSite without
// ReRegisterOnMismatch reports the stale site file with the fix.
func TestMinimal(t *testing.T) {
	bin := buildOxdServer(t)
	dir := t.TempDir()
	cfg := config{
		Addr:     freeAddr(t),
		Oxd:      freeAddr(t),
		OP:       "http://" + freeAddr(t),
		SiteFile: filepath.Join(dir, "oxd-site.json"),
	}
	devOPAddr := strings.TrimPrefix(cfg.OP, "http://")

	// First run.
	oxdLogs := startOxdServer(t, bin, cfg.Oxd, devOPAddr)
	for _, want := range []string{"DEVELOPMENT OP RUNNING", "forgotten them", "is stale: delete it"} {
		if !strings.Contains(oxdLogs.String(), want) {
			t.Errorf("oxd-server did not warn %q:\n%s", want, oxdLogs)
		}
	}
	app := startApp(t, cfg)
	c := browser(t)
	app.signIn(t, c)
	app.callUMARoute(t, cfg)
	app.signOut(t, c)
	first, err := oxdclient.LoadSite(cfg.SiteFile)
	if err != nil {
		t.Fatal(err)
	}

	// Restart both: the development OP (same address) and oxd's memory
	// store have forgotten the site.
	app.stop(t)
	oxdLogs.stop(t)
	startOxdServer(t, bin, cfg.Oxd, devOPAddr)

	// Without ReRegisterOnMismatch the stale file is an error naming the
	// file and the fix, and nothing is registered.
	sc := socketClient(t, cfg.Oxd)
	_, err = oxdclient.EnsureSite(context.Background(), sc, cfg.SiteFile, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: cfg.OP, AuthorizationRedirectURI: app.url + "/callback", PostLogoutRedirectURI: app.url + "/logged-out",
		Scope: []string{"openid", "profile", "email"}}})
	var sm *oxdclient.SiteMismatchError
	if !errors.As(err, &sm) || sm.Field != "oxd_id" || !oxdclient.IsInvalidOxdID(err) ||
		!strings.Contains(err.Error(), "delete "+cfg.SiteFile+" and restart") {
		t.Fatalf("EnsureSite with a stale site file: %v", err)
	}

	// The application re-registers (ReRegisterOnMismatch) and signs in.
	app = startApp(t, cfg)
	second, err := oxdclient.LoadSite(cfg.SiteFile)
	if err != nil {
		t.Fatal(err)
	}
	if second.OxdID == first.OxdID {
		t.Fatal("the site was not registered again")
	}
	c = browser(t) // the old cookies belong to forgotten sessions; a reused jar works too
	app.signIn(t, c)
	app.callUMARoute(t, cfg)
	app.stop(t)
}

// TestMinimalLinksNoRedis: the application imports oxd and oxdclient only;
// its program links no go-redis.
func TestMinimalLinksNoRedis(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "redis") {
			t.Errorf("examples/minimal links %s", p)
		}
	}
	if !strings.Contains(string(out), "github.com/oxdgo/oxd/oxdclient\n") {
		t.Fatal("go list -deps does not list oxdclient")
	}
}

type appRun struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startApp(t *testing.T, cfg config) *appRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &appRun{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { a.done <- run(ctx, cfg, func(u string) { ready <- u }) }()
	select {
	case a.url = <-ready:
	case err := <-a.done:
		cancel()
		t.Fatalf("the application did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the application did not start in time")
	}
	t.Cleanup(func() { a.stop(t) })
	return a
}

func (a *appRun) stop(t *testing.T) {
	t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	if err := <-a.done; err != nil {
		t.Errorf("application: %v", err)
	}
}

func (a *appRun) get(t *testing.T, c *http.Client, target string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = a.url + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func (a *appRun) signIn(t *testing.T, c *http.Client) {
	t.Helper()
	status, _, body := a.get(t, c, "/")
	if status != http.StatusOK || !strings.Contains(body, `href="/login?return_to=/account"`) {
		t.Fatalf("home: %d\n%s", status, body)
	}
	status, h, _ := a.get(t, c, "/login?return_to=/account")
	if status != http.StatusSeeOther {
		t.Fatalf("/login: %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, c, h.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != a.url+"/callback" {
		t.Fatalf("the OP redirected to %s", got)
	}
	status, h, _ = a.get(t, c, cb.String())
	if status != http.StatusSeeOther || h.Get("Location") != "/account" {
		t.Fatalf("callback: %d %q", status, h.Get("Location"))
	}
	status, _, body = a.get(t, c, "/account")
	if status != http.StatusOK || !strings.Contains(body, "alice@example.test") {
		t.Fatalf("account: %d\n%s", status, body)
	}
}

// callUMARoute is an API client without a session: 401 with a UMA
// challenge, an RPT through oxd (uma_rp_get_rpt) with umaclient, 200.
func (a *appRun) callUMARoute(t *testing.T, cfg config) {
	t.Helper()
	api := &http.Client{Timeout: 30 * time.Second}
	status, h, body := a.get(t, api, "/api/photos/7", "Accept", "application/json")
	if status != http.StatusUnauthorized || body != "" {
		t.Fatalf("API without an RPT: %d %q", status, body)
	}
	ch, err := umaclient.ParseChallenge(h)
	if err != nil {
		t.Fatal(err)
	}
	site, err := oxdclient.LoadSite(cfg.SiteFile)
	if err != nil {
		t.Fatal(err)
	}
	oc := socketClient(t, cfg.Oxd)
	oc.SetProtection(site.ProtectionCredentials()) // a site set up by the application
	uc, err := umaclient.New(umaclient.Config{Issuers: []string{cfg.OP}, Oxd: oc, OxdID: site.OxdID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rpt, err := uc.RPT(ctx, ch, umaclient.Options{})
	if err != nil {
		t.Fatalf("RPT: %v", err)
	}
	status, _, body = a.get(t, api, "/api/photos/7", "Accept", "application/json", "Authorization", "Bearer "+rpt.AccessToken.Reveal())
	if status != http.StatusOK || !strings.Contains(body, `"id":"7"`) {
		t.Fatalf("API with the RPT: %d %s", status, body)
	}
}

func (a *appRun) signOut(t *testing.T, c *http.Client) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.url+"/logout", nil)
	req.Header.Set("Origin", a.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	status, _, body := a.get(t, c, "/logged-out")
	if status != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("logged-out page: %d %s", status, body)
	}
	if status, _, _ := a.get(t, c, "/account", "Accept", "application/json"); status != http.StatusUnauthorized {
		t.Fatalf("account after logout: %d, want 401", status)
	}
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func socketClient(t *testing.T, addr string) *oxdclient.Client {
	t.Helper()
	s, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := oxdclient.New(s, oxdclient.Config{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func goTool(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	return g
}

func buildOxdServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oxd-server")
	out, err := exec.Command(goTool(t), "build", "-o", bin, "github.com/oxdgo/oxd/cmd/oxd-server").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/oxd-server: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverRun is a started oxd-server; its output goes to the embedded
// buffer.
type serverRun struct {
	cmd    *exec.Cmd
	exited chan struct{}
	syncbuf.Buffer
}

// startOxdServer starts the development oxd of the README:
// oxd-server -dev-op -dev-op-addr <devOPAddr>, its socket on sockAddr.
func startOxdServer(t *testing.T, bin, sockAddr, devOPAddr string) *serverRun {
	t.Helper()
	s := &serverRun{exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "-dev-op", "-dev-op-addr", devOPAddr, "-listen", sockAddr)
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.stop(t) })
	re := regexp.MustCompile(`msg="oxd socket protocol listening" addr=` + regexp.QuoteMeta(sockAddr))
	deadline := time.Now().Add(30 * time.Second)
	for !re.MatchString(s.String()) {
		select {
		case <-s.exited:
			t.Fatalf("oxd-server exited:\n%s", s)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("oxd-server did not start:\n%s", s)
		}
	}
	if !strings.Contains(s.String(), "issuer=http://"+devOPAddr) {
		t.Fatalf("the development OP is not on %s:\n%s", devOPAddr, s)
	}
	return s
}

func (s *serverRun) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("oxd-server did not stop on SIGTERM:\n%s", s)
	}
}
