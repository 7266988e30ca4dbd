package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
)

func TestCommonFieldsOf(t *testing.T) {
	get := commonFieldsOf[oxdclient.GetAuthorizationURLParams]()
	require.NotNil(t, get, "the params of get_authorization_url hold oxd_id and protection_access_token")
	var p oxdclient.GetAuthorizationURLParams
	require.NoError(t, json.Unmarshal([]byte(`{"OXD_ID":"a","oxd_id":"b","protection_access_token":"t"}`), &p))
	assert.Equal(t, commonParams{OxdID: "b", PAT: "t"}, get(&p))

	type embedded struct {
		*oxdclient.Protection
		OxdID string `json:"oxd_id"`
	}
	getE := commonFieldsOf[embedded]()
	require.NotNil(t, getE)
	assert.Equal(t, commonParams{OxdID: "x"}, getE(&embedded{OxdID: "x"}))

	// Not derivable: the parameters are decoded a second time.
	type noPAT struct {
		OxdID string `json:"oxd_id"`
	}
	assert.Nil(t, commonFieldsOf[noPAT]())
	type intID struct {
		OxdID int `json:"oxd_id"`
		oxdclient.Protection
	}
	assert.Nil(t, commonFieldsOf[intID]())
	type twice struct {
		A string `json:"oxd_id"`
		B string `json:"OXD_ID"`
		oxdclient.Protection
	}
	assert.Nil(t, commonFieldsOf[twice]())
	assert.Nil(t, commonFieldsOf[map[string]any]())
}

// TestDiscoveryCacheBounded: the documents the engine keeps by URL are
// bounded (a caller without credentials chooses op_host), the least
// recently used dropped first, and a kept document still serves when its
// refetch fails, however old.
func TestDiscoveryCacheBounded(t *testing.T) {
	e, err := New(Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	ctx := context.Background()
	fresh := maxAge{e: e, d: int64(time.Hour)}
	ok := func(v string) func(context.Context) (any, int, error) {
		return func(context.Context) (any, int, error) { return v, len(v), nil }
	}
	_, err = e.cachedFetch(ctx, "https://op.example/kept", fresh, false, ok("kept"))
	require.NoError(t, err)
	for i := range discCacheSize + 100 {
		_, err := e.cachedFetch(ctx, fmt.Sprintf("https://attacker.example/%d", i), fresh, false, ok("x"))
		require.NoError(t, err)
		if i%100 == 0 { // keep the real OP's document in use
			_, err = e.cachedFetch(ctx, "https://op.example/kept", fresh, false, ok("refetched"))
			require.NoError(t, err)
		}
	}
	assert.Equal(t, discCacheSize, e.disc.len())
	failing := func(context.Context) (any, int, error) { return nil, 0, errors.New("OP down") }
	_, err = e.cachedFetch(ctx, "https://op.example/kept", fresh, true, failing)
	require.Error(t, err, "a forced refetch that fails is an error")
	v, err := e.cachedFetch(ctx, "https://op.example/kept", maxAge{e: e, d: 0}, false, failing)
	require.NoError(t, err)
	assert.Equal(t, "kept", v, "the stale document serves")
	_, err = e.cachedFetch(ctx, "https://attacker.example/0", maxAge{e: e, d: 0}, false, failing)
	require.Error(t, err, "the least recently used was dropped")
}

// TestDiscoveryCacheBoundedInBytes: an OP a caller without credentials
// names (get_client_token) can answer documents of up to maxOPResponse
// whose decoded form is larger still; what the engine keeps of them is
// bounded by their total size, not only by their count (1024 of them held
// gigabytes): the oldest are dropped and fetched again when used.
func TestDiscoveryCacheBoundedInBytes(t *testing.T) {
	var hits sync.Map // path → *atomic.Int64
	pad := strings.Repeat("x", maxOPResponse-1024)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		iss := srv.URL + strings.TrimSuffix(r.URL.Path, "/.well-known/openid-configuration")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "authorization_endpoint": srv.URL + "/a",
			"token_endpoint": srv.URL + "/t", "jwks_uri": srv.URL + "/k", "padding": pad})
	}))
	t.Cleanup(srv.Close)
	e, err := New(Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	ctx := context.Background()
	docs := discCacheBytes/maxOPResponse + 8
	for i := range docs {
		_, err := e.oidc(ctx, srv.URL, fmt.Sprintf("/t%d", i))
		require.NoError(t, err)
	}
	_, err = e.oidc(ctx, srv.URL, "/t0")
	require.NoError(t, err)
	n, _ := hits.Load("/t0/.well-known/openid-configuration")
	assert.Equal(t, int64(2), n.(*atomic.Int64).Load(), "the oldest large document was kept past the byte bound")
	assert.Less(t, e.disc.len(), docs)
}
