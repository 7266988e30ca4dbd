package oxdserver_test

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/internal/storetest"
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
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) { storetest.PendingBounds(t, mk(t)) })
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
