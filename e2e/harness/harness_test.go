package harness

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of stopping.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }

// TestRequiredFailsInCIAndSkipsElsewhere checks that Required follows
// internal/ciutil (whose tests cover every value of CI) and names the e2e
// component and the test command.
func TestRequiredFailsInCIAndSkipsElsewhere(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		set      bool
		wantFail bool
	}{
		{set: false, wantFail: false},
		{ci: "false", set: true, wantFail: false},
		{ci: "true", set: true, wantFail: true},
		{ci: "1", set: true, wantFail: true},
	} {
		t.Run(fmt.Sprintf("CI=%q set=%v", tc.ci, tc.set), func(t *testing.T) {
			t.Setenv("CI", tc.ci) // registers the restore
			if !tc.set {
				os.Unsetenv("CI")
			}
			r := &recorder{TB: t}
			Required(r, "chromium is not installed")
			msg := r.skipped
			if tc.wantFail {
				if r.fatal == "" || r.skipped != "" {
					t.Fatalf("want a failure, got skip=%q fatal=%q", r.skipped, r.fatal)
				}
				msg = r.fatal
			} else if r.skipped == "" || r.fatal != "" {
				t.Fatalf("want a skip, got skip=%q fatal=%q", r.skipped, r.fatal)
			}
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "e2e: chromium is not installed") ||
				!strings.Contains(msg, TestCommand) {
				t.Fatalf("message must be one line naming what is missing and %q: %q", TestCommand, msg)
			}
		})
	}
}

func TestDirFindsTheE2EModule(t *testing.T) {
	d := Dir()
	if d == "" || !isE2EDir(d) {
		t.Fatalf("Dir() = %q", d)
	}
	if _, err := os.Stat(d + "/go.mod"); err != nil {
		t.Fatal(err)
	}
}

func TestParsePageLoginConsentLogout(t *testing.T) {
	login := `<form autocomplete="off" action="/interaction/abc" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
  <button type="submit" class="login login-submit">Sign-in</button></form>`
	p := parsePage(login)
	if p.action != "/interaction/abc" || !p.has("login") || !p.has("password") || p.hiddenValue("prompt") != "login" {
		t.Fatalf("login page: %+v", p)
	}
	if len(p.hidden()) != 1 {
		t.Fatalf("hidden inputs of the login page: %v", p.hidden())
	}

	logout := `<form id="op.logoutForm" method="post" action="http://127.0.0.1:9/session/end/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/></form>`
	p = parsePage(logout)
	if p.action != "http://127.0.0.1:9/session/end/confirm" || p.hiddenValue("xsrf") != "a&b" {
		t.Fatalf("logout page: %+v", p)
	}

	errPage := `<main><p class="op-error" data-key="error"><strong>error</strong>: invalid_request</p>
<p class="op-error"><strong>error_description</strong>: redirect_uri did not match</p></main>`
	if got := parsePage(errPage).opError(); got != "error: invalid_request; error_description: redirect_uri did not match" {
		t.Fatalf("opError = %q", got)
	}
	if got := parsePage(login).opError(); got != "" {
		t.Fatalf("login page has no error, got %q", got)
	}
}

// The process-group tests are in internal/proctest, with the code.

func TestFreePortIsBindable(t *testing.T) {
	port := FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("port %d", port)
	}
}
