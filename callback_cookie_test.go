package oxd

import (
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMissingCookieNamesTheCause: a callback without the session cookie
// says which of the developer's mistakes it was, in the log and on the
// page: the request's host differs from the registered redirect URI's
// (Config.RedirectURL); a Secure cookie over plain HTTP on a host that is
// not loopback; or, on the redirect URI's own loopback host where the
// Secure cookie does work over plain HTTP, a sign-in started on another
// host (localhost against 127.0.0.1). No oxd command is sent.
func TestMissingCookieNamesTheCause(t *testing.T) {
	for _, tc := range []struct {
		name, redirectURL, target string
		tls                       bool
		log, page                 []string
		notLog                    []string
	}{
		{
			name: "login on localhost, redirect URI on 127.0.0.1", redirectURL: "http://127.0.0.1:8080/callback", target: "http://localhost:8080/callback",
			log:  []string{`this request's host \"localhost:8080\" differs from the registered redirect URI's host \"127.0.0.1:8080\" (Config.RedirectURL)`, "open the application at http://127.0.0.1:8080"},
			page: []string{"Open the application at http://127.0.0.1:8080 and sign in again."},
		},
		{
			name: "https, another host than Config.RedirectURL", redirectURL: "https://app.example/callback", target: "https://www.app.example/callback", tls: true,
			log:  []string{`this request's host \"www.app.example\" differs from the registered redirect URI's host \"app.example\"`},
			page: []string{"Open the application at https://app.example and sign in again."},
		},
		{
			name: "explicit default port: the same host", redirectURL: "https://app.example:443/callback", target: "https://app.example/callback", tls: true,
			log:    []string{"the browser has no session cookie for https://app.example, the registered redirect URI's host"},
			page:   []string{"Sign in again starting from https://app.example:443"},
			notLog: []string{"differs"},
		},
		{
			name: "Secure cookie over plain HTTP off loopback", target: "http://app.example:8080/callback",
			log:    []string{`the callback came over plain HTTP to \"app.example:8080\", which is not a loopback host, and the session cookie is Secure`, "Config.InsecureCookies"},
			page:   []string{"over this unencrypted connection"},
			notLog: []string{"started on another host"},
		},
		{
			name: "callback on the redirect URI's loopback host: the login started elsewhere", redirectURL: "http://127.0.0.1:8080/callback", target: "http://127.0.0.1:8080/callback",
			log:    []string{"the browser has no session cookie for http://127.0.0.1:8080, the registered redirect URI's host: the sign-in was most likely started on another host", "localhost when the redirect URI is on 127.0.0.1"},
			page:   []string{"Sign in again starting from http://127.0.0.1:8080"},
			notLog: []string{"is Secure"},
		},
		{
			name: "loopback, Config.RedirectURL unset", target: "http://localhost:8081/callback",
			log:    []string{"the browser has no session cookie for http://localhost:8081, the registered redirect URI's host"},
			page:   []string{"Sign in again starting from this address"},
			notLog: []string{"is Secure"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, rigOpts{cfg: func(c *Config) { c.RedirectURL = tc.redirectURL }})
			r := httptest.NewRequest(http.MethodGet, tc.target+"?code=c0de&state=st4te", nil)
			if !tc.tls {
				r.TLS = nil
			}
			rec := httptest.NewRecorder()
			rg.auth.CallbackHandler().ServeHTTP(rec, r)
			if rec.Code != http.StatusBadRequest || !errors.Is(rg.lastErr(), ErrSessionCookieMissing) {
				t.Fatalf("status %d, error %v", rec.Code, rg.lastErr())
			}
			logs := rg.logs.String()
			for _, want := range tc.log {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
			for _, not := range tc.notLog {
				if strings.Contains(logs, not) {
					t.Errorf("log has %q:\n%s", not, logs)
				}
			}
			body := rec.Body.String()
			for _, want := range tc.page {
				if !strings.Contains(body, html.EscapeString(want)) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "c0de") || strings.Contains(body, "st4te") || strings.Contains(logs, "c0de") {
				t.Error("the code or state was echoed")
			}
			if n := rg.fake.total(); n != 0 {
				t.Errorf("%d oxd commands", n)
			}
		})
	}
}
