package oxdserver_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
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
// another tenant's few pending logins (the Redis store's test is in
// redisstore).
func TestPendingStatesFloodEvictsTheFloodersOwn(t *testing.T) {
	m := oxdserver.NewMemoryStore()
	m.MaxValues, m.MaxValuesPerGroup = 30, 10
	storetest.FloodEvictsFloodersOwn(t, m)
	f, err := oxdserver.NewFileStore(filepath.Join(t.TempDir(), "sites.json"))
	require.NoError(t, err)
	f.SetValueLimits(30, 10)
	storetest.FloodEvictsFloodersOwn(t, f)
}

// recordingStore records the one-time values put into a store.
type recordingStore struct {
	oxdserver.Store
	mu   sync.Mutex
	puts map[string]int // key -> value length
}

func (r *recordingStore) PutValue(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.puts[key] = len(value)
	r.mu.Unlock()
	return r.Store.PutValue(ctx, key, value, ttl)
}

// TestOnePendingValuePerLogin (design P9): a started login leaves one
// value in the engine's store, its state, of at most 64 bytes (the nonce
// and the PKCE verifier in it, no value of the nonce's own), and the login
// still completes with it.
func TestOnePendingValuePerLogin(t *testing.T) {
	rec := &recordingStore{Store: oxdserver.NewMemoryStore(), puts: map[string]int{}}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{Store: rec}))
	rec.mu.Lock()
	clear(rec.puts) // values of the setup
	rec.mu.Unlock()
	const logins = 20
	for range logins {
		_, oe := exec(t, srv.Engine, "get_authorization_url", map[string]any{"oxd_id": srv.OxdID})
		require.Nil(t, oe)
	}
	rec.mu.Lock()
	assert.Len(t, rec.puts, logins, "values per started login")
	for k, n := range rec.puts {
		assert.True(t, strings.HasPrefix(k, "state:"+srv.OxdID+"/"), k)
		assert.LessOrEqual(t, n, 64, "stored bytes of a pending login")
	}
	rec.mu.Unlock()
	code, state, err := srv.Login(t.Context(), "alice", "alice-password")
	require.NoError(t, err)
	m, oe := exec(t, srv.Engine, "get_tokens_by_code", map[string]any{"oxd_id": srv.OxdID, "code": code, "state": state})
	require.Nil(t, oe, "%v", oe)
	assert.NotEmpty(t, m["access_token"])
}
