package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/internal/storetest"
	"github.com/oxdgo/oxd/oxdserver/redisstore"
	"github.com/oxdgo/oxd/oxdtest"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRedisStorePendingBounds: the Redis store bounds pending values as
// every store does (oxdserver's TestPendingStatesAreBounded).
func TestRedisStorePendingBounds(t *testing.T) {
	r := redisstore.New(startRedis(t), fmt.Sprintf("bounds%d:", time.Now().UnixNano()))
	r.MaxValues, r.MaxValuesPerGroup = 30, 10
	storetest.PendingBounds(t, r)
}

// TestRedisStoreFloodEvictsTheFloodersOwn: at the global bound the Redis
// store, like the memory and file stores, evicts the oldest value of the
// largest group, on a single node and on a Cluster.
func TestRedisStoreFloodEvictsTheFloodersOwn(t *testing.T) {
	r := redisstore.New(startRedis(t), fmt.Sprintf("flood%d:", time.Now().UnixNano()))
	r.MaxValues, r.MaxValuesPerGroup = 30, 10
	storetest.FloodEvictsFloodersOwn(t, r)
	rc := redisstore.New(redistest.StartCluster(t).Client(t), fmt.Sprintf("flood%d:", time.Now().UnixNano()))
	rc.MaxValues, rc.MaxValuesPerGroup = 30, 10
	storetest.FloodEvictsFloodersOwn(t, rc)
}

// TestRedisStorePendingBoundsCluster: the bounding script uses several keys
// at once; they share a hash tag, so it runs on a 3-primary Cluster.
func TestRedisStorePendingBoundsCluster(t *testing.T) {
	r := redisstore.New(redistest.StartCluster(t).Client(t), fmt.Sprintf("bounds%d:", time.Now().UnixNano()))
	r.MaxValues, r.MaxValuesPerGroup = 30, 10
	storetest.PendingBounds(t, r)
}

// TestRedisStoreContractCluster: the store contract on a 3-primary Redis
// Cluster (sites in different slots, one-time values under one hash tag).
func TestRedisStoreContractCluster(t *testing.T) {
	storetest.Contract(t, redisstore.New(redistest.StartCluster(t).Client(t), "contract:"))
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
	storetest.Contract(t, redisstore.New(c, "contract:"))
	// Everything lives under the prefix.
	keys, err := c.Keys(context.Background(), "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "contract:"), k)
	}
}

// TestTwoEnginesShareRedis: two replicas with one Redis; a login started
// on one finishes on the other, and its state cannot be used twice.
func TestTwoEnginesShareRedis(t *testing.T) {
	rc := startRedis(t)
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	newEngine := func() *oxdclient.Client {
		e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: redisstore.New(rc, "oxd:")})
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

// TestRedisStoreSiteDecodeCache: GetSite reuses the decoded form of a
// site only while Redis holds the very bytes it was decoded from. A
// change made through another store (another replica), or written to
// Redis directly, is seen on the next read; a caller changing the site it
// got changes nothing else; a deleted site is gone.
func TestRedisStoreSiteDecodeCache(t *testing.T) {
	rc := startRedis(t)
	ctx := testCtx(t)
	a, b := redisstore.New(rc, "cache:"), redisstore.New(rc, "cache:")
	site := &oxdserver.Site{OxdID: "s1", OPHost: "https://op.example", ClientID: "c1", ClientSecret: "secret-1",
		RedirectURIs: []string{"https://rp.example/cb"}, Scope: []string{"openid"}}
	require.NoError(t, a.PutSite(ctx, site))

	for range 2 { // decoded, then from the decoded copy
		got, err := a.GetSite(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, site, got)
		got.ClientSecret = "changed by the caller"
		got.RedirectURIs[0] = "https://evil.example/cb"
		got.Scope = append(got.Scope, "admin")
	}

	// Another replica changes the site.
	changed := site.Clone()
	changed.ClientSecret = "secret-2"
	changed.RedirectURIs = []string{"https://rp.example/cb2"}
	require.NoError(t, b.PutSite(ctx, changed))
	got, err := a.GetSite(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, changed, got)

	// Written to Redis by something else entirely (same JSON form).
	raw, err := rc.Get(ctx, "cache:site:s1").Bytes()
	require.NoError(t, err)
	require.NoError(t, rc.Set(ctx, "cache:site:s1", strings.Replace(string(raw), "secret-2", "secret-3", 1), 0).Err())
	got, err = a.GetSite(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, "secret-3", got.ClientSecret)

	// Corrupt bytes are an error, not the previous decoded site.
	require.NoError(t, rc.Set(ctx, "cache:site:s1", "{not json", 0).Err())
	_, err = a.GetSite(ctx, "s1")
	require.Error(t, err)

	// Deleted through the other store: not found here either.
	require.NoError(t, b.PutSite(ctx, site))
	_, err = a.GetSite(ctx, "s1")
	require.NoError(t, err)
	require.NoError(t, b.DeleteSite(ctx, "s1"))
	_, err = a.GetSite(ctx, "s1")
	require.ErrorIs(t, err, oxdserver.ErrNotFound)
}
