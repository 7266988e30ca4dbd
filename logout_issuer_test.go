package oxd

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdtest"
)

// opHostWithSlash registers the site with op_host = the issuer plus a
// trailing slash: oxd accepts it (it compares issuers up to trailing
// slashes), the OP's issuer and its tokens' iss have none.
func opHostWithSlash(issuer string) string { return issuer + "/" }

// TestBackChannelLogoutOPHostTrailingSlash: the site's op_host differs from
// the OP's issuer by a trailing slash. The logout token's iss is the OP's
// discovered issuer, which the handler compares against (not op_host):
// the OP's logout ends alice's sessions on both replicas.
func TestBackChannelLogoutOPHostTrailingSlash(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, true, false, nil, oxdtest.WithOPHost(opHostWithSlash))
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	bob := rs.browser()
	rs.login(bob, 1, "bob", "bob-password")
	rs.opLogout(alice)
	rs.waitAnonymous(alice, time.Second, "alice still signed in one second after the OP's logout (the token's iss was refused?)")
	rs.expect(bob, 0, "bob")
}

// TestFrontChannelLogoutOPHostTrailingSlash: as above for the front
// channel: iss must equal the discovered issuer exactly, so the OP's
// request (iss without the slash) ends the session, and the same request
// with op_host's spelling of the issuer (with the slash) or any other
// spelling (case of the host, scheme, another path) ends nothing.
func TestFrontChannelLogoutOPHostTrailingSlash(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, false, true, nil, oxdtest.WithOPHost(opHostWithSlash))
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	page := rs.opLogout(alice)
	m := regexp.MustCompile(`<iframe src="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("end_session page has no front-channel iframe: %s", page)
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	iss := rs.srv.OP.Issuer()
	enc := func(s string) string { return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s) }
	if !strings.Contains(src, "iss="+enc(iss)+"&") && !strings.HasSuffix(src, "iss="+enc(iss)) {
		t.Fatalf("front-channel URL %q does not carry iss=%s", src, iss)
	}
	for _, wrong := range []string{iss + "/", strings.Replace(iss, "127.0.0.1", "LOCALHOST", 1), strings.Replace(iss, "http://", "HTTP://", 1), iss + "/x", strings.Replace(iss, "http://", "https://", 1)} {
		bad := strings.Replace(src, "iss="+enc(iss), "iss="+enc(wrong), 1)
		if st, _, _ := rs.do(rs.browser(), "GET", bad, nil); st != http.StatusBadRequest {
			t.Fatalf("front-channel with iss=%q: %d, want 400", wrong, st)
		}
		rs.expect(alice, 0, "alice")
	}
	if st, _, body := rs.do(rs.browser(), "GET", src, nil); st != http.StatusOK {
		t.Fatalf("front-channel with the OP's iss: %d %s", st, body)
	}
	for i := range 2 {
		rs.expect(alice, i, "")
	}
}

// TestSessionStaysIndexedAfterRefresh: the access token is refreshed (the
// OP rotates the refresh token and issues an ID token with the login's
// sid); the session is still found by the OP's logout for that sid, on
// both replicas.
func TestSessionStaysIndexedAfterRefresh(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{AccessTokenTTL: 2 * time.Second}, true, false, nil)
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	tokens := rs.srv.OP.Calls(oxdtest.EndpointToken)
	time.Sleep(1100 * time.Millisecond) // past half the access token's life: refresh due
	rs.expect(alice, 1, "alice")
	if rs.srv.OP.Calls(oxdtest.EndpointToken) == tokens {
		t.Fatal("no refresh happened")
	}
	rs.expect(alice, 0, "alice")
	rs.opLogout(alice)
	rs.waitAnonymous(alice, time.Second, "the refreshed session was not ended by the OP's logout")
}
