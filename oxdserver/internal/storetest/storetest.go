// Package storetest holds the behaviour every oxdserver.Store must have,
// as test helpers shared by the stores' tests (oxdserver and its
// sub-packages).
package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver"
)

// Contract checks the behaviour every Store must have.
func Contract(t *testing.T, s oxdserver.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

	counts(ctx, t, s)
}

// counts checks the StoreCounter of s, when it has one, on a store that
// holds one site and no pending value.
func counts(ctx context.Context, t *testing.T, s oxdserver.Store) {
	t.Helper()
	sc, ok := s.(oxdserver.StoreCounter)
	if !ok {
		return
	}
	n, err := sc.CountSites(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = sc.CountValues(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), n)
	require.NoError(t, s.PutValue(ctx, "state:c/1", []byte("v"), time.Minute))
	require.NoError(t, s.PutValue(ctx, "nonce:c/1", []byte("v"), time.Minute))
	require.NoError(t, s.PutValue(ctx, "state:c/2", []byte("v"), 50*time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	n, err = sc.CountValues(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "expired values are not counted")
	_, err = s.TakeValue(ctx, "state:c/1")
	require.NoError(t, err)
	n, err = sc.CountValues(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "a taken value is not counted")
	require.NoError(t, s.PutSite(ctx, &oxdserver.Site{OxdID: "counted", OPHost: "https://op.example", ClientID: "cc"}))
	n, err = sc.CountSites(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

// PendingBounds checks that s bounds pending one-time values per group
// (kind and site) and in total, evicting the oldest first. s must have
// been configured with at most 30 values in total and 10 per group.
func PendingBounds(t *testing.T, s oxdserver.Store) {
	t.Helper()
	ctx := context.Background()
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
}

// FloodEvictsFloodersOwn checks that at the store's global bound the
// oldest value of the largest group is evicted, not the oldest of the
// store: a tenant that floods several of its own sites with pending
// logins evicts its own, and another tenant's few older pending logins
// survive. s must have been configured with at most 30 values in total
// and 10 per group.
func FloodEvictsFloodersOwn(t *testing.T, s oxdserver.Store) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, s.PutValue(ctx, fmt.Sprintf("state:victim/%d", i), []byte("v"), time.Minute))
		time.Sleep(time.Millisecond) // distinct expiry times (Redis orders by them)
	}
	for site := range 6 { // the attacker's sites, 10 values each: 60 > 30
		for i := range 10 {
			require.NoError(t, s.PutValue(ctx, fmt.Sprintf("state:attacker%d/%d", site, i), []byte("v"), time.Minute))
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 3 {
		_, err := s.TakeValue(ctx, fmt.Sprintf("state:victim/%d", i))
		assert.NoError(t, err, "the attacker's flood evicted the victim's pending login %d", i)
	}
	_, err := s.TakeValue(ctx, "state:attacker5/9")
	assert.NoError(t, err, "the newest value was evicted")
	_, err = s.TakeValue(ctx, "state:attacker0/0")
	assert.ErrorIs(t, err, oxdserver.ErrNotFound, "the flooder's oldest value was kept")
}
