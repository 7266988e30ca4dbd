package oxdserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/internal/testwait"
	"github.com/oxdgo/oxd/oxdclient"
)

// CountingStore counts the site reads and listings of the engine and how
// many reads are in flight; while gated, reads wait until released.
type CountingStore struct {
	Store
	reads, lists, inflight, maxInflight atomic.Int64
	mu                                  sync.Mutex
	gate                                chan struct{}
}

// SiteReads and Listings are the GetSite and ListSites calls so far.
func (s *CountingStore) SiteReads() int64 { return s.reads.Load() }
func (s *CountingStore) Listings() int64  { return s.lists.Load() }

func (s *CountingStore) ListSites(ctx context.Context) ([]*Site, error) {
	s.lists.Add(1)
	return s.Store.ListSites(ctx)
}

func (s *CountingStore) GetSite(ctx context.Context, oxdID string) (*Site, error) {
	s.reads.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return s.Store.GetSite(ctx, oxdID)
}

// hold makes reads wait; the function returned releases them.
func (s *CountingStore) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(gate)
	}
}

// jwksFixture is an engine over a read-counting store with a clock the
// test moves, its HTTPS-extension handler, and one private_key_jwt site
// written to the store (as another engine sharing it would).
type jwksFixture struct {
	store *CountingStore
	eng   *Engine
	h     http.Handler
	clock atomic.Pointer[time.Time]
	site  *Site
}

func newJWKSFixture(t *testing.T) *jwksFixture {
	t.Helper()
	f := &jwksFixture{store: &CountingStore{Store: NewMemoryStore()}}
	start := time.Now()
	f.clock.Store(&start)
	eng, err := New(Config{Store: f.store, Now: func() time.Time { return *f.clock.Load() }, InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	f.eng, f.h = eng, NewHTTPSHandler(eng, HTTPSConfig{})
	ks, err := clientauth.GenerateKeySet("ES256", time.Now())
	require.NoError(t, err)
	f.site = &Site{OxdID: newOxdID(), OPHost: "https://op.example", ClientID: "c", Preregistered: true,
		TokenEndpointAuthMethod: string(clientauth.MethodPrivateKeyJWT), ClientKeys: ks}
	require.NoError(t, f.store.Store.PutSite(context.Background(), f.site))
	return f
}

func (f *jwksFixture) advance(d time.Duration) {
	next := f.clock.Load().Add(d)
	f.clock.Store(&next)
}

func (f *jwksFixture) get(id string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, ClientJWKSPathPrefix+id, nil))
	return w
}

// kids returns the key ids the route serves for the fixture's site, nil
// on a 404.
func (f *jwksFixture) kids(t *testing.T) []string {
	t.Helper()
	w := f.get(f.site.OxdID)
	if w.Code == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &set))
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestClientJWKSRouteFloodBoundsStoreReads floods the unauthenticated
// JWKS route as an outside caller can: ids that are not UUIDs never reach
// the store; the site's key set is read once and then served from memory;
// concurrent requests for a few unknown UUIDs read the store once per id,
// never more than clientJWKSMaxReads at a time; beyond the waiting bound
// the route answers 503 at once without a read; and a flood of distinct
// unknown UUIDs neither grows the cache past its bound nor evicts the
// site's key set.
func TestClientJWKSRouteFloodBoundsStoreReads(t *testing.T) {
	f := newJWKSFixture(t)
	st := f.store

	for i := range 3000 {
		id := rand.Text()
		switch i % 3 {
		case 1:
			id = strings.ToUpper(newOxdID())
		case 2:
			id = newOxdID()[:35] + "g"
		}
		w := f.get(id)
		require.Equal(t, http.StatusNotFound, w.Code, id)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"), id)
	}
	require.Zero(t, st.reads.Load(), "an id that is not a UUID reached the store")

	w := f.get(f.site.OxdID)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "public, max-age=300", w.Header().Get("Cache-Control"))
	for range 500 {
		require.Equal(t, w.Body.String(), f.get(f.site.OxdID).Body.String())
	}
	require.Equal(t, int64(1), st.reads.Load(), "the key set is read once")

	// 20 unknown UUIDs, 50 concurrent requests each, while reads hang.
	release := st.hold()
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = newOxdID()
	}
	var wg sync.WaitGroup
	codes := make(chan int, 50*len(ids))
	for range 50 {
		for _, id := range ids {
			wg.Go(func() { codes <- f.get(id).Code })
		}
	}
	testwait.Until(t, "the reads fill their slots and the rest wait", func() bool {
		return st.inflight.Load() == clientJWKSMaxReads && f.eng.clientKeys.reads.waiting.Load() == int32(len(ids)-clientJWKSMaxReads)
	})
	release()
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusNotFound, c)
	}
	assert.Equal(t, int64(1+len(ids)), st.reads.Load(), "one read per unknown id")
	assert.Equal(t, int64(clientJWKSMaxReads), st.maxInflight.Load(), "reads in flight")
	for _, id := range ids {
		require.Equal(t, http.StatusNotFound, f.get(id).Code)
	}
	assert.Equal(t, int64(1+len(ids)), st.reads.Load(), "a 404 is remembered")

	// Saturation: every slot and waiting place taken, the next distinct
	// ids are refused at once.
	release = st.hold()
	before := st.reads.Load()
	busy := make(chan int, clientJWKSMaxReads+clientJWKSMaxWaiting)
	for range clientJWKSMaxReads + clientJWKSMaxWaiting {
		wg.Go(func() { busy <- f.get(newOxdID()).Code })
	}
	testwait.Until(t, "the route is saturated", func() bool {
		return st.inflight.Load() == clientJWKSMaxReads && f.eng.clientKeys.reads.waiting.Load() == clientJWKSMaxWaiting
	})
	for range 10 {
		w := f.get(newOxdID())
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"))
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}
	release()
	wg.Wait()
	close(busy)
	for c := range busy {
		require.Equal(t, http.StatusNotFound, c)
	}
	assert.Equal(t, before+clientJWKSMaxReads+clientJWKSMaxWaiting, st.reads.Load(), "a refused request reads nothing")

	// Distinct unknown UUIDs past the cache's bound.
	for range clientJWKSMissSize + 200 {
		require.Equal(t, http.StatusNotFound, f.get(newOxdID()).Code)
	}
	assert.LessOrEqual(t, f.eng.clientKeys.misses.len(), clientJWKSMissSize)
	before = st.reads.Load()
	require.Equal(t, w.Body.String(), f.get(f.site.OxdID).Body.String())
	assert.Equal(t, before, st.reads.Load(), "the flood evicted the site's key set")
}

// TestClientJWKSRouteReflectsChanges: a key rotation or a removal made
// through the engine is served at once; one made by another engine
// sharing the store (written to the store here) within clientJWKSHitTTL;
// a site created after its id was asked for within clientJWKSMissTTL.
func TestClientJWKSRouteReflectsChanges(t *testing.T) {
	f := newJWKSFixture(t)
	ctx := context.Background()
	first := f.kids(t)
	require.Len(t, first, 1)

	// Through the engine: update_site with only oxd_id rotates the keys.
	require.NoError(t, f.eng.Do(ctx, oxdclient.CmdUpdateSite, map[string]string{"oxd_id": f.site.OxdID}, nil))
	second := f.kids(t)
	require.Len(t, second, 2, "the rotated key is served at once")
	require.Subset(t, second, first)

	// Another engine rotates again.
	s, err := f.store.Store.GetSite(ctx, f.site.OxdID)
	require.NoError(t, err)
	_, err = s.ClientKeys.Rotate("", time.Now(), keyRotationLead)
	require.NoError(t, err)
	require.NoError(t, f.store.Store.PutSite(ctx, s))
	assert.Equal(t, second, f.kids(t), "served from the cache")
	f.advance(clientJWKSHitTTL)
	third := f.kids(t)
	require.Len(t, third, 3, "a replica's rotation is served within clientJWKSHitTTL")

	// Another engine removes the site.
	require.NoError(t, f.store.Store.DeleteSite(ctx, f.site.OxdID))
	assert.Equal(t, third, f.kids(t), "served from the cache")
	f.advance(clientJWKSHitTTL)
	assert.Nil(t, f.kids(t), "a replica's removal is served within clientJWKSHitTTL")

	// Another engine registers it again: 404 for clientJWKSMissTTL.
	require.NoError(t, f.store.Store.PutSite(ctx, s))
	assert.Nil(t, f.kids(t), "the 404 is remembered")
	f.advance(clientJWKSMissTTL)
	assert.Equal(t, third, f.kids(t), "a replica's new site is served within clientJWKSMissTTL")

	// Through the engine: remove_site.
	require.NoError(t, f.eng.Do(ctx, oxdclient.CmdRemoveSite, map[string]string{"oxd_id": f.site.OxdID}, nil))
	assert.Nil(t, f.kids(t), "the removal is served at once")
}

// TestClientJWKSRouteServesKnownKeysWhileSaturated: a flood of unknown
// UUID-shaped ids (anyone can send them) keeps every read slot and waiting
// place taken; a site whose cached key set has passed clientJWKSHitTTL is
// still served from that copy (the OP fetching its client's keys must not
// get a 503 because of the flood), and is read again once a slot is free.
func TestClientJWKSRouteServesKnownKeysWhileSaturated(t *testing.T) {
	f := newJWKSFixture(t)
	st := f.store
	want := f.get(f.site.OxdID)
	require.Equal(t, http.StatusOK, want.Code)
	f.advance(clientJWKSHitTTL + time.Second)

	release := st.hold()
	var wg sync.WaitGroup
	for range clientJWKSMaxReads + clientJWKSMaxWaiting {
		wg.Go(func() { f.get(newOxdID()) })
	}
	testwait.Until(t, "the flood takes every read slot and waiting place", func() bool {
		return st.inflight.Load() == clientJWKSMaxReads && f.eng.clientKeys.reads.waiting.Load() == clientJWKSMaxWaiting
	})
	got := f.get(f.site.OxdID)
	release()
	wg.Wait()
	require.Equal(t, http.StatusOK, got.Code, "a known site's keys while the route is saturated")
	assert.Equal(t, want.Body.String(), got.Body.String())

	reads := st.SiteReads()
	require.Equal(t, http.StatusOK, f.get(f.site.OxdID).Code)
	assert.Equal(t, reads+1, st.SiteReads(), "the expired copy is read again once a slot is free")
	require.Equal(t, http.StatusOK, f.get(f.site.OxdID).Code)
	assert.Equal(t, reads+1, st.SiteReads(), "the key set read again is cached")
}
