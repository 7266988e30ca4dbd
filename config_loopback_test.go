package oxd

import (
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestRedirectURLPlainHTTPLoopback: a plain-http RedirectURL is accepted
// with Secure cookies only on a host the browser treats as a secure
// context (internal/hostutil.BrowserSecureContext), so that the cookie
// comes back to the callback; InsecureCookies lifts the check.
func TestRedirectURLPlainHTTPLoopback(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	newWith := func(redirect string, insecure bool) error {
		_, err := New(client, scs.New(), Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye",
			RedirectURL: redirect, InsecureCookies: insecure})
		return err
	}
	for _, u := range []string{
		"http://localhost:8080/callback",
		"http://LOCALHOST/callback",
		"http://app.localhost:8080/callback",
		"http://127.0.0.1:8080/callback",
		"http://127.0.0.2/callback",
		"http://[::1]:8080/callback",
		"https://app.example/callback",
	} {
		if err := newWith(u, false); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{
		"http://app.example/callback",
		"http://localhost.evil.example/callback",
		"http://localhost./callback",
		"http://127.1:8080/callback",
		"http://0.0.0.0:8080/callback",
		"http://[::ffff:127.0.0.1]:8080/callback",
		"http://[::1%25lo]:8080/callback",
		"http://10.0.0.1/callback",
	} {
		if err := newWith(u, false); err == nil {
			t.Errorf("%s accepted with Secure cookies", u)
		}
		if err := newWith(u, true); err != nil {
			t.Errorf("%s refused with InsecureCookies: %v", u, err)
		}
	}
}
