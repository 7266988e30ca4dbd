package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	ok := func(v string) func(context.Context) (any, error) {
		return func(context.Context) (any, error) { return v, nil }
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
	failing := func(context.Context) (any, error) { return nil, errors.New("OP down") }
	_, err = e.cachedFetch(ctx, "https://op.example/kept", fresh, true, failing)
	require.Error(t, err, "a forced refetch that fails is an error")
	v, err := e.cachedFetch(ctx, "https://op.example/kept", maxAge{e: e, d: 0}, false, failing)
	require.NoError(t, err)
	assert.Equal(t, "kept", v, "the stale document serves")
	_, err = e.cachedFetch(ctx, "https://attacker.example/0", maxAge{e: e, d: 0}, false, failing)
	require.Error(t, err, "the least recently used was dropped")
}
