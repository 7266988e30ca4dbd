package oxd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

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
	require.NoError(t, rg.auth.configureUMA(UMAConfig{Issuer: opIssuer, FingerprintFile: fpFile}))
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
	require.NoError(t, a2.configureUMA(UMAConfig{Issuer: opIssuer, FingerprintFile: fpFile}))
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
	d := a2.checkUMA(context.Background(), "GET", "/photos/{id}", oxdclient.Secret(rpt))
	assert.True(t, d.Granted, "the RPT issued before the restart still works: %v", d.Err)

	// Changed set: overwritten.
	a3 := restart(func(a *Auth) {
		a.UMAProtect("GET /photos/{id}", "view", "photos:read")
	})
	assert.Equal(t, protects+3, rg.tr.count(oxdclient.CmdUMARSProtect))
	stored := rg.storedResources()
	require.Len(t, stored, 1)
	assert.NotContains(t, ids, stored[0]["id"])
	d = a3.checkUMA(context.Background(), "GET", "/photos/{id}", "")
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
		{"duplicate method in one rule", a.UMAProtectWith(UMARule{Template: "/b", Conditions: []UMAMethodRule{
			{Methods: []string{"GET"}, Scopes: []string{"x"}}, {Methods: []string{"get"}, Scopes: []string{"y"}}}}), "method GET is declared twice"},
		{"bad scope expression operator", a.UMAProtectWith(UMARule{Template: "/c", Conditions: []UMAMethodRule{
			{Methods: []string{"GET"}, ScopeExpression: &UMAExpression{Rule: `{"xor":[{"var":0},{"var":1}]}`, Data: []string{"a", "b"}}}}}), "unknown operator"},
		{"scope expression var out of range", a.UMAProtectWith(UMARule{Template: "/d", Conditions: []UMAMethodRule{
			{Methods: []string{"GET"}, ScopeExpression: &UMAExpression{Rule: `{"and":[{"var":0},{"var":2}]}`, Data: []string{"a", "b"}}}}}), "does not index"},
		{"scope expression not JSON", a.UMAProtectWith(UMARule{Template: "/e", Conditions: []UMAMethodRule{
			{Methods: []string{"GET"}, ScopeExpression: &UMAExpression{Rule: `{"and":`, Data: []string{"a"}}}}}), "not JSON"},
		{"invalid scope", a.UMAProtect("GET /f", "two words"), "invalid scope"},
		{"ticket scope not a scope", a.UMAProtectWith(UMARule{Template: "/g", Conditions: []UMAMethodRule{
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

	// The identical declaration is valid and shares the first one's
	// condition: /h is registered with one GET condition, and only dup is
	// reported.
	for name, h := range map[string]func(http.Handler) http.Handler{"first": ok1, "identical": same} {
		uh, isGuard := h(rg.page("h")).(*umaHandler)
		require.True(t, isGuard, name)
		assert.NoError(t, uh.d.err, name)
		require.Len(t, uh.d.conds, 1, name)
		assert.Same(t, rg.auth.uma.paths["/h"].conds[0], uh.d.conds[0], name)
	}
	assert.Len(t, rg.auth.uma.paths["/h"].conds, 1)
	assert.Equal(t, 1, strings.Count(err.Error(), `route "/h":`), "only the conflicting declaration is reported")

	// Browser mode without a claims redirect URL.
	rg2 := newUMARig(t, umaRigOpts{uma: &UMAConfig{Browser: true}})
	rg2.protect("GET /x", "s")
	err = rg2.auth.RegisterUMA(context.Background())
	assert.True(t, errors.Is(err, ErrUMAConfig))
	assert.Contains(t, err.Error(), "ClaimsRedirectURL")
}
