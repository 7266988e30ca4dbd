package oxd

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// The cache TTL is bounded by MaxGrantTTL when the RPT lives longer.
func TestUMAGrantCacheMaxTTL(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{uma: &UMAConfig{MaxGrantTTL: 30 * time.Second}})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	rg.waitSettled()
	n := rg.tr.count(oxdclient.CmdUMARSCheckAccess)

	rg.clock.Advance(29 * time.Second)
	require.Equal(t, http.StatusOK, rg.do("GET", "/photos/1", bearer(rpt)).status)
	assert.Equal(t, n, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	rg.clock.Advance(2 * time.Second)
	res := rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Contains(t, res.header.Get("X-UMA-Decision"), "cached=false")
	assert.Equal(t, n+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	// The RPT's expiry is remembered: no second introspection.
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT))

	// Disabled cache: every request asks oxd.
	require.NoError(t, rg.auth.configureUMA(UMAConfig{MaxGrantTTL: -1}))
	n = rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	rg.do("GET", "/photos/1", bearer(rpt))
	rg.do("GET", "/photos/1", bearer(rpt))
	assert.Equal(t, n+2, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
}

// Denials are never cached: each gets its own fresh ticket, also when
// requests with one RPT run in parallel.
func TestUMADenialsNotCached(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")

	const n = 8
	tickets := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res := rg.do("GET", "/albums/1", bearer(rpt))
			if res.status == http.StatusUnauthorized {
				if f, err := parseChallengeErr(res.header.Get("WWW-Authenticate")); err == nil {
					tickets <- f["ticket"]
				}
			}
		})
	}
	wg.Wait()
	close(tickets)
	seen := map[string]bool{}
	for tk := range tickets {
		assert.False(t, seen[tk], "a ticket was handed out twice")
		seen[tk] = true
	}
	assert.Len(t, seen, n)
	assert.Zero(t, rg.auth.uma.cache.len())
}

// Grant cache under -race: parallel requests with one RPT make one
// check-access call (and one introspection); an expired RPT is checked
// again.
func TestUMAGrantCacheParallelOneCheck(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{op: oxdtest.OPConfig{AccessTokenTTL: 3 * time.Minute}, uma: &UMAConfig{MaxGrantTTL: time.Hour}})
	rg.protect("GET /photos/{id}", "view")
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	before := rg.tr.count(oxdclient.CmdUMARSCheckAccess)

	// Hold the first check so that the others pile up behind it.
	release := rg.tr.hold(oxdclient.CmdUMARSCheckAccess)
	const n = 24
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			path := "/photos/" + string(rune('a'+i%3)) // concrete paths of one template
			statuses <- rg.do("GET", path, bearer(rpt)).status
		})
	}
	time.Sleep(100 * time.Millisecond)
	release()
	wg.Wait()
	close(statuses)
	for s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	assert.Equal(t, before+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess), "one check-access for all")
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT), "one introspection")
	assert.Equal(t, n, rg.pageCalls("GET /photos/{id}"))

	// After the RPT's expiry: checked again (and refused by the AS).
	rg.clock.Advance(3 * time.Minute)
	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Go(func() { assert.Equal(t, http.StatusUnauthorized, rg.do("GET", "/photos/a", bearer(rpt)).status) })
	}
	wg2.Wait()
	assert.Greater(t, rg.tr.count(oxdclient.CmdUMARSCheckAccess), before+1)
}

// P4: an uncached request makes exactly one oxd round trip. The RPT's
// expiry is read in the background (the request does not wait for it);
// for an RPT whose expiry is known, the check is the only oxd call at all.
func TestUMAUncachedRequestOneRoundTrip(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	rg.protect("GET /photos/{id}", "view")
	rg.protect("GET /albums/{id}", "view")
	rg.register()
	// One RPT with permissions on both resources (the second upgrades it).
	rpt := rg.rpt("GET", "/photos/1")
	res := rg.do("GET", "/albums/1", bearer(rpt))
	require.Equal(t, http.StatusUnauthorized, res.status)
	up, err := rg.srv.Client.UMARPGetRPT(context.Background(), oxdclient.UMARPGetRPTParams{
		OxdID: rg.srv.OxdID, Ticket: parseChallenge(t, res.header.Get("WWW-Authenticate"))["ticket"], RPT: oxdclient.Secret(rpt)})
	require.NoError(t, err)
	require.Equal(t, rpt, up.AccessToken.Reveal(), "upgraded in place")

	// First use of the RPT: the introspection is held back, and the
	// answer still arrives, after a single check-access call.
	release := rg.tr.hold(oxdclient.CmdIntrospectRPT)
	defer release()
	checks := rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	others := rg.tr.total() - checks - rg.tr.count(oxdclient.CmdIntrospectRPT)
	res = rg.do("GET", "/photos/1", bearer(rpt))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, checks+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
	assert.Equal(t, others, rg.tr.total()-rg.tr.count(oxdclient.CmdUMARSCheckAccess)-rg.tr.count(oxdclient.CmdIntrospectRPT),
		"no other oxd call on the request's path")
	release()
	rg.waitSettled()
	assert.Equal(t, 1, rg.tr.count(oxdclient.CmdIntrospectRPT), "the expiry was read in the background")

	// Expiry known: the first request to another resource is exactly one
	// oxd call.
	before := rg.tr.total()
	checks = rg.tr.count(oxdclient.CmdUMARSCheckAccess)
	require.Equal(t, http.StatusOK, rg.do("GET", "/albums/2", bearer(rpt)).status)
	assert.Equal(t, before+1, rg.tr.total())
	assert.Equal(t, checks+1, rg.tr.count(oxdclient.CmdUMARSCheckAccess))
}

func TestUMAGrantCacheBounded(t *testing.T) {
	var c grantCache
	c.init(time.Minute, 10)
	now := time.Now()
	for i := range 100 {
		k := grantKey{rpt: hashRPT(string(rune('a' + i))), method: "GET", template: "/x"}
		fill := c.add(k, now)
		require.NotNil(t, fill)
		c.filled(k.rpt, fill, now.Add(time.Hour), true, now)
	}
	c.mu.Lock()
	assert.LessOrEqual(t, len(c.grants), 10)
	assert.LessOrEqual(t, len(c.rpts), 10)
	c.mu.Unlock()

	// Unusable RPT (introspection failed): nothing cached, expiry forgotten.
	k := grantKey{rpt: hashRPT("z"), method: "GET", template: "/x"}
	fill := c.add(k, now)
	c.filled(k.rpt, fill, time.Time{}, false, now)
	assert.False(t, c.lookup(context.Background(), k, func() time.Time { return now }))
	c.mu.Lock()
	_, known := c.rpts[k.rpt]
	c.mu.Unlock()
	assert.False(t, known)

	// Expiry already (almost) past: not cached.
	k2 := grantKey{rpt: hashRPT("y"), method: "GET", template: "/x"}
	fill = c.add(k2, now)
	c.filled(k2.rpt, fill, now.Add(umaGrantSkew/2), true, now)
	assert.False(t, c.lookup(context.Background(), k2, func() time.Time { return now }))
}
