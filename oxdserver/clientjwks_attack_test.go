package oxdserver_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestClientJWKSRouteAttacks drives the HTTPS extension's unauthenticated
// JWKS route over its TLS listener as an outside caller would: every
// method but GET and HEAD is 405 with Allow; HEAD has GET's headers and no
// body; a query string changes nothing; path variants (case, trailing
// slash, missing slash, doubled slashes, encoded separators, very long
// segments) are 404 with the unknown-site body; the document never holds
// a private key member; 404s are not marked cacheable; the route's log
// lines hold no key.
func TestClientJWKSRouteAttacks(t *testing.T) {
	o := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := matrixEngine(t)
	logs := &syncBuffer{}
	l := startListeners(t, eng, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := testCtx(t)
	setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: o.Issuer(), AuthorizationRedirectURI: matrixRedirect, Scope: []string{"openid"},
		ClientTokenEndpointAuthMethod: "private_key_jwt",
	}})
	require.NoError(t, err)
	hc := l.https.Client()
	do := func(method, path string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, l.https.URL+path, nil)
		require.NoError(t, err)
		res, err := hc.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, res.Header, b
	}
	route := oxdserver.ClientJWKSPathPrefix + setup.OxdID

	status, hdr, body := do(http.MethodGet, route)
	require.Equal(t, http.StatusOK, status, string(body))
	kidsOf(t, body) // fails on a private member
	for _, member := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`, `"k"`} {
		assert.NotContains(t, string(body), member+":", "a private key member")
	}
	status, hhdr, hbody := do(http.MethodHead, route)
	assert.Equal(t, http.StatusOK, status)
	assert.Empty(t, hbody, "HEAD has no body")
	assert.Equal(t, hdr.Get("Content-Length"), hhdr.Get("Content-Length"))
	assert.Equal(t, hdr.Get("Content-Type"), hhdr.Get("Content-Type"))
	status, _, qbody := do(http.MethodGet, route+"?oxd_id=other&x=%2F..%2F")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, string(body), string(qbody), "the query is ignored")

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND", "TRACE"} {
		status, h, _ := do(m, route)
		assert.Equal(t, http.StatusMethodNotAllowed, status, m)
		assert.Equal(t, "GET, HEAD", h.Get("Allow"), m)
	}

	_, _, unknown := do(http.MethodGet, oxdserver.ClientJWKSPathPrefix+"00000000-0000-4000-8000-000000000000")
	for _, p := range []string{
		strings.ToUpper(route), route + "/", "/client-jwks" + setup.OxdID, "/client-jwks//" + setup.OxdID,
		"/" + route, oxdserver.ClientJWKSPathPrefix + "." + setup.OxdID + "%2F..",
		oxdserver.ClientJWKSPathPrefix + "%2e%2e%2f" + setup.OxdID, oxdserver.ClientJWKSPathPrefix + setup.OxdID + "%00",
		oxdserver.ClientJWKSPathPrefix + setup.OxdID + "%20", oxdserver.ClientJWKSPathPrefix + strings.Repeat("a", 8000),
		oxdserver.ClientJWKSPathPrefix + setup.SetupClientOxdID,
	} {
		status, h, b := do(http.MethodGet, p)
		assert.Equal(t, http.StatusNotFound, status, "path %q", p)
		assert.NotContains(t, h.Get("Cache-Control"), "public", "path %q: a 404 is cacheable", p)
		if strings.HasPrefix(p, oxdserver.ClientJWKSPathPrefix) {
			assert.True(t, bytes.Equal(unknown, b), "path %q: another 404 body than an unknown site's", p)
		}
	}
	assert.NotContains(t, logs.String(), "kty", "the route logs key material")
}
