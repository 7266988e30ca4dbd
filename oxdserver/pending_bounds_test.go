package oxdserver_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestPendingStatesAreBounded (server hardening, defect 5): every store
// bounds pending one-time values per group (kind and site) and in total,
// evicting the oldest first; one site's flood does not evict another
// site's values until the total bound is reached.
func TestPendingStatesAreBounded(t *testing.T) {
	stores := map[string]func(t *testing.T) oxdserver.Store{
		"memory": func(*testing.T) oxdserver.Store {
			m := oxdserver.NewMemoryStore()
			m.MaxValues, m.MaxValuesPerGroup = 30, 10
			return m
		},
		"file": func(t *testing.T) oxdserver.Store {
			f, err := oxdserver.NewFileStore(filepath.Join(t.TempDir(), "sites.json"))
			require.NoError(t, err)
			f.SetValueLimits(30, 10)
			return f
		},
		"redis": func(t *testing.T) oxdserver.Store {
			r := oxdserver.NewRedisStore(startRedis(t), fmt.Sprintf("bounds%d:", time.Now().UnixNano()))
			r.MaxValues, r.MaxValuesPerGroup = 30, 10
			return r
		},
		// The bounding script uses several keys at once: they share a
		// hash tag, so it runs on a Cluster.
		"redis-cluster": func(t *testing.T) oxdserver.Store {
			r := oxdserver.NewRedisStore(redistest.StartCluster(t).Client(t), fmt.Sprintf("bounds%d:", time.Now().UnixNano()))
			r.MaxValues, r.MaxValuesPerGroup = 30, 10
			return r
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := mk(t)
			put := func(key string) { require.NoError(t, s.PutValue(ctx, key, []byte("v"), time.Minute)) }
			has := func(key string) bool {
				_, err := s.TakeValue(ctx, key)
				return err == nil
			}
			put("state:B/keep")
			for i := range 25 {
				put(fmt.Sprintf("state:A/%d", i))
				time.Sleep(time.Millisecond) // distinct expiry times (Redis orders by them)
			}
			// A keeps its 10 newest; B's value survives A's flood.
			assert.False(t, has("state:A/14"), "an old value of A was kept")
			assert.True(t, has("state:A/15"))
			assert.True(t, has("state:A/24"))
			assert.True(t, has("state:B/keep"), "A's flood evicted B's value")
			// The total bound: 4 groups of 10 against 30.
			for g := range 4 {
				for i := range 10 {
					put(fmt.Sprintf("nonce:G%d/%d", g, i))
					time.Sleep(time.Millisecond)
				}
			}
			assert.False(t, has("nonce:G0/0"), "the oldest value overall was kept")
			assert.True(t, has("nonce:G3/9"))
		})
	}
}

// TestPendingStatesBoundedThroughSocket: a flood of get_authorization_url
// over the socket listener evicts the site's oldest login state, not the
// newest.
func TestPendingStatesBoundedThroughSocket(t *testing.T) {
	store := oxdserver.NewMemoryStore()
	store.MaxValuesPerGroup = 20
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Store: store}))
	l := startListeners(t, srv.Engine, nil)
	tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	var states []string
	for range 50 {
		m, oe := l.socketCall(t, oxdclient.CmdGetAuthorizationURL, tok, map[string]any{"oxd_id": srv.OxdID})
		require.Nil(t, oe, "%v", oe)
		u := m["authorization_url"].(string)
		states = append(states, queryParam(t, u, "state"))
	}
	_, oe := l.socketCall(t, oxdclient.CmdGetTokensByCode, tok, map[string]any{"oxd_id": srv.OxdID, "code": "x", "state": states[0]})
	require.NotNil(t, oe)
	assert.Equal(t, oxdclient.DescStateNotRegistered, oe.Description, "the oldest state was kept")
	_, oe = l.socketCall(t, oxdclient.CmdGetTokensByCode, tok, map[string]any{"oxd_id": srv.OxdID, "code": "x", "state": states[49]})
	require.NotNil(t, oe)
	assert.NotEqual(t, oxdclient.DescStateNotRegistered, oe.Description, "the newest state was evicted")
}

func queryParam(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Query().Get(name)
}
