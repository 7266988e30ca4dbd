package oxd

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// UMA Grant §3.2.1 and §3.5: no RPT → challenge with a ticket; the ticket
// redeemed at the AS gives an RPT; the RPT grants access.
func TestUMAGrant(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "photos:view")
	rg.register()

	res := rg.do("GET", "/photos/1", nil)
	require.Equal(t, http.StatusUnauthorized, res.status)
	assert.Zero(t, rg.pageCalls("GET /photos/{id}"))

	rpt := rg.rpt("GET", "/photos/1")
	res = rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, "page GET /photos/{id}", res.body)
	assert.Equal(t, "ok=true granted=true cached=false session=false new=false", res.header.Get("X-UMA-Decision"))
	rg.waitSettled()

	n := rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	res = rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "ok=true granted=true cached=true session=false new=false", res.header.Get("X-UMA-Decision"))
	assert.Equal(t, n, rg.tr.count(oxdclient.CmdUMARSCheckAccess), "a cached grant asks oxd nothing")

	// HEAD is covered by the GET declaration (registered with it).
	res = rg.do("HEAD", "/photos/1", bearer(rpt))
	assert.Equal(t, http.StatusOK, res.status)
}

// UMA Grant §3.2.1: the challenge, parsed field by field and compared byte
// for byte; one header line; empty body.
func TestUMAChallengeGrant321(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{uma: &UMAConfig{Realm: "photos"}})
	rg.protect("GET /photos/{id}", "photos:view")
	rg.register()

	res := rg.do("GET", "/photos/7", nil)
	require.Equal(t, http.StatusUnauthorized, res.status)
	vals := res.header.Values("WWW-Authenticate")
	require.Len(t, vals, 1, "exactly one challenge header")
	h := vals[0]
	assert.NotContains(t, h, "\n")
	assert.NotContains(t, h, "\r")
	f := parseChallenge(t, h)
	assert.Len(t, f, 3, "realm, as_uri, ticket and nothing else (no error=insufficient_scope)")
	assert.Equal(t, "photos", f["realm"])
	assert.Equal(t, rg.srv.OP.Issuer(), f["as_uri"], "as_uri is the AS issuer")
	require.NotEmpty(t, f["ticket"])
	assert.Equal(t, `UMA realm="photos", as_uri="`+rg.srv.OP.Issuer()+`", ticket="`+f["ticket"]+`"`, h)
	assert.Empty(t, res.body)
	assert.Equal(t, "0", res.header.Get("Content-Length"))
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	assert.Empty(t, res.header.Get("Warning"))

	// The ticket is the AS's: it redeems for an RPT that grants access.
	r, err := rg.srv.Client.UMARPGetRPT(context.Background(), oxdclient.UMARPGetRPTParams{OxdID: rg.srv.OxdID, Ticket: f["ticket"]})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/7", bearer(r.AccessToken.Reveal())).status)

	// Each denial carries a fresh single-use ticket.
	f2 := parseChallenge(t, rg.do("GET", "/photos/7", nil).header.Get("WWW-Authenticate"))
	assert.NotEqual(t, f["ticket"], f2["ticket"])

	// Default realm: Config.Realm (the host of RedirectURL).
	rg2 := newUMARig(t, umaRigOpts{})
	rg2.protect("GET /x", "s")
	rg2.register()
	f3 := parseChallenge(t, rg2.do("GET", "/x", nil).header.Get("WWW-Authenticate"))
	assert.Equal(t, strings.TrimPrefix(rg2.app.URL, "http://"), f3["realm"])
}

// Per-method scopes: an RPT obtained for viewing does not allow deleting.
func TestUMAInsufficientScope(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	h := rg.auth.UMAProtectWith(UMARule{Template: "/docs/{id}", Conditions: []UMAMethodRule{
		{Methods: []string{"GET"}, Scopes: []string{"docs:read"}},
		{Methods: []string{"DELETE"}, Scopes: []string{"docs:delete"}},
	}})(rg.page("docs"))
	rg.mux.Handle("/docs/{id}", h)
	rg.register()

	rpt := rg.rpt("GET", "/docs/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/docs/1", bearer(rpt)).status)
	res := rg.do("DELETE", "/docs/1", bearer(rpt))
	require.Equal(t, http.StatusUnauthorized, res.status, "docs:read does not grant DELETE")
	parseChallenge(t, res.header.Get("WWW-Authenticate"))
	assert.Equal(t, 1, rg.pageCalls("docs"))
	assert.Equal(t, "DELETE", rg.tr.lastCheck().HTTPMethod)
	assert.Equal(t, "/docs/{id}", rg.tr.lastCheck().Path)

	// Undeclared methods never reach oxd or the handler.
	n := rg.tr.total()
	res = rg.do("PUT", "/docs/1", bearer(rpt))
	assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	assert.Equal(t, "GET, HEAD, DELETE", res.header.Get("Allow"))
	assert.Equal(t, n, rg.tr.total())
}

// An RPT for one resource does not open another (the permission's
// resource id must match; oxAuth#213).
func TestUMARPTForAnotherResource(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.register()

	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	res := rg.do("GET", "/albums/1", bearer(rpt))
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.Zero(t, rg.pageCalls("GET /albums/{id}"))
}

// A scope expression (AND) is registered and enforced.
func TestUMAScopeExpression(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.mux.Handle("POST /reports", rg.auth.UMAProtectWith(UMARule{Template: "/reports", Conditions: []UMAMethodRule{{
		Methods:         []string{"POST"},
		ScopeExpression: &UMAExpression{Rule: `{"and":[{"var":0},{"var":1}]}`, Data: []string{"reports:write", "reports:publish"}},
	}}})(rg.page("reports")))
	rg.register()
	stored := rg.storedResources()
	require.Len(t, stored, 1)
	assert.Equal(t, []any{"reports:write", "reports:publish"}, stored[0]["ticketScopes"])

	rpt := rg.rpt("POST", "/reports")
	assert.Equal(t, http.StatusOK, rg.do("POST", "/reports", bearer(rpt)).status)
}

// An RPT that expired at the AS is refused, even if its grant was cached:
// the cached grant does not outlive the RPT's exp.
func TestUMAExpiredRPT(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{op: oxdtest.OPConfig{AccessTokenTTL: 2 * time.Minute},
		uma: &UMAConfig{MaxGrantTTL: time.Hour}})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	rg.waitSettled()
	require.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT))

	n := rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	rg.clock.Advance(time.Minute)
	res := rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Contains(t, res.header.Get("X-UMA-Decision"), "cached=true")
	assert.Equal(t, n, rg.tr.count(oxdclient.CmdUMARSCheckAccess))

	rg.clock.Advance(time.Minute + time.Second)
	res = rg.do("GET", "/photos/1", bearer(rpt))
	assert.Equal(t, http.StatusUnauthorized, res.status, "expired RPT")
	assert.Equal(t, n+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess), "checked again")
	parseChallenge(t, res.header.Get("WWW-Authenticate"))
	assert.Equal(t, 2, rg.pageCalls("GET /photos/{id}"))
}

// AS down (UMA Grant §3.2.2): 403 with exactly the Warning header, no
// challenge, empty body; for a request without RPT and with one.
func TestUMAASUnreachable(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")

	check := func(t *testing.T, res umaResp) {
		t.Helper()
		assert.Equal(t, http.StatusForbidden, res.status)
		assert.Equal(t, []string{`199 - "UMA Authorization Server Unreachable"`}, res.header.Values("Warning"))
		assert.Empty(t, res.header.Values("WWW-Authenticate"))
		assert.Empty(t, res.body)
	}
	rg.srv.OP.SetFault(oxdtest.EndpointPermission, oxdtest.FaultHTTP500)
	check(t, rg.do("GET", "/photos/1", nil))
	rg.srv.OP.SetFault(oxdtest.EndpointPermission, oxdtest.FaultNone)

	rg.srv.OP.SetFault(oxdtest.EndpointIntrospection, oxdtest.FaultGarbage)
	check(t, rg.do("GET", "/photos/1", bearer(rpt)))
	rg.srv.OP.SetFault(oxdtest.EndpointIntrospection, oxdtest.FaultNone)
	assert.Zero(t, rg.pageCalls("GET /photos/{id}"))

	// Recovers by itself.
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	assert.Contains(t, rg.logs.String(), "UMA authorization server unreachable")
}

// oxd itself unreachable: 403 + Warning too, never a pass-through.
func TestUMAOxdUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	rg := newUMARig(t, umaRigOpts{
		uma: &UMAConfig{Issuer: "https://as.example.test"},
		transport: func(t *testing.T, _ *oxdtest.Server) oxdclient.Transport {
			s, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		}})
	rg.protect("GET /photos/{id}", "view")
	res := rg.do("GET", "/photos/1", bearer("some-rpt"))
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.Equal(t, UMAWarning, res.header.Get("Warning"))
	assert.Zero(t, rg.pageCalls("GET /photos/{id}"))
}

// Two concrete paths of one ServeMux template are one resource: one
// registration, check-access with the template, one RPT for both.
func TestUMATwoPathsOneTemplateServeMux(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	require.Len(t, rg.storedResources(), 1)

	rpt := rg.rpt("GET", "/photos/1")
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/2", bearer(rpt)).status)
	for _, c := range rg.tr.allChecks() {
		assert.Equal(t, "/photos/{id}", c.Path, "never the concrete path")
	}
	assert.Len(t, rg.storedResources(), 1)
}

// The same scenario over the socket transport (engine behind the 3.1.4
// socket listener).
func TestUMAOverSocketTransport(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{transport: func(t *testing.T, srv *oxdtest.Server) oxdclient.Transport {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ss := &oxdserver.SocketServer{Engine: srv.Engine}
		go func() { _ = ss.Serve(ln) }()
		t.Cleanup(func() { _ = ss.Close() })
		s, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}})
	creds := rg.srv.Protection
	rg.auth.client.SetProtection(&creds)
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	res := rg.do("GET", "/photos/1", nil)
	require.Equal(t, http.StatusUnauthorized, res.status)
	f := parseChallenge(t, res.header.Get("WWW-Authenticate"))
	assert.Equal(t, rg.srv.OP.Issuer(), f["as_uri"])
	rpt := rg.rpt("GET", "/photos/1")
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/2", bearer(rpt)).status)
	assert.Equal(t, http.StatusUnauthorized, rg.do("GET", "/photos/2", bearer(rpt+"x")).status)
}

// chi v5.1+ sets Request.Pattern to its RoutePattern before the route's
// handler runs: a guard attached to the route (With, or wrapping the
// handler) sees the template, two concrete paths hit one resource. A guard
// attached with a top-level Use runs before routing, sees no template and
// denies (the chi adapter's job is to make that case work).
func TestUMATwoPathsOneTemplateChi(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	r := chi.NewRouter()
	r.With(rg.auth.UMAProtect("GET /photos/{id}", "view")).Get("/photos/{id}", rg.page("chi photos").ServeHTTP)
	r.Route("/top", func(r chi.Router) {
		r.Use(rg.auth.UMAProtect("GET /top/{id}", "view"))
		r.Get("/{id}", rg.page("chi top").ServeHTTP)
	})
	rg.mux.Handle("/", r)
	rg.register()

	rpt := rg.rpt("GET", "/photos/1")
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	assert.Equal(t, http.StatusOK, rg.do("GET", "/photos/2", bearer(rpt)).status)
	assert.Equal(t, "/photos/{id}", rg.tr.lastCheck().Path)
	assert.Equal(t, 2, rg.pageCalls("chi photos"))

	res := rg.do("GET", "/top/1", bearer(rpt))
	assert.Equal(t, http.StatusInternalServerError, res.status, "no template before chi routed the request")
	assert.Zero(t, rg.pageCalls("chi top"))
}
