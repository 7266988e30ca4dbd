package oxdserver_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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

// TestPendingStatesFloodEvictsTheFloodersOwn: at the store's global bound
// the memory and file stores evict from the largest group, so a tenant
// that floods several of its own sites with pending logins cannot evict
// another tenant's few pending logins (they were the oldest values of the
// store, which an oldest-first eviction would drop first).
func TestPendingStatesFloodEvictsTheFloodersOwn(t *testing.T) {
	ctx := t.Context()
	m := oxdserver.NewMemoryStore()
	m.MaxValues, m.MaxValuesPerGroup = 30, 10
	for i := range 3 {
		require.NoError(t, m.PutValue(ctx, fmt.Sprintf("state:victim/%d", i), []byte("v"), time.Minute))
	}
	for site := range 6 { // the attacker's sites, 10 values each: 60 > 30
		for i := range 10 {
			require.NoError(t, m.PutValue(ctx, fmt.Sprintf("state:attacker%d/%d", site, i), []byte("v"), time.Minute))
		}
	}
	for i := range 3 {
		_, err := m.TakeValue(ctx, fmt.Sprintf("state:victim/%d", i))
		assert.NoError(t, err, "the attacker's flood evicted the victim's pending login %d", i)
	}
	_, err := m.TakeValue(ctx, "state:attacker5/9")
	assert.NoError(t, err, "the newest value was evicted")
}
