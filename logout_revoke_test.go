package oxd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/sessionindex"
)

// loginTokens signs alice in at the development OP and returns the
// session's access and refresh tokens.
func loginTokens(t *testing.T, fa *flowApp) (b *http.Client, at, rt string) {
	t.Helper()
	b = fa.browser()
	if r := fa.login(b, "/private/x", "alice", "alice-password"); r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d", r.status)
	}
	r := fa.do(b, "GET", "/tokens", nil)
	at, rt, _ = strings.Cut(r.body, "|")
	if r.status != http.StatusOK || at == "" || rt == "" {
		t.Fatalf("GET /tokens: %d; want an access and a refresh token", r.status)
	}
	return b, at, rt
}

// tokenStates asks the OP (through the engine) whether the access token is
// active and whether the refresh token still works.
func tokenStates(t *testing.T, fa *flowApp, at, rt string) (atActive, rtWorks bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := fa.srv.Client.IntrospectAccessToken(ctx, oxdclient.IntrospectAccessTokenParams{OxdID: fa.srv.OxdID, AccessToken: oxdclient.Secret(at)})
	if err != nil {
		t.Fatalf("introspect_access_token: %v", err)
	}
	_, err = fa.srv.Client.GetAccessTokenByRefreshToken(ctx, oxdclient.GetAccessTokenByRefreshTokenParams{OxdID: fa.srv.OxdID, RefreshToken: oxdclient.Secret(rt)})
	var oe *oxdclient.Error
	if err != nil && !errors.As(err, &oe) {
		t.Fatalf("get_access_token_by_refresh_token: %v (want an OP answer)", err)
	}
	return in.Active, err == nil
}

func logoutOK(t *testing.T, fa *flowApp, b *http.Client) {
	t.Helper()
	r := fa.do(b, "POST", "/logout", map[string]string{"Origin": fa.app.URL})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), fa.srv.OP.Issuer()) {
		t.Fatalf("logout: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestLogoutRevokesTokensAtDevOP: after logout the refresh token and the
// access token are revoked at the OP (RFC 7009): introspection says
// inactive and the refresh token is refused; no token reaches the log.
func TestLogoutRevokesTokensAtDevOP(t *testing.T) {
	for _, transport := range []string{"inprocess", "socket"} {
		t.Run(transport, func(t *testing.T) {
			fa := newFlowAppCfg(t, transport, memStore, oxdtest.OPConfig{}, nil)
			b, at, rt := loginTokens(t, fa)
			revocations := fa.srv.OP.Calls(oxdtest.EndpointRevocation)
			logoutOK(t, fa, b)
			fa.auth.revoker.wg.Wait()
			if n := fa.srv.OP.Calls(oxdtest.EndpointRevocation) - revocations; n != 2 {
				t.Fatalf("%d calls at the OP's revocation endpoint, want 2 (refresh, then access token)", n)
			}
			if atActive, rtWorks := tokenStates(t, fa, at, rt); atActive || rtWorks {
				t.Fatalf("after logout: access token active=%v, refresh works=%v; want both revoked", atActive, rtWorks)
			}
			logs := fa.logs.String()
			if strings.Contains(logs, at) || strings.Contains(logs, rt) {
				t.Fatal("a token reached the log")
			}
			if !strings.Contains(logs, "token revoked at the OP") || strings.Contains(logs, "level=WARN") {
				t.Fatalf("logs: want the revocations at DEBUG and no WARN:\n%s", logs)
			}
		})
	}
}

// TestLogoutSkipTokenRevocation: with Config.SkipTokenRevocation the
// tokens stay valid at the OP after logout.
func TestLogoutSkipTokenRevocation(t *testing.T) {
	fa := newFlowAppCfg(t, "inprocess", memStore, oxdtest.OPConfig{}, func(c *Config) { c.SkipTokenRevocation = true })
	b, at, rt := loginTokens(t, fa)
	revocations := fa.srv.OP.Calls(oxdtest.EndpointRevocation)
	logoutOK(t, fa, b)
	fa.auth.revoker.wg.Wait()
	if n := fa.srv.OP.Calls(oxdtest.EndpointRevocation) - revocations; n != 0 {
		t.Fatalf("%d revocations with SkipTokenRevocation", n)
	}
	if atActive, rtWorks := tokenStates(t, fa, at, rt); !atActive || !rtWorks {
		t.Fatalf("after logout: access token active=%v, refresh works=%v; want both still valid", atActive, rtWorks)
	}
}

// rigLogout logs a browser in at the fake oxd and out again; it returns the
// logout's answer.
func rigLogout(t *testing.T, rg *rig) resp {
	t.Helper()
	b := rg.browser()
	if r := rg.login(b, "/private/x", "alice"); r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d", r.status)
	}
	return rg.do(b, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
}

func noSecretsInLogs(t *testing.T, rg *rig) {
	t.Helper()
	logs := rg.logs.String()
	for _, s := range rg.fake.allSecrets() {
		if strings.Contains(logs, s) {
			t.Fatal("a token or code reached the log")
		}
	}
}

// TestLogoutRevocationUnsupported: an oxd server without revoke_token
// (unsupported_operation, as oxd 3.1.4 answers an unknown command) does
// not disturb the logout; it is logged at DEBUG only, once, and the access
// token is not tried after the refresh token was refused that way.
func TestLogoutRevocationUnsupported(t *testing.T) {
	rg := newRig(t, rigOpts{})
	r := rigLogout(t, rg)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "https://op.example/end_session") {
		t.Fatalf("logout: %d %q", r.status, r.header.Get("Location"))
	}
	rg.auth.revoker.wg.Wait()
	if n := rg.fake.count(oxdclient.CmdRevokeToken); n != 1 {
		t.Fatalf("revoke_token called %d times, want 1", n)
	}
	if rg.fake.param(oxdclient.CmdRevokeToken, "token_type_hint") != "refresh_token" {
		t.Fatal("the refresh token is not revoked first")
	}
	logs := rg.logs.String()
	if strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "token revocation not available") {
		t.Fatalf("logs:\n%s", logs)
	}
	noSecretsInLogs(t, rg)
}

// TestLogoutDoesNotWaitForRevocation: a revocation that hangs does not
// delay the logout answer; it ends at Config.CallTimeout, is logged at
// WARN once per interval (DEBUG after), and never logs the tokens.
func TestLogoutDoesNotWaitForRevocation(t *testing.T) {
	release := make(chan struct{})
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.CallTimeout = 2 * time.Second }})
	rg.fake.setHook(oxdclient.CmdRevokeToken, func(ctx context.Context) error {
		select {
		case <-release:
			return errors.New("released")
		case <-ctx.Done():
			return &oxdclient.TransportError{Command: oxdclient.CmdRevokeToken, Kind: oxdclient.ErrTimeout, Err: ctx.Err()}
		}
	})
	// The answer arrives while the revocation is still blocked.
	r := rigLogout(t, rg)
	if r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if n := rg.auth.revoker.inFlight.Load(); n != 1 {
		t.Fatalf("%d revocations in flight after the logout answer, want 1 (still blocked)", n)
	}
	start := time.Now()
	rg.auth.revoker.wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("revocation ran %v, want it bounded by CallTimeout", d)
	}
	if n := rg.fake.count(oxdclient.CmdRevokeToken); n != 1 {
		t.Fatalf("revoke_token called %d times after the deadline, want 1", n)
	}
	// A second failing logout within the interval logs at DEBUG.
	close(release)
	if r := rigLogout(t, rg); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	rg.auth.revoker.wg.Wait()
	logs := rg.logs.String()
	if c := strings.Count(logs, "token revocation failed"); c != 3 || strings.Count(logs, "level=WARN") != 1 {
		t.Fatalf("want 3 failures logged (refresh timeout; refresh, access of the 2nd logout), one at WARN:\n%s", logs)
	}
	noSecretsInLogs(t, rg)
}

// TestLogoutRevocationWithoutEndpointAtDevOP: an OP without
// revocation_endpoint is not an error worth a warning: the logout
// completes, the revocation is logged at DEBUG once (the access token is
// not tried), and the tokens stay as the OP issued them.
func TestLogoutRevocationWithoutEndpointAtDevOP(t *testing.T) {
	fa := newFlowAppCfg(t, "inprocess", memStore, oxdtest.OPConfig{DisableRevocation: true}, nil)
	b, at, rt := loginTokens(t, fa)
	logoutOK(t, fa, b)
	fa.auth.revoker.wg.Wait()
	logs := fa.logs.String()
	if strings.Count(logs, "token revocation not available") != 1 || strings.Contains(logs, "level=WARN") {
		t.Fatalf("logs:\n%s", logs)
	}
	if strings.Contains(logs, at) || strings.Contains(logs, rt) {
		t.Fatal("a token reached the log")
	}
}

// TestLogoutAllSessionsRevokesEveryTokenAtDevOP: with LogoutAllSessions
// the user asked to end every session, so the tokens every one of them
// holds in the session store are revoked at the OP too (two logins, two
// grants: four revocations); with SkipTokenRevocation none is. No token
// reaches the log.
func TestLogoutAllSessionsRevokesEveryTokenAtDevOP(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("skip=%v", skip), func(t *testing.T) {
			fa := newFlowAppCfg(t, "inprocess", memStore, oxdtest.OPConfig{}, func(c *Config) {
				c.SessionIndex = sessionindex.NewMemory(sessionindex.MemoryOptions{})
				c.LogoutAllSessions = true
				c.SkipTokenRevocation = skip
			})
			b1, at1, rt1 := loginTokens(t, fa)
			b2, at2, rt2 := loginTokens(t, fa)
			if rt1 == rt2 {
				t.Fatal("two logins share a refresh token")
			}
			revocations := fa.srv.OP.Calls(oxdtest.EndpointRevocation)
			logoutOK(t, fa, b1)
			fa.auth.revoker.wg.Wait()
			if r := fa.do(b2, "GET", "/private/x", nil); r.status != http.StatusSeeOther {
				t.Fatalf("the other session survived LogoutAllSessions: %d", r.status)
			}
			n := fa.srv.OP.Calls(oxdtest.EndpointRevocation) - revocations
			if want := map[bool]int{false: 4, true: 0}[skip]; n != want {
				t.Fatalf("%d calls at the OP's revocation endpoint, want %d", n, want)
			}
			for i, p := range [][2]string{{at1, rt1}, {at2, rt2}} {
				atActive, rtWorks := tokenStates(t, fa, p[0], p[1])
				if !skip && (atActive || rtWorks) {
					t.Fatalf("session %d: access token active=%v, refresh works=%v; want both revoked", i+1, atActive, rtWorks)
				}
				if skip && !atActive {
					t.Fatalf("session %d: revoked although SkipTokenRevocation", i+1)
				}
			}
			logs := fa.logs.String()
			for _, tok := range []string{at1, rt1, at2, rt2} {
				if strings.Contains(logs, tok) {
					t.Fatal("a token reached the log")
				}
			}
		})
	}
}

// TestBackChannelLogoutDoesNotRevoke: a session ended by the OP's
// back-channel logout is not revoked by the application (the OP ended its
// session and decides about its tokens, Back-Channel Logout §2.7): no call
// reaches the OP's revocation endpoint.
func TestBackChannelLogoutDoesNotRevoke(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, true, false, nil)
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	before := rs.srv.OP.Calls(oxdtest.EndpointRevocation)
	rs.opLogout(alice)
	for i := range 2 {
		rs.expect(alice, i, "")
		rs.auths[i].revoker.wg.Wait()
	}
	if n := rs.srv.OP.Calls(oxdtest.EndpointRevocation) - before; n != 0 {
		t.Fatalf("%d revocations after a back-channel logout, want 0", n)
	}
}
