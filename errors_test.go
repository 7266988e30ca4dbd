package oxd

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestSecretsAbsentFromLogsAndErrors runs logins, refreshes, failures and
// logouts with debug logging and checks that no token or code the fake
// oxd issued appears in the logs, in an error string or in a response
// body other than the test page that prints the access token on purpose.
func TestSecretsAbsentFromLogsAndErrors(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	rg.login(b, "/private/", "alice")
	rg.advance(59*time.Minute + 30*time.Second)
	rg.get(b, "/private/")
	// Failures with secrets around: replayed code, refused refresh, oxd down.
	st := rg.startLogin(rg.browser(), "/private/")
	_ = st
	victim := rg.browser()
	vst := rg.startLogin(victim, "/private/")
	code := rg.fake.issueCode(vst, "alice")
	rg.get(victim, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(vst))
	attacker := rg.browser()
	ast := rg.startLogin(attacker, "/private/")
	var bodies []string
	bodies = append(bodies, rg.get(attacker, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(ast)).body)
	bodies = append(bodies, rg.get(attacker, "/callback?code="+url.QueryEscape(code)+"&state=forged").body)
	rg.fake.mu.Lock()
	clear(rg.fake.refresh)
	rg.fake.mu.Unlock()
	rg.advance(2 * time.Hour)
	bodies = append(bodies, rg.do(victim, "GET", "/private/", map[string]string{"Accept": "application/json"}).body)
	rg.login(b, "/private/", "alice")
	rg.fake.setFail(oxdclient.CmdGetLogoutURI, &oxdclient.TransportError{Command: "get_logout_uri", Kind: oxdclient.ErrTimeout})
	bodies = append(bodies, rg.do(b, "POST", "/logout", nil).body)

	secrets := rg.fake.allSecrets()
	if len(secrets) < 6 {
		t.Fatalf("only %d secrets issued", len(secrets))
	}
	logs := rg.logs.String()
	if !strings.Contains(logs, "login completed") || !strings.Contains(logs, "refreshed") {
		t.Fatalf("logs do not cover the flows:\n%s", logs)
	}
	rg.mu.Lock()
	var errs []string
	for _, e := range rg.errs {
		errs = append(errs, e.Error())
	}
	rg.mu.Unlock()
	if len(errs) < 3 {
		t.Fatalf("only %d errors", len(errs))
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("secret %s… in logs", s[:6])
		}
		for _, e := range errs {
			if strings.Contains(e, s) {
				t.Errorf("secret %s… in error %q", s[:6], e)
			}
		}
		for _, body := range bodies {
			if strings.Contains(body, s) {
				t.Errorf("secret %s… in a response", s[:6])
			}
		}
	}
}

// TestErrorHandlerCustom: a custom handler gets the status and a typed
// reason, and its response is what the client sees.
func TestErrorHandlerCustom(t *testing.T) {
	var got []error
	var mu sync.Mutex
	rg := newRig(t, rigOpts{cfg: func(c *Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, status int, err error) {
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "custom")
		}
	}})
	r := rg.get(rg.browser(), "/callback?code=x")
	if r.status != 400 || r.body != "custom" {
		t.Fatalf("%d %q", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !errors.Is(got[0], ErrStateMissing) {
		t.Fatalf("%v", got)
	}
}

// TestReasonsAreDistinct: every sentinel maps to its own code in the
// default error page.
func TestReasonsAreDistinct(t *testing.T) {
	seen := map[string]error{}
	for _, e := range []error{ErrLoginRequired, ErrStateMissing, ErrStateMismatch, ErrSessionCookieMissing, ErrCodeMissing,
		ErrBadCallback, &OPError{Code: "x"}, ErrACRMismatch, ErrSubjectMismatch, ErrUnavailable, ErrTimeout,
		ErrCommand, ErrRefreshFailed, ErrCrossOrigin, ErrMethodNotAllowed, ErrSession,
		ErrUMAChallenge, ErrUMAUnreachable, ErrUMAConfig, ErrUMADenied, ErrUMAClaims, ErrUMASharedRPT} {
		code, msg := reason(e)
		if code == "error" || msg == "" {
			t.Errorf("%v: no reason", e)
		}
		if prev, ok := seen[code]; ok {
			t.Errorf("%v and %v share %s", prev, e, code)
		}
		seen[code] = e
	}
}
