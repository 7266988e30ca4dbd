package oxdserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// storeContract checks the behaviour every Store must have.
func storeContract(t *testing.T, s oxdserver.Store) {
	ctx := testCtx(t)
	_, err := s.GetSite(ctx, "missing")
	require.ErrorIs(t, err, oxdserver.ErrNotFound)
	require.ErrorIs(t, s.DeleteSite(ctx, "missing"), oxdserver.ErrNotFound)

	a := &oxdserver.Site{OxdID: "a", OPHost: "https://op.example", ClientID: "ca", ClientSecret: "sa", Scope: []string{"openid"},
		UMAResources: []oxdserver.UMAResource{{ID: "r1", Path: "/p", HTTPMethods: []string{"GET"}, Scopes: []string{"view"}}}}
	b := &oxdserver.Site{OxdID: "b", OPHost: "https://op.example", ClientID: "cb"}
	require.NoError(t, s.PutSite(ctx, a))
	require.NoError(t, s.PutSite(ctx, b))
	got, err := s.GetSite(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, a, got)
	got.Scope[0] = "changed" // a copy: the store is not affected
	again, err := s.GetSite(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "openid", again.Scope[0])

	a.ClientName = "renamed"
	require.NoError(t, s.PutSite(ctx, a))
	got, err = s.GetSite(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.ClientName)

	list, err := s.ListSites(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "a", list[0].OxdID)
	assert.Equal(t, "b", list[1].OxdID)

	require.NoError(t, s.DeleteSite(ctx, "b"))
	_, err = s.GetSite(ctx, "b")
	require.ErrorIs(t, err, oxdserver.ErrNotFound)
	list, err = s.ListSites(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)

	// One-time values: taken once, even under concurrency.
	require.NoError(t, s.PutValue(ctx, "state:x", []byte("v"), time.Minute))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.TakeValue(ctx, "state:x")
			if err == nil {
				assert.Equal(t, "v", string(v))
				wins.Add(1)
			} else {
				assert.ErrorIs(t, err, oxdserver.ErrNotFound)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load())
	_, err = s.TakeValue(ctx, "never")
	require.ErrorIs(t, err, oxdserver.ErrNotFound)
	require.Error(t, s.PutValue(ctx, "k", []byte("v"), 0))

	// Expiry: a short-lived value is gone after its TTL, a long-lived one
	// put at the same time is still there.
	require.NoError(t, s.PutValue(ctx, "short", []byte("v"), 50*time.Millisecond))
	require.NoError(t, s.PutValue(ctx, "long", []byte("v"), time.Minute))
	time.Sleep(200 * time.Millisecond)
	_, err = s.TakeValue(ctx, "short")
	require.ErrorIs(t, err, oxdserver.ErrNotFound)
	_, err = s.TakeValue(ctx, "long")
	require.NoError(t, err)
}

func TestMemoryStoreContract(t *testing.T) { storeContract(t, oxdserver.NewMemoryStore()) }

func TestFileStoreContract(t *testing.T) {
	s, err := oxdserver.NewFileStore(filepath.Join(t.TempDir(), "sites.json"))
	require.NoError(t, err)
	storeContract(t, s)
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oxd", "sites.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})

	store, err := oxdserver.NewFileStore(path)
	require.NoError(t, err)
	e1, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: store})
	require.NoError(t, err)
	c1 := oxdclient.New(e1, oxdclient.Config{})
	reg, err := c1.RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: "https://rp.example/cb", ClientName: "survivor"}})
	require.NoError(t, err)
	require.NoError(t, e1.Close())

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")

	// A new process: the site is there and usable for a full login.
	store2, err := oxdserver.NewFileStore(path)
	require.NoError(t, err)
	e2, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: store2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e2.Close() })
	c2 := oxdclient.New(e2, oxdclient.Config{})
	au, err := c2.GetAuthorizationURL(testCtx(t), oxdclient.GetAuthorizationURLParams{OxdID: reg.OxdID})
	require.NoError(t, err)
	cb, err := op.Login(testCtx(t), au.AuthorizationURL, "bob", "bob-password")
	require.NoError(t, err)
	tok, err := c2.GetTokensByCode(testCtx(t), oxdclient.GetTokensByCodeParams{OxdID: reg.OxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")})
	require.NoError(t, err)
	assert.Equal(t, "bob", tok.IDTokenClaims.String("sub"))
}

func TestFileStoreRejectsCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := oxdserver.NewFileStore(path)
	require.Error(t, err)
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"sites":{"a":{"oxd_id":"b"}}}`), 0o600))
	_, err = oxdserver.NewFileStore(path)
	require.Error(t, err)
}

// startRedis starts redis-server on a free loopback port for the test
// (internal/redistest: without redis-server the test is skipped, unless CI
// is on).
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	return redistest.Start(t).Client(t)
}

func TestRedisStoreContract(t *testing.T) {
	c := startRedis(t)
	storeContract(t, oxdserver.NewRedisStore(c, "contract:"))
	// Everything lives under the prefix.
	keys, err := c.Keys(context.Background(), "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "contract:"), k)
	}
}

// TestRedisStoreContractCluster: the same contract on a 3-primary Redis
// Cluster (sites in different slots, one-time values under one hash tag).
func TestRedisStoreContractCluster(t *testing.T) {
	storeContract(t, oxdserver.NewRedisStore(redistest.StartCluster(t).Client(t), "contract:"))
}

// TestTwoEnginesShareRedis: two replicas with one Redis; a login started
// on one finishes on the other, and its state cannot be used twice.
func TestTwoEnginesShareRedis(t *testing.T) {
	rc := startRedis(t)
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	newEngine := func() *oxdclient.Client {
		e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: oxdserver.NewRedisStore(rc, "oxd:")})
		require.NoError(t, err)
		t.Cleanup(func() { _ = e.Close() })
		return oxdclient.New(e, oxdclient.Config{})
	}
	a, b := newEngine(), newEngine()
	ctx := testCtx(t)
	setup, err := a.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: "https://rp.example/cb"}})
	require.NoError(t, err)

	au, err := a.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	cb, err := op.Login(ctx, au.AuthorizationURL, "alice", "alice-password")
	require.NoError(t, err)
	p := oxdclient.GetTokensByCodeParams{OxdID: setup.OxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")}
	tok, err := b.GetTokensByCode(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, "alice", tok.IDTokenClaims.String("sub"))
	_, err = a.GetTokensByCode(ctx, p)
	require.True(t, oxdclient.IsStateNotRegistered(err), "%v", err)

	// The state lives in Redis with a TTL.
	au2, err := b.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: setup.OxdID})
	require.NoError(t, err)
	state := strings.Split(strings.Split(au2.AuthorizationURL, "state=")[1], "&")[0]
	ttl, err := rc.PTTL(ctx, "oxd:{v}v:state:"+setup.OxdID+"/"+state).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
	assert.LessOrEqual(t, ttl, oxdserver.DefaultStateTTL)

	// Both replicas see the sites.
	list, err := b.GetRP(ctx, oxdclient.GetRPParams{List: true})
	require.NoError(t, err)
	sites, err := list.Sites()
	require.NoError(t, err)
	assert.Len(t, sites, 2)
}
