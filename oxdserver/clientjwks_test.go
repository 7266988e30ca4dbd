package oxdserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// clientOver returns an oxdclient over l's socket listener or HTTPS
// extension, with the given protection credentials.
func clientOver(t *testing.T, l *listeners, https bool, pc *oxdclient.ProtectionCredentials) *oxdclient.Client {
	t.Helper()
	if !https {
		tr, err := oxdclient.NewSocket(l.sockAddr, oxdclient.SocketConfig{Timeout: 10 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		return oxdclient.New(tr, oxdclient.Config{Protection: pc})
	}
	tr, err := oxdclient.NewHTTPS(l.https.URL, oxdclient.HTTPSConfig{HTTPClient: l.https.Client()})
	require.NoError(t, err)
	return oxdclient.New(tr, oxdclient.Config{Protection: pc})
}

func getJWKS(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, b
}

// kidsOf returns the kids of a public JWKS and fails if a key carries a
// private member.
func kidsOf(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(jwks, &set))
	var kids []string
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			require.NotContains(t, k, private, "a private key member is published")
		}
		kids = append(kids, k["kid"].(string))
	}
	slices.Sort(kids)
	return kids
}

// TestClientJWKSReachableWithoutCode: the public keys of a private_key_jwt
// site are reachable through the listeners, without Go code: the
// get_client_jwks command over the socket and the HTTPS extension
// (protected like the other site commands), and the HTTPS extension's
// unauthenticated GET /client-jwks/<oxd_id>, which the OP fetches as the
// client's jwks_uri. Key rotation keeps the OP verifying: the key that
// signs is always served, a rotated key is served before it signs, and
// the superseded one until it retires.
func TestClientJWKSReachableWithoutCode(t *testing.T) {
	o := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := matrixEngine(t)
	l := startListeners(t, eng, nil)
	// The route the OP fetches, the same handler served over plain HTTP on
	// loopback (behind a TLS-terminating proxy in production: the
	// development OP fetches with the default HTTP client).
	plain := httptest.NewServer(oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{}))
	t.Cleanup(plain.Close)
	ctx := testCtx(t)

	setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: o.Issuer(), AuthorizationRedirectURI: matrixRedirect, Scope: []string{"openid", "profile"},
		ClientTokenEndpointAuthMethod: "private_key_jwt",
	}})
	require.NoError(t, err)
	pc := &oxdclient.ProtectionCredentials{ClientID: setup.ClientID, ClientSecret: setup.ClientSecret, OPHost: o.Issuer()}
	sc := clientOver(t, l, false, pc)
	ec := clientOver(t, l, true, pc)

	// The command, over both listeners.
	viaSocket, err := sc.GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	assert.Equal(t, setup.OxdID, viaSocket.OxdID)
	first := kidsOf(t, viaSocket.JWKS)
	require.Len(t, first, 1)
	viaExt, err := ec.GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	assert.Equal(t, first, kidsOf(t, viaExt.JWKS))

	// Protected: no token, no keys (socket and HTTPS extension).
	_, err = clientOver(t, l, false, nil).GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.OxdID})
	var oe *oxdclient.Error
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeBlankProtectionAccessToken, oe.Code)
	res, err := l.https.Client().Post(l.https.URL+"/get-client-jwks", "application/json", strings.NewReader(`{"oxd_id":"`+setup.OxdID+`"}`))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// A site without private_key_jwt (the setup client's): a clear error.
	_, err = sc.GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.SetupClientOxdID})
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code)
	assert.Contains(t, oe.Description, "private_key_jwt")

	// The public route: the same keys, typed and cacheable for less than
	// the rotation lead.
	uri := plain.URL + oxdserver.ClientJWKSPathPrefix + setup.OxdID
	status, hdr, body := getJWKS(t, uri)
	require.Equal(t, http.StatusOK, status, string(body))
	assert.Equal(t, "application/jwk-set+json", hdr.Get("Content-Type"))
	assert.Equal(t, "public, max-age=300", hdr.Get("Cache-Control"))
	assert.Equal(t, first, kidsOf(t, body))

	// Unknown oxd_id, a site without keys, odd paths: one 404, no oracle.
	_, _, notFound := getJWKS(t, plain.URL+oxdserver.ClientJWKSPathPrefix+"00000000-0000-4000-8000-000000000000")
	for _, p := range []string{setup.SetupClientOxdID, "", "..", setup.OxdID + "/x", "%2e%2e", strings.Repeat("a", 129), "a%00b"} {
		status, _, b := getJWKS(t, plain.URL+oxdserver.ClientJWKSPathPrefix+p)
		assert.Equal(t, http.StatusNotFound, status, "path %q", p)
		if status == http.StatusNotFound && !strings.Contains(p, "/") && p != "" && p != ".." && p != "%2e%2e" {
			assert.Equal(t, string(notFound), string(b), "path %q", p)
		}
	}
	res, err = http.Post(uri, "application/json", bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)

	// The OP now fetches the keys from the route (RFC 7592 update with
	// jwks_uri); update_site rotates: the new key is published first, the
	// current one keeps signing, and logins keep working.
	_, err = sc.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: setup.OxdID, ClientJWKSURI: uri})
	require.NoError(t, err)
	_, _, body = getJWKS(t, uri)
	second := kidsOf(t, body)
	require.Len(t, second, 2, "the rotated key is published ahead of its use")
	assert.Subset(t, second, first, "the signing key stays published")
	tok, err := sc.GetTokensByCode(ctx, loginCode(t, ctx, sc, setup.OxdID))
	require.NoError(t, err, "the OP verifies the assertion with the keys at the route")
	assert.False(t, tok.AccessToken.IsZero())

	_, err = sc.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: setup.OxdID, Contacts: []string{"ops@example.test"}})
	require.NoError(t, err)
	_, _, body = getJWKS(t, uri)
	third := kidsOf(t, body)
	assert.Subset(t, third, second, "no key leaves before it retires")
	tok, err = ec.GetTokensByCode(ctx, loginCode(t, ctx, ec, setup.OxdID))
	require.NoError(t, err, "still verified after a second rotation (through the HTTPS extension)")
	assert.False(t, tok.AccessToken.IsZero())
}

// TestPreregisteredClientKeyRotation: update_site with only oxd_id rotates
// the keys of a pre-registered private_key_jwt site (nothing else of a
// pre-registered client changes through oxd): the new key is published at
// once and signs only after the lead, the current one keeps signing, and
// the OP, which fetches the keys from the HTTPS extension's route, keeps
// accepting the site's assertions. Any other update_site parameter is
// refused as before; one client playing both roles is refused with a
// clear error.
func TestPreregisteredClientKeyRotation(t *testing.T) {
	jwks := &jwksServer{}
	o := matrixOP(t, jwks)
	eng := matrixEngine(t)
	ctx := testCtx(t)
	setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
		SiteParams:    siteParams(o, clientauth.MethodPrivateKeyJWT),
		SetupClientID: setupClientID, SetupClientSecret: setupSecret,
	})
	require.NoError(t, err)
	jwks.set(eng, setup.OxdID)
	c := socketClient(t, eng, o)
	_, err = c.GetTokensByCode(ctx, loginCode(t, ctx, c, setup.OxdID))
	require.NoError(t, err)
	keys, err := c.GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	before := kidsOf(t, keys.JWKS)
	require.Len(t, before, 1)

	_, err = c.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	keys, err = c.GetClientJWKS(ctx, oxdclient.GetClientJWKSParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	after := kidsOf(t, keys.JWKS)
	require.Len(t, after, 2, "the new key is published ahead of its use")
	assert.Subset(t, after, before)
	s, err := eng.Store().GetSite(ctx, setup.OxdID)
	require.NoError(t, err)
	kid, _ := s.ClientKeys.SigningKID(time.Now())
	assert.Equal(t, before[0], kid, "the current key signs until the new one's lead has passed")
	kid, _ = s.ClientKeys.SigningKID(time.Now().Add(11 * time.Minute))
	assert.NotEqual(t, before[0], kid, "the new key signs after the lead")
	_, err = c.GetTokensByCode(ctx, loginCode(t, ctx, c, setup.OxdID))
	require.NoError(t, err, "the OP keeps accepting the site's assertions")

	var oe *oxdclient.Error
	_, err = c.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: setup.OxdID, Scope: []string{"openid"}})
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeInvalidRegistrationClientURL, oe.Code)
	_, err = c.UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: setup.SetupClientOxdID})
	require.ErrorAs(t, err, &oe, "the basic protection client has no keys to rotate")
	assert.Equal(t, oxdclient.CodeInvalidRegistrationClientURL, oe.Code)

	one, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
		SiteParams: siteParams(o, clientauth.MethodPrivateKeyJWT),
	})
	require.NoError(t, err)
	_, err = oxdclient.New(eng, oxdclient.Config{}).UpdateSite(ctx, oxdclient.UpdateSiteParams{OxdID: one.OxdID})
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, oxdclient.CodeInvalidRequest, oe.Code)
	assert.Contains(t, oe.Description, "protection role")
}

// lookupStore records the oxd_ids the engine looks up.
type lookupStore struct {
	*oxdserver.MemoryStore
	mu  sync.Mutex
	ids []string
}

func (s *lookupStore) GetSite(ctx context.Context, oxdID string) (*oxdserver.Site, error) {
	s.mu.Lock()
	s.ids = append(s.ids, oxdID)
	s.mu.Unlock()
	return s.MemoryStore.GetSite(ctx, oxdID)
}

// TestClientJWKSRouteOnlyLooksUpOxdIDs: the unauthenticated route hands
// the store nothing but an oxd_id-shaped segment (a UUID in canonical
// form): other paths are answered 404 without a lookup.
func TestClientJWKSRouteOnlyLooksUpOxdIDs(t *testing.T) {
	store := &lookupStore{MemoryStore: oxdserver.NewMemoryStore()}
	eng, err := oxdserver.New(oxdserver.Config{Store: store, InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	ext := httptest.NewServer(oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{}))
	t.Cleanup(ext.Close)
	for _, p := range []string{"a/b", "..", ".", "%2e%2e%2fsites", "a%00b", "a%20b", "a:b", strings.Repeat("a", 129), "", "a%2Fb",
		"1736.179E", "a_b.c", "2B1C6BC0-6D0E-4B6A-8A55-1F0F3C2B9A10", "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10x"} {
		status, _, _ := getJWKS(t, ext.URL+oxdserver.ClientJWKSPathPrefix+p)
		assert.Equal(t, http.StatusNotFound, status, "path %q", p)
	}
	store.mu.Lock()
	assert.Empty(t, store.ids, "the store was asked for a non-oxd_id")
	store.mu.Unlock()
	status, _, _ := getJWKS(t, ext.URL+oxdserver.ClientJWKSPathPrefix+"2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10")
	assert.Equal(t, http.StatusNotFound, status)
	store.mu.Lock()
	assert.Equal(t, []string{"2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10"}, store.ids)
	store.mu.Unlock()
}
