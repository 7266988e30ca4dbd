package oxd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	h := rg.auth.UMAProtectWith(UMARule{Template: "/docs/{id}", Conditions: []UMACondition{
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
	rg.mux.Handle("POST /reports", rg.auth.UMAProtectWith(UMARule{Template: "/reports", Conditions: []UMACondition{{
		Methods:         []string{"POST"},
		ScopeExpression: &UMAScopeExpression{Rule: `{"and":[{"var":0},{"var":1}]}`, Data: []string{"reports:write", "reports:publish"}},
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

// The cache TTL is bounded by MaxGrantTTL when the RPT lives longer.
func TestUMAGrantCacheMaxTTL(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{uma: &UMAConfig{MaxGrantTTL: 30 * time.Second}})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	rg.waitSettled()
	n := rg.tr.count(oxdclient.CmdUMARSCheckAccess)

	rg.clock.Advance(29 * time.Second)
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	assert.Equal(t, n, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	rg.clock.Advance(2 * time.Second)
	res := rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Contains(t, res.header.Get("X-UMA-Decision"), "cached=false")
	assert.Equal(t, n+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	// The RPT's expiry is remembered: no second introspection.
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT))

	// Disabled cache: every request asks oxd.
	require.NoError(t, rg.auth.ConfigureUMA(UMAConfig{MaxGrantTTL: -1}))
	n = rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	rg.do("GET", "/photos/1", bearer(rpt))
	rg.do("GET", "/photos/1", bearer(rpt))
	assert.Equal(t, n+2, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
}

// Denials are never cached: each gets its own fresh ticket, also when
// requests with one RPT run in parallel.
func TestUMADenialsNotCached(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")

	const n = 8
	tickets := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res := rg.do("GET", "/albums/1", bearer(rpt))
			if res.status == http.StatusUnauthorized {
				if f, err := parseChallengeErr(res.header.Get("WWW-Authenticate")); err == nil {
					tickets <- f["ticket"]
				}
			}
		})
	}
	wg.Wait()
	close(tickets)
	seen := map[string]bool{}
	for tk := range tickets {
		assert.False(t, seen[tk], "a ticket was handed out twice")
		seen[tk] = true
	}
	assert.Len(t, seen, n)
	assert.Zero(t, rg.auth.uma().cache.len())
}

// Grant cache under -race: parallel requests with one RPT make one
// check-access call (and one introspection); an expired RPT is checked
// again.
func TestUMAGrantCacheParallelOneCheck(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{op: oxdtest.OPConfig{AccessTokenTTL: 3 * time.Minute}, uma: &UMAConfig{MaxGrantTTL: time.Hour}})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	before := rg.tr.count(oxdclient.CmdUMARSCheckAccess)

	// Hold the first check so that the others pile up behind it.
	release := rg.tr.hold(oxdclient.CmdUMARSCheckAccess)
	const n = 24
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			path := "/photos/" + string(rune('a'+i%3)) // concrete paths of one template
			statuses <- rg.do("GET", path, bearer(rpt)).status
		})
	}
	time.Sleep(100 * time.Millisecond)
	release()
	wg.Wait()
	close(statuses)
	for s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	assert.Equal(t, before+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess), "one check-access for all")
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT), "one introspection")
	assert.Equal(t, n, rg.pageCalls("GET /photos/{id}"))

	// After the RPT's expiry: checked again (and refused by the AS).
	rg.clock.Advance(3 * time.Minute)
	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Go(func() { assert.Equal(t, http.StatusUnauthorized, rg.do("GET", "/photos/a", bearer(rpt)).status) })
	}
	wg2.Wait()
	assert.Greater(t, rg.tr.count(oxdclient.CmdUMARSCheckAccess), before+1)
}

// P4: an uncached request makes exactly one oxd round trip. The RPT's
// expiry is read in the background (the request does not wait for it);
// for an RPT whose expiry is known, the check is the only oxd call at all.
func TestUMAUncachedRequestOneRoundTrip(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.register()
	// One RPT with permissions on both resources (the second upgrades it).
	rpt := rg.rpt("GET", "/photos/1")
	res := rg.do("GET", "/albums/1", bearer(rpt))
	require.Equal(t, http.StatusUnauthorized, res.status)
	up, err := rg.srv.Client.UMARPGetRPT(context.Background(), oxdclient.UMARPGetRPTParams{
		OxdID: rg.srv.OxdID, Ticket: parseChallenge(t, res.header.Get("WWW-Authenticate"))["ticket"], RPT: oxdclient.Secret(rpt)})
	require.NoError(t, err)
	require.Equal(t, rpt, up.AccessToken.Reveal(), "upgraded in place")

	// First use of the RPT: the introspection is held back, and the
	// answer still arrives, after a single check-access call.
	release := rg.tr.hold(oxdclient.CmdIntrospectRPT)
	defer release()
	checks := rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	others := rg.tr.total() - checks - rg.tr.count(oxdclient.CmdIntrospectRPT)
	res = rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, checks+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	assert.Equal(t, others, rg.tr.total()-rg.tr.count(oxdclient.CmdUMARSCheckAccess)-rg.tr.count(oxdclient.CmdIntrospectRPT),
		"no other oxd call on the request's path")
	release()
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT), "the expiry was read in the background")

	// Expiry known: the first request to another resource is exactly one
	// oxd call.
	before := rg.tr.total()
	checks = rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	require.Equal(t, http.StatusOK, rg.do("GET", "/albums/2", bearer(rpt)).status)
	assert.Equal(t, before+1, rg.tr.total())
	assert.Equal(t, checks+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
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

// The route template can come from a router adapter through
// WithRouteTemplate (gin FullPath style); it wins over Request.Pattern.
func TestUMAWithRouteTemplate(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	guard := rg.auth.UMAProtect("GET /items/:id", "view")(rg.page("items"))
	// A tiny "router": strips a prefix and sets the template, as an adapter would.
	rg.mux.Handle("GET /items/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guard.ServeHTTP(w, r.WithContext(WithRouteTemplate(r.Context(), "/items/:id")))
	}))
	rg.register()
	rpt := rg.rpt("GET", "/items/1")
	assert.Equal(t, http.StatusOK, rg.do("GET", "/items/2", bearer(rpt)).status)
	assert.Equal(t, "/items/:id", rg.tr.lastCheck().Path)
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

// Over the oxd-https-extension transport (protection tokens on, no
// get_rp): the issuer comes from the configuration and restarts keep the
// registration through the fingerprint file.
func TestUMAOverHTTPSExtension(t *testing.T) {
	var opIssuer string
	fpFile := t.TempDir() + "/uma.json"
	var srvRef *oxdtest.Server
	mk := func(t *testing.T, srv *oxdtest.Server) oxdclient.Transport {
		srvRef = srv
		opIssuer = srv.OP.Issuer()
		ts := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(srv.Engine, oxdserver.HTTPSConfig{}))
		t.Cleanup(ts.Close)
		h, err := oxdclient.NewHTTPS(ts.URL, oxdclient.HTTPSConfig{HTTPClient: ts.Client()})
		require.NoError(t, err)
		return h
	}
	rg := newUMARig(t, umaRigOpts{transport: mk, noConfig: true})
	creds := srvRef.Protection
	rg.auth.client.SetProtection(&creds)
	require.NoError(t, rg.auth.ConfigureUMA(UMAConfig{Issuer: opIssuer, FingerprintFile: fpFile}))
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	res := rg.do("GET", "/photos/1", nil)
	require.Equal(t, http.StatusUnauthorized, res.status)
	assert.Equal(t, opIssuer, parseChallenge(t, res.header.Get("WWW-Authenticate"))["as_uri"])
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	ids := resourceIDs(rg.storedResources())

	// Restart: same declarations, get_rp unavailable → the fingerprint
	// file avoids an overwrite; the RPT keeps working.
	a2, err := New(rg.auth.client, rg.sm, rg.auth.cfg)
	require.NoError(t, err)
	require.NoError(t, a2.ConfigureUMA(UMAConfig{Issuer: opIssuer, FingerprintFile: fpFile}))
	a2.UMAProtect("GET /photos/{id}", "view")
	require.NoError(t, a2.RegisterUMA(context.Background()))
	assert.Equal(t, ids, resourceIDs(rg.storedResources()))
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdGetRP), "get_rp tried once and refused by the extension")
}

func resourceIDs(rs []map[string]any) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r["id"].(string))
	}
	return ids
}

// Registration is idempotent across restarts (no overwrite, resource ids
// and RPTs survive) and overwrites only when the declared set changed.
func TestUMARegisterIdempotentAcrossRestarts(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("DELETE /photos/{id}", "delete")
	rg.register()
	ids := resourceIDs(rg.storedResources())
	require.Len(t, ids, 2)
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)

	restart := func(declare func(a *Auth)) *Auth {
		a, err := New(rg.auth.client, rg.sm, rg.auth.cfg)
		require.NoError(t, err)
		a.now = rg.clock.Now
		declare(a)
		require.NoError(t, a.RegisterUMA(context.Background()))
		return a
	}
	protects := rg.tr.count(oxdclient.CmdUMARSProtect)
	// Same set, declared in another order.
	a2 := restart(func(a *Auth) {
		a.UMAProtect("DELETE /photos/{id}", "delete")
		a.UMAProtect("GET /photos/{id}", "view")
	})
	assert.Equal(t, protects+1, rg.tr.count(oxdclient.CmdUMARSProtect), "one attempt without overwrite, no overwrite")
	assert.Equal(t, ids, resourceIDs(rg.storedResources()), "resources kept")
	d := a2.CheckUMA(context.Background(), "GET", "/photos/{id}", oxdclient.Secret(rpt))
	assert.True(t, d.Granted, "the RPT issued before the restart still works: %v", d.Err)

	// Changed set: overwritten.
	a3 := restart(func(a *Auth) {
		a.UMAProtect("GET /photos/{id}", "view", "photos:read")
	})
	assert.Equal(t, protects+3, rg.tr.count(oxdclient.CmdUMARSProtect))
	stored := rg.storedResources()
	require.Len(t, stored, 1)
	assert.NotContains(t, ids, stored[0]["id"])
	d = a3.CheckUMA(context.Background(), "GET", "/photos/{id}", "")
	assert.Equal(t, http.StatusUnauthorized, d.Status)
	assert.True(t, errors.Is(d.Err, ErrUMAChallenge))
}

// Invalid declarations: RegisterUMA fails with every problem listed and
// registers nothing; the routes answer 500.
func TestUMARegisterInvalidDeclarations(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	a := rg.auth
	bad := []struct {
		name string
		h    func(http.Handler) http.Handler
		want string
	}{
		{"empty scopes", a.UMAProtect("GET /a"), "no scopes"},
		{"duplicate method in one rule", a.UMAProtectWith(UMARule{Template: "/b", Conditions: []UMACondition{
			{Methods: []string{"GET"}, Scopes: []string{"x"}}, {Methods: []string{"get"}, Scopes: []string{"y"}}}}), "method GET is declared twice"},
		{"bad scope expression operator", a.UMAProtectWith(UMARule{Template: "/c", Conditions: []UMACondition{
			{Methods: []string{"GET"}, ScopeExpression: &UMAScopeExpression{Rule: `{"xor":[{"var":0},{"var":1}]}`, Data: []string{"a", "b"}}}}}), "unknown operator"},
		{"scope expression var out of range", a.UMAProtectWith(UMARule{Template: "/d", Conditions: []UMACondition{
			{Methods: []string{"GET"}, ScopeExpression: &UMAScopeExpression{Rule: `{"and":[{"var":0},{"var":2}]}`, Data: []string{"a", "b"}}}}}), "does not index"},
		{"scope expression not JSON", a.UMAProtectWith(UMARule{Template: "/e", Conditions: []UMACondition{
			{Methods: []string{"GET"}, ScopeExpression: &UMAScopeExpression{Rule: `{"and":`, Data: []string{"a"}}}}}), "not JSON"},
		{"invalid scope", a.UMAProtect("GET /f", "two words"), "invalid scope"},
		{"ticket scope not a scope", a.UMAProtectWith(UMARule{Template: "/g", Conditions: []UMACondition{
			{Methods: []string{"GET"}, Scopes: []string{"a"}, TicketScopes: []string{"b"}}}}), "ticket scope"},
		{"empty template", a.UMAProtect("GET ", "a"), "empty route template"},
	}
	// A method declared twice across declarations of one template.
	ok1 := a.UMAProtect("GET /h", "a")
	dup := a.UMAProtect("GET /h", "b")
	// Identical declarations are fine (one handler per ServeMux pattern).
	same := a.UMAProtect("GET /h", "a")
	caseDup := a.UMAProtect("GET /H", "a")

	err := a.RegisterUMA(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUMADeclaration))
	assert.True(t, errors.Is(err, ErrUMAConfig))
	for _, b := range bad {
		assert.Contains(t, err.Error(), b.want, b.name)
	}
	assert.Contains(t, err.Error(), `route "/h": method GET is declared twice`)
	assert.Contains(t, err.Error(), "only in case")
	assert.Zero(t, rg.tr.count(oxdclient.CmdUMARSProtect), "nothing registered")

	for _, b := range append(bad, struct {
		name string
		h    func(http.Handler) http.Handler
		want string
	}{"dup", dup, ""}, struct {
		name string
		h    func(http.Handler) http.Handler
		want string
	}{"case", caseDup, ""}) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/x", nil)
		b.h(rg.page("bad")).ServeHTTP(rec, req)
		assert.Equal(t, http.StatusInternalServerError, rec.Code, b.name)
	}
	assert.Zero(t, rg.pageCalls("bad"))
	_, _ = ok1, same

	// Browser mode without a claims redirect URL.
	rg2 := newUMARig(t, umaRigOpts{uma: &UMAConfig{Browser: true}})
	rg2.protect("GET /x", "s")
	err = rg2.auth.RegisterUMA(context.Background())
	assert.True(t, errors.Is(err, ErrUMAConfig))
	assert.Contains(t, err.Error(), "ClaimsRedirectURL")
}

// The issuer: configured, else the site's op_host from get_rp; a bad
// value is refused.
func TestUMAConfigureValidation(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{noConfig: true})
	for _, c := range []UMAConfig{
		{Issuer: "as.example.com"},
		{Issuer: "https://as.example.com/?x=1"},
		{Issuer: "https://as.example.com/#f"},
		{Issuer: `https://as.example.com/"`},
		{Realm: `a"b`},
		{Realm: "a\r\nWarning: 1"},
		{Realm: "é"},
		{MaxGrants: -1},
		{ClaimsRedirectURL: "/claims"},
	} {
		assert.Error(t, rg.auth.ConfigureUMA(c), "%+v", c)
	}
	rg.protect("GET /x", "s")
	rg.register()
	f := parseChallenge(t, rg.do("GET", "/x", nil).header.Get("WWW-Authenticate"))
	assert.Equal(t, rg.srv.OP.Issuer(), f["as_uri"], "from get_rp op_host")
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
