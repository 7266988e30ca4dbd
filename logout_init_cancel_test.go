package oxd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/oxdgo/oxd/oxdtest"
)

// TestLogoutChannelsInitSurvivesCanceledRequest: the logout channels are
// built on the first logout request (get_rp, the OP's discovery). A
// caller who sends that request and goes away at once (its context
// canceled) must not leave a failure cached for the OP's real logout
// requests that follow (an unauthenticated caller could otherwise keep
// both channels failing by repeating it). Both channels, a canceled first
// request each, then the OP's request is served.
func TestLogoutChannelsInitSurvivesCanceledRequest(t *testing.T) {
	for _, front := range []bool{true, false} {
		rs := newReplicaSet(t, oxdtest.OPConfig{}, !front, front, nil)
		a := rs.auths[0]
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var h http.Handler
		var req *http.Request
		if front {
			h = a.FrontChannelLogoutHandler()
			req = httptest.NewRequest(http.MethodGet, "/logout/frontchannel?iss=x&sid=y", nil)
		} else {
			h = a.BackChannelLogoutHandler()
			req = httptest.NewRequest(http.MethodPost, "/logout/backchannel", nil)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		h.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))

		alice := rs.browser()
		rs.login(alice, 0, "alice", "alice-password")
		if front {
			q := url.Values{"iss": {rs.srv.OP.Issuer()}, "sid": {"no-such-sid"}}
			if st, _, body := rs.do(rs.browser(), "GET", rs.apps[0].URL+"/logout/frontchannel?"+q.Encode(), nil); st != http.StatusOK {
				t.Fatalf("front channel after a canceled first request: %d %s", st, body)
			}
			continue
		}
		rs.opLogout(alice)
		rs.waitAnonymous(alice, 2e9, "the OP's back-channel logout failed after a canceled first request")
	}
}
