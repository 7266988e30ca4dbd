package oxd

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdtest"
)

// opCallback starts a login at path in a new browser and signs in at the
// development OP; it returns the browser and the OP's redirect to the
// callback (not followed).
func opCallback(t *testing.T, fa *flowApp, path string) (*http.Client, *url.URL) {
	t.Helper()
	b := fa.browser()
	r := fa.do(b, "GET", path, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, r.header.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	return b, cb
}

func lastLogged(fa *flowApp, want error) bool {
	return strings.Contains(fa.logs.String(), want.Error())
}

// TestAuthorizationResponseIssuer (RFC 9207): the development OP sends iss
// and announces authorization_response_iss_parameter_supported. A callback
// whose iss is another issuer, or that lacks iss, is refused with 400
// before the code is exchanged; the genuine one is accepted. Through the
// engine in process and over the socket protocol.
func TestAuthorizationResponseIssuer(t *testing.T) {
	for _, transport := range []string{"inprocess", "socket"} {
		t.Run(transport, func(t *testing.T) {
			fa := newFlowApp(t, transport, memStore)
			for name, mutate := range map[string]func(q url.Values){
				"mismatch":        func(q url.Values) { q.Set("iss", "https://evil.example") },
				"trailing-slash":  func(q url.Values) { q.Set("iss", q.Get("iss")+"/") },
				"missing":         func(q url.Values) { q.Del("iss") },
				"empty":           func(q url.Values) { q.Set("iss", "") },
				"another-tenant":  func(q url.Values) { q.Set("iss", q.Get("iss")+"/other") },
				"case-difference": func(q url.Values) { q.Set("iss", strings.ToUpper(q.Get("iss"))) },
			} {
				b, cb := opCallback(t, fa, "/private/"+name)
				q := cb.Query()
				if q.Get("iss") != fa.srv.OP.Issuer() {
					t.Fatalf("the OP sent iss %q, want %q", q.Get("iss"), fa.srv.OP.Issuer())
				}
				mutate(q)
				cb.RawQuery = q.Encode()
				tokenCalls := fa.srv.OP.Calls(oxdtest.EndpointToken)
				r := fa.do(b, "GET", cb.String(), nil)
				if r.status != http.StatusBadRequest || !strings.Contains(r.body, "expected identity provider") {
					t.Fatalf("%s: %d %q", name, r.status, r.body)
				}
				if fa.srv.OP.Calls(oxdtest.EndpointToken) != tokenCalls {
					t.Fatalf("%s: the code was exchanged", name)
				}
				if r := fa.do(b, "GET", "/private/"+name, nil); r.status != http.StatusSeeOther {
					t.Fatalf("%s: signed in after a refused callback: %d", name, r.status)
				}
			}
			if !lastLogged(fa, ErrIssuerMismatch) {
				t.Fatal("ErrIssuerMismatch not reported")
			}
			b, cb := opCallback(t, fa, "/private/ok")
			if r := fa.do(b, "GET", cb.String(), nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/ok" {
				t.Fatalf("matching iss: %d %q", r.status, r.body)
			}
		})
	}
}

// TestAuthorizationResponseIssuerNotAnnounced: an OP that neither sends
// iss nor announces it is accepted without one (RFC 9207 §2.4), and an
// iss that is present must still match.
func TestAuthorizationResponseIssuerNotAnnounced(t *testing.T) {
	fa := newFlowApp(t, "inprocess", memStore, oxdtest.WithOPConfig(oxdtest.OPConfig{
		AccessTokenTTL: 2 * time.Minute, DisableAuthorizationResponseIss: true}))
	b, cb := opCallback(t, fa, "/private/a")
	if cb.Query().Has("iss") {
		t.Fatal("the OP sent iss")
	}
	if r := fa.do(b, "GET", cb.String(), nil); r.status != http.StatusSeeOther {
		t.Fatalf("without iss: %d %q", r.status, r.body)
	}
	b, cb = opCallback(t, fa, "/private/b")
	q := cb.Query()
	q.Set("iss", "https://evil.example")
	cb.RawQuery = q.Encode()
	if r := fa.do(b, "GET", cb.String(), nil); r.status != http.StatusBadRequest || !strings.Contains(r.body, "expected identity provider") {
		t.Fatalf("foreign iss: %d %q", r.status, r.body)
	}
}
