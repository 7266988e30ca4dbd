package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// testDemo is a demo started in process on a free loopback port, with a
// browser-like HTTP client (cookie jar, trusts the demo's certificate,
// does not follow redirects).
type testDemo struct {
	d        *demo
	c        *http.Client
	settings string
}

func startTestDemo(t *testing.T, settings string, args ...string) *testDemo {
	t.Helper()
	if settings == "" {
		settings = filepath.Join(t.TempDir(), "settings.json")
	}
	o, err := parseOptions(append([]string{"-addr", "127.0.0.1:0", "-settings", settings}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := start(ctx, o, io.Discard)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		d.Close()
	})
	return &testDemo{d: d, c: browserClient(t, d), settings: settings}
}

func browserClient(t *testing.T, d *demo) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(d.cert)
	return &http.Client{
		Jar:       jar,
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// get fetches path (relative to the demo) and returns status, Location
// and body.
func (td *testDemo) get(t *testing.T, target string) (int, string, string) {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = td.d.baseURL + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return td.do(t, req)
}

func (td *testDemo) post(t *testing.T, path string, form url.Values) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, td.d.baseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Origin", td.d.baseURL)
	return td.do(t, req)
}

func (td *testDemo) do(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := td.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// settingsForm is the settings form as the page fills it in.
func (td *testDemo) settingsForm() url.Values {
	return url.Values{
		"client_name":                {"demo test"},
		"op_host":                    {td.d.opHost},
		"authorization_redirect_uri": {td.d.baseURL + "/callback"},
		"post_logout_redirect_uri":   {td.d.baseURL + "/logged-out"},
		"claims_redirect_uri":        {td.d.baseURL + "/uma/claims-callback"},
		"scope":                      {"profile", "email"},
	}
}

func (td *testDemo) register(t *testing.T) {
	t.Helper()
	status, loc, body := td.post(t, "/settings/register", td.settingsForm())
	if status != http.StatusSeeOther || loc != "/settings?m=registered" {
		t.Fatalf("register: %d %q\n%s", status, loc, body)
	}
}

// login signs in as user through the OP's login form and returns the page
// the callback leads to.
func (td *testDemo) login(t *testing.T, user, password string) string {
	t.Helper()
	status, loc, body := td.get(t, "/login/start?return_to=/userinfo")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, td.d.opHost) {
		t.Fatalf("login start: %d %q\n%s", status, loc, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, td.c, loc, user, password)
	if err != nil {
		t.Fatalf("login at the OP: %v", err)
	}
	if !strings.HasPrefix(cb.String(), td.d.baseURL+"/callback?") {
		t.Fatalf("the OP sent the browser to %s", cb.Redacted())
	}
	status, loc, body = td.get(t, cb.String())
	if status != http.StatusSeeOther || loc != "/userinfo" {
		t.Fatalf("callback: %d %q\n%s", status, loc, body)
	}
	status, _, body = td.get(t, "/userinfo")
	if status != http.StatusOK {
		t.Fatalf("userinfo: %d\n%s", status, body)
	}
	return body
}

func readSettings(t *testing.T, path string) *Settings {
	t.Helper()
	s, err := loadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole path a newcomer takes: settings → register → sign in → user
// info → sign out, on the embedded default (development OP, in-process
// engine).
func TestDemoRegisterLoginUserinfoLogout(t *testing.T) {
	td := startTestDemo(t, "")

	status, loc, _ := td.get(t, "/userinfo")
	if status != http.StatusSeeOther || loc != "/settings?m=register-first" {
		t.Fatalf("before registration /userinfo: %d %q", status, loc)
	}
	td.register(t)
	s := readSettings(t, td.settings)
	if !s.Registered() || s.Site.OxdID == "" || s.Site.ClientSecret == "" || s.Oxd != "in-process engine" {
		t.Fatalf("settings file after registration: %+v", s)
	}
	if fi, err := os.Stat(td.settings); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings file mode: %v %v", fi.Mode(), err)
	}
	_, _, page := td.get(t, "/settings?m=registered")
	for _, want := range []string{s.Site.OxdID, "The client is registered", `id="update"`, `id="delete"`} {
		if !strings.Contains(page, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if strings.Contains(page, s.Site.ClientSecret.Reveal()) {
		t.Error("the settings page shows the setup client's secret")
	}

	page = td.login(t, "alice", "alice-password")
	for _, want := range []string{"Alice Example", "alice@example.test", `<code id="subject">alice</code>`, "Signed in as"} {
		if !strings.Contains(page, want) {
			t.Errorf("user info page lacks %q", want)
		}
	}

	// Logout is POST only, same-origin only.
	status, _, _ = td.get(t, "/logout")
	if status != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d, want 405", status)
	}
	req, _ := http.NewRequest(http.MethodPost, td.d.baseURL+"/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if status, _, _ := td.do(t, req); status != http.StatusForbidden {
		t.Errorf("cross-site POST /logout: %d, want 403", status)
	}
	if status, _, _ := td.get(t, "/userinfo"); status != http.StatusOK {
		t.Fatalf("still signed in after the refused logouts: %d", status)
	}

	status, loc, _ = td.post(t, "/logout", nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, td.d.opHost) {
		t.Fatalf("logout: %d %q", status, loc)
	}
	// The development OP ends its session at once with the id_token_hint
	// and sends the browser back.
	status, loc, _ = td.get(t, loc)
	if status/100 != 3 || !strings.HasPrefix(loc, td.d.baseURL+"/logged-out") {
		t.Fatalf("end_session: %d %q", status, loc)
	}
	status, _, page = td.get(t, loc)
	if status != http.StatusOK || !strings.Contains(page, "You are signed out") || !strings.Contains(page, `id="signed-out"`) {
		t.Fatalf("logged-out page: %d\n%s", status, page)
	}
	status, loc, _ = td.get(t, "/userinfo")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, td.d.opHost) {
		t.Fatalf("after logout /userinfo: %d %q, want a redirect to the OP", status, loc)
	}
}

func TestDemoUpdateAndDelete(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)
	before := readSettings(t, td.settings)
	td.login(t, "bob", "bob-password")

	form := td.settingsForm()
	form["scope"] = []string{"profile"} // drop email
	status, loc, body := td.post(t, "/settings/update", form)
	if status != http.StatusSeeOther || loc != "/settings?m=updated" {
		t.Fatalf("update: %d %q\n%s", status, loc, body)
	}
	after := readSettings(t, td.settings)
	if after.Site.OxdID != before.Site.OxdID || strings.Join(after.Scopes, " ") != "openid profile" {
		t.Fatalf("settings after update: oxd_id %q scopes %v", after.Site.OxdID, after.Scopes)
	}
	// An update keeps the sessions.
	if status, _, _ := td.get(t, "/userinfo"); status != http.StatusOK {
		t.Fatalf("after update /userinfo: %d", status)
	}

	status, loc, body = td.post(t, "/settings/delete", nil)
	if status != http.StatusSeeOther || loc != "/settings?m=deleted" {
		t.Fatalf("delete: %d %q\n%s", status, loc, body)
	}
	gone := readSettings(t, td.settings)
	if gone.Registered() || gone.ClientName != "demo test" {
		t.Fatalf("settings after delete: %+v", gone)
	}
	// Deleting ends every session.
	status, loc, _ = td.get(t, "/userinfo")
	if status != http.StatusSeeOther || loc != "/settings?m=register-first" {
		t.Fatalf("after delete /userinfo: %d %q", status, loc)
	}
	// The engine forgot the site.
	_, err := td.d.client.GetRP(context.Background(), oxdclient.GetRPParams{OxdID: before.Site.OxdID})
	if err == nil {
		t.Fatal("get_rp still knows the removed site")
	}
	// And the client can be registered again.
	td.register(t)
	td.login(t, "alice", "alice-password")
}

// A restarted demo with the in-process engine registers the saved client
// again, since the engine and the development OP start empty.
func TestDemoRestartRegistersAgain(t *testing.T) {
	settings := filepath.Join(t.TempDir(), "settings.json")
	first := startTestDemo(t, settings)
	first.register(t)
	old := readSettings(t, settings)

	second := startTestDemo(t, settings)
	if got := second.d.app.startupNote(); !strings.Contains(got, "registered again") {
		t.Errorf("startup note %q", got)
	}
	now := readSettings(t, settings)
	if now.Site.OxdID == old.Site.OxdID || now.OPHost != second.d.opHost {
		t.Fatalf("after restart: oxd_id %q (was %q), op_host %q (dev OP %q)", now.Site.OxdID, old.Site.OxdID, now.OPHost, second.d.opHost)
	}
	if !strings.HasPrefix(now.AuthorizationRedirectURI, second.d.baseURL+"/") {
		t.Errorf("redirect URI %q was not moved to the new address %s", now.AuthorizationRedirectURI, second.d.baseURL)
	}
	second.login(t, "alice", "alice-password")
}

func TestDemoSettingsValidation(t *testing.T) {
	td := startTestDemo(t, "")
	form := td.settingsForm()
	form.Set("authorization_redirect_uri", "javascript:alert(1)")
	status, _, body := td.post(t, "/settings/register", form)
	if status != http.StatusBadRequest || !strings.Contains(body, "must be an absolute http(s) URL") {
		t.Fatalf("bad redirect URI: %d\n%s", status, body)
	}
	if s := readSettings(t, td.settings); s != nil {
		t.Fatalf("a refused form wrote the settings file: %+v", s)
	}
	// A cross-site form post is refused before it reaches oxd.
	req, _ := http.NewRequest(http.MethodPost, td.d.baseURL+"/settings/register", strings.NewReader(td.settingsForm().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if status, _, _ := td.do(t, req); status != http.StatusForbidden {
		t.Fatalf("cross-site register: %d, want 403", status)
	}
}

func TestDemoSecurityHeaders(t *testing.T) {
	td := startTestDemo(t, "")
	resp, err := td.c.Get(td.d.baseURL + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	td.register(t)
	td.login(t, "alice", "alice-password")
	u, _ := url.Parse(td.d.baseURL)
	var session *http.Cookie
	for _, c := range td.c.Jar.Cookies(u) {
		if c.Name == sessionCookieName {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
}

func TestParseOptions(t *testing.T) {
	for _, args := range [][]string{
		{"-oxd", "127.0.0.1:8099", "-oxd-https", "https://127.0.0.1:8443"},
		{"-oxd-https-ca", "ca.pem"},
		{"-tls-cert", "c.pem"},
		{"-op", "ftp://op"},
		{"extra"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
	t.Setenv("OXD_DEMO_ADDR", "127.0.0.1:7000")
	o, err := parseOptions([]string{"-settings", "/x/s.json"}, io.Discard)
	if err != nil || o.Addr != "127.0.0.1:7000" || o.SettingsPath != "/x/s.json" {
		t.Fatalf("env default: %+v %v", o, err)
	}
}

// TestParseClientOptions: the pre-registered client flags; secrets come
// from the environment only, and every inconsistency is refused with a
// message naming the flag or variable, never the secret.
func TestParseClientOptions(t *testing.T) {
	const secret = "demo-secret-0123456789abcdefghijklmnop"
	for _, tc := range []struct {
		args              []string
		secret, setupSecr string
		want              string // "" = accepted
	}{
		{[]string{"-client-id", "app"}, secret, "", ""},
		{[]string{"-client-id", "app", "-client-auth-method", "private_key_jwt"}, "", "", ""},
		{[]string{"-client-id", "app", "-client-auth-method", "none", "-setup-client-id", "p"}, "", secret, ""},
		{[]string{"-client-auth-method", "private_key_jwt"}, "", "", ""},
		{[]string{"-client-id", "app"}, "", "", "OXD_DEMO_CLIENT_SECRET"},
		{[]string{"-client-id", "app", "-client-auth-method", "client_secret_jwt"}, "", "", "OXD_DEMO_CLIENT_SECRET"},
		{[]string{"-client-id", "app", "-client-auth-method", "none"}, secret, "", "unset OXD_DEMO_CLIENT_SECRET"},
		{[]string{"-client-id", "app", "-client-auth-method", "tls_client_auth"}, secret, "", "-client-auth-method"},
		{nil, secret, "", "-client-id is not"},
		{[]string{"-client-id", "app", "-setup-client-id", "p"}, secret, "", "OXD_DEMO_SETUP_CLIENT_SECRET"},
		{[]string{"-setup-client-id", "p"}, "", secret, "needs -client-id"},
		{[]string{"-client-id", "app", "-setup-client-auth-method", "client_secret_post"}, secret, "", "need -setup-client-id"},
	} {
		t.Setenv(envClientSecret, tc.secret)
		t.Setenv(envSetupClientSecret, tc.setupSecr)
		o, err := parseOptions(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error naming %q", tc.args, err, tc.want)
		case err != nil && strings.Contains(err.Error(), secret):
			t.Errorf("%q: the error quotes the secret", tc.args)
		case err == nil && o.Clients.ClientSecret.Reveal() != tc.secret:
			t.Errorf("%q: the secret was not read from the environment", tc.args)
		}
	}
}

func TestParseUMAChallenge(t *testing.T) {
	ticket, as, err := parseUMAChallenge(`UMA realm="oxd-demo", as_uri="http://127.0.0.1:1", ticket="t-1"`)
	if err != nil || ticket != "t-1" || as != "http://127.0.0.1:1" {
		t.Fatalf("%q %q %v", ticket, as, err)
	}
	for _, h := range []string{"", `Bearer realm="x"`, `UMA realm="x", as_uri="http://a"`, `UMA ticket=t`, `UMA ticket="t`} {
		if _, _, err := parseUMAChallenge(h); err == nil {
			t.Errorf("accepted %q", h)
		}
	}
}

// settingsJSON checks the file format the settings page writes.
func TestSettingsFileFormat(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)
	b, err := os.ReadFile(td.settings)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_name", "op_host", "authorization_redirect_uri", "post_logout_redirect_uri", "claims_redirect_uri", "scope", "oxd", "site"} {
		if _, ok := m[k]; !ok {
			t.Errorf("settings file lacks %q", k)
		}
	}
}

var (
	formActionRe = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	hiddenRe     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
	claimInputRe = regexp.MustCompile(`<input id="claim-([a-z_]+)"`)
	claimsLinkRe = regexp.MustCompile(`id="claims-link" href="([^"]+)"`)
)

// gatherClaims fills the development OP's claims page at link with
// value for every claim it asks for, and returns where the OP sends the
// browser.
func (td *testDemo) gatherClaims(t *testing.T, link, value string) string {
	t.Helper()
	status, _, page := td.get(t, link)
	if status != http.StatusOK {
		t.Fatalf("claims page: %d\n%s", status, page)
	}
	action := formActionRe.FindStringSubmatch(page)
	if action == nil {
		t.Fatalf("no form on the claims page:\n%s", page)
	}
	form := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range claimInputRe.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], value)
	}
	req, _ := http.NewRequest(http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, loc, body := td.do(t, req)
	if status/100 != 3 {
		t.Fatalf("claims form: %d\n%s", status, body)
	}
	return loc
}

func (td *testDemo) requestResource(t *testing.T, key string) string {
	t.Helper()
	status, loc, body := td.post(t, "/uma/request", url.Values{"resource": {key}})
	if status != http.StatusSeeOther || loc != "/uma#trace" {
		t.Fatalf("request %s: %d %q\n%s", key, status, loc, body)
	}
	status, _, page := td.get(t, "/uma")
	if status != http.StatusOK {
		t.Fatalf("/uma: %d", status)
	}
	return page
}

// The UMA page: a resource granted by policy, one that needs claims
// gathering, one the AS refuses; and the browser-mode page.
func TestDemoUMA(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)
	td.login(t, "bob", "bob-password")

	page := td.requestResource(t, "photos")
	for _, want := range []string{
		"HTTP/1.1 401 Unauthorized",
		`WWW-Authenticate: UMA realm=&#34;oxd-demo&#34;, as_uri=&#34;` + td.d.opHost + `&#34;, ticket=&#34;`,
		"The AS issued an RPT",
		"HTTP/1.1 200 OK",
		`class="result granted"`,
		"RPT in your session",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("photos trace lacks %q\n%s", want, page)
		}
	}
	// The second request uses the RPT kept in the session.
	page = td.requestResource(t, "photos")
	if !strings.Contains(page, "access granted without a new RPT") {
		t.Errorf("second photos request did not reuse the RPT:\n%s", page)
	}

	page = td.requestResource(t, "reports")
	m := claimsLinkRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "need_info") {
		t.Fatalf("reports: no claims link:\n%s", page)
	}
	loc := td.gatherClaims(t, html.UnescapeString(m[1]), "DE")
	if !strings.HasPrefix(loc, td.d.baseURL+"/uma/claims-callback?") {
		t.Fatalf("the AS sent the browser to %s", loc)
	}
	// A replayed or foreign state is refused.
	status, _, _ := td.get(t, td.d.baseURL+"/uma/claims-callback?ticket=x&state=forged")
	if status != http.StatusBadRequest {
		t.Errorf("forged claims redirect: %d, want 400", status)
	}
	status, loc2, _ := td.get(t, loc)
	if status != http.StatusSeeOther || loc2 != "/uma#trace" {
		t.Fatalf("claims callback: %d %q", status, loc2)
	}
	_, _, page = td.get(t, "/uma")
	if !strings.Contains(page, `class="result granted"`) || !strings.Contains(page, "The AS gathered the claims") {
		t.Errorf("reports after claims gathering:\n%s", page)
	}
	// The same state cannot be used twice.
	if status, _, _ := td.get(t, loc); status != http.StatusBadRequest {
		t.Errorf("replayed claims redirect: %d, want 400", status)
	}

	page = td.requestResource(t, "admin")
	if !strings.Contains(page, `class="result denied"`) {
		t.Errorf("admin was not denied:\n%s", page)
	}

	// No RPT and no secret on any page.
	s := readSettings(t, td.settings)
	for _, p := range []string{"/uma", "/userinfo", "/settings"} {
		_, _, body := td.get(t, p)
		if strings.Contains(body, s.Site.ClientSecret.Reveal()) {
			t.Errorf("%s shows the client secret", p)
		}
	}

	// The API itself: no RPT → 401 with a challenge, never a redirect.
	req, _ := http.NewRequest(http.MethodGet, td.d.baseURL+"/api/photos/7", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := td.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `UMA realm="oxd-demo"`) {
		t.Errorf("API without RPT: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// Browser mode: bob has no country claim, so the middleware sends him
// through claims gathering; alice's pushed ID token satisfies the policy.
func TestDemoUMABrowserMode(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)

	td.login(t, "bob", "bob-password")
	status, loc, body := td.get(t, "/uma/browser/reports/q3")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, td.d.opHost) {
		t.Fatalf("bob, browser page: %d %q\n%s", status, loc, body)
	}
	back := td.gatherClaims(t, loc, "FR")
	status, loc, body = td.get(t, back)
	if status != http.StatusSeeOther || loc != "/uma/browser/reports/q3" {
		t.Fatalf("claims callback (browser mode): %d %q\n%s", status, loc, body)
	}
	status, _, page := td.get(t, loc)
	if status != http.StatusOK || !strings.Contains(page, `id="browser-granted"`) || !strings.Contains(page, "WWW-Authenticate: UMA realm=") {
		t.Fatalf("bob, browser page after claims: %d\n%s", status, page)
	}

	td.post(t, "/logout", nil)
	td.c.Jar, _ = cookiejar.New(nil)
	td.login(t, "alice", "alice-password")
	status, _, page = td.get(t, "/uma/browser/reports/q3")
	if status != http.StatusOK || !strings.Contains(page, "obtained for this visit") {
		t.Fatalf("alice, browser page: %d\n%s", status, page)
	}
}

// A claims redirect that belongs to no round trip of this browser is
// refused by both handlers that share the claims redirect URI.
func TestDemoForeignClaimsRedirect(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)
	td.login(t, "alice", "alice-password")
	status, _, body := td.get(t, "/uma/claims-callback?ticket=t1&state=s1")
	if status != http.StatusBadRequest || !strings.Contains(body, "Claims response not recognised") {
		t.Fatalf("foreign claims redirect: %d\n%s", status, body)
	}
}

// TestDemoSignedOutAtOP: signing out at the development OP (its own
// end_session page, not the demo's button) ends the demo's session through
// back-channel logout, and the home page says so.
func TestDemoSignedOutAtOP(t *testing.T) {
	td := startTestDemo(t, "")
	td.register(t)
	td.login(t, "alice", "alice-password")
	end := td.d.opHost + "/end_session"
	status, _, body := td.get(t, end)
	m := regexp.MustCompile(`name="xsrf" value="([^"]+)"`).FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("end_session: %d\n%s", status, body)
	}
	req, _ := http.NewRequest(http.MethodPost, end, strings.NewReader(url.Values{"xsrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _, body := td.do(t, req); status != http.StatusOK {
		t.Fatalf("confirm sign-out: %d\n%s", status, body)
	}
	if status, loc, _ := td.get(t, "/userinfo"); status != http.StatusSeeOther || strings.HasPrefix(loc, "/userinfo") {
		t.Fatalf("userinfo after signing out at the OP: %d %q", status, loc)
	}
	_, _, body = td.get(t, "/")
	if !strings.Contains(body, `id="ended-at-op"`) {
		t.Fatalf("home does not say the session ended at the OP:\n%s", body)
	}
	// Once only.
	if _, _, body = td.get(t, "/"); strings.Contains(body, `id="ended-at-op"`) {
		t.Fatal("the notice is shown again")
	}
}
