package oxdserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Bounds of the public client JWKS route (ClientJWKSPathPrefix), which
// anyone can call: its answers are cached in memory so that repeated
// requests (an OP fetching its clients' keys, or a flood) do not each read
// the store, and its store reads are limited.
//
// Staleness: a change made through this engine (update_site rotating keys,
// remove_site, a new registration) is served at once. A change made by
// another engine sharing the store (a replica) is served within
// clientJWKSHitTTL (a site's keys, or their removal) or clientJWKSMissTTL
// (a new site that was asked for before it existed). An OP that honours
// the answer's max-age sees a rotated key within clientJWKSHitTTL +
// clientJWKSMaxAge, shorter than keyRotationLead: before the key signs.
const (
	// clientJWKSHitTTL is how long a served key set is reused without
	// reading the store (past it, it still serves while no read can).
	clientJWKSHitTTL = 30 * time.Second
	// clientJWKSMissTTL is how long an unknown oxd_id (or a site without
	// keys) is answered 404 without reading the store again.
	clientJWKSMissTTL = 5 * time.Second
	// clientJWKSHitSize bounds the cached key sets (one per site that
	// uses private_key_jwt and was fetched).
	clientJWKSHitSize = 1024
	// clientJWKSMissSize bounds the cached 404s, apart from the key sets
	// so that a flood of unknown oxd_ids cannot evict them.
	clientJWKSMissSize = 4096
	// clientJWKSMaxReads bounds the store reads of the route in flight;
	// concurrent requests for one oxd_id share one read.
	clientJWKSMaxReads = 4
	// clientJWKSMaxWaiting bounds the requests waiting for a read slot;
	// beyond, the route answers 503 at once.
	clientJWKSMaxWaiting = 64
	// clientJWKSReadTimeout bounds one store read of the route.
	clientJWKSReadTimeout = 10 * time.Second
)

// clientJWKSCache is the engine's cache of the public client JWKS route.
// A key set is fresh for clientJWKSHitTTL; past that it is kept (within
// clientJWKSHitSize) and still served when it cannot be read again (the
// reads saturated by a flood of unknown ids, or a store failure), until a
// read answers or the site is written through this engine.
type clientJWKSCache struct {
	hits   ttlCache[string, jwksHit]
	misses ttlCache[string, error] // ErrNotFound or ErrNoClientKeys
	flight singleflight.Group
	// reads bounds the store reads in flight and the requests waiting.
	reads *gate
	// mu orders fills after invalidations: gen counts invalidations, and
	// a read that began before one does not fill the cache.
	mu  sync.Mutex
	gen uint64
}

// jwksHit is a key set read from the store at fetched.
type jwksHit struct {
	b       []byte
	fetched time.Time
}

func newClientJWKSCache() *clientJWKSCache {
	return &clientJWKSCache{reads: newGate(clientJWKSMaxReads, clientJWKSMaxWaiting)}
}

// invalidate drops what the cache holds for oxdID; later requests read
// the store. The engine calls it after each write of a site.
func (c *clientJWKSCache) invalidate(oxdID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.hits.delete(oxdID)
	c.misses.delete(oxdID)
	c.flight.Forget(oxdID)
}

// cached returns the cached answer for oxdID, if any: the key set, or
// the error of a 404.
func (c *clientJWKSCache) cached(oxdID string, now time.Time) ([]byte, error, bool) {
	if h, ok := c.hits.get(oxdID, now); ok && now.Sub(h.fetched) < clientJWKSHitTTL {
		return h.b, nil, true
	}
	if err, ok := c.misses.get(oxdID, now); ok {
		return nil, err, true
	}
	return nil, nil, false
}

// generation returns the count of invalidations so far.
func (c *clientJWKSCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill caches the answer of a read begun at generation gen, unless an
// invalidation happened since.
func (c *clientJWKSCache) fill(oxdID string, gen uint64, b []byte, err error, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	switch {
	case err == nil:
		c.misses.delete(oxdID)
		c.hits.put(oxdID, jwksHit{b: b, fetched: now}, time.Time{}, clientJWKSHitSize)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoClientKeys):
		c.hits.delete(oxdID)
		c.misses.put(oxdID, err, now.Add(clientJWKSMissTTL), clientJWKSMissSize)
	}
}

// publicClientJWKS is ClientJWKS for the public route: cached, with
// concurrent requests for one oxd_id sharing one store read, and at most
// clientJWKSMaxReads reads in flight. Errors: ErrNotFound, ErrNoClientKeys,
// errBusy, or the store's.
func (e *Engine) publicClientJWKS(ctx context.Context, oxdID string) ([]byte, error) {
	c := e.clientKeys
	if b, err, ok := c.cached(oxdID, e.now()); ok {
		return b, err
	}
	ch := c.flight.DoChan(oxdID, func() (any, error) {
		// A read that ended between the check above and this flight
		// has filled the cache.
		if b, err, ok := c.cached(oxdID, e.now()); ok {
			return b, err
		}
		return e.readClientJWKS(ctx, oxdID)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			if !errors.Is(res.Err, ErrNotFound) && !errors.Is(res.Err, ErrNoClientKeys) {
				// Busy or failed: the expired key set, if any, serves.
				if h, ok := c.hits.get(oxdID, e.now()); ok {
					return h.b, nil
				}
			}
			return nil, res.Err
		}
		return res.Val.([]byte), nil
	}
}

// readClientJWKS reads the site's key set from the store when a read slot
// is free (waiting for one unless clientJWKSMaxWaiting requests already
// do) and caches the answer. The wait and the read outlive a caller that
// gives up, so that the others sharing them are not failed by that
// caller's deadline; clientJWKSReadTimeout bounds them.
func (e *Engine) readClientJWKS(ctx context.Context, oxdID string) ([]byte, error) {
	c := e.clientKeys
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientJWKSReadTimeout)
	defer cancel()
	leave, err := c.reads.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	gen := c.generation()
	b, err := e.ClientJWKS(ctx, oxdID)
	c.fill(oxdID, gen, b, err, e.now())
	return b, err
}

// putSite stores s; the public JWKS route serves the new site from then on.
func (e *Engine) putSite(ctx context.Context, s *Site) error {
	err := e.store.PutSite(ctx, s)
	e.clientKeys.invalidate(s.OxdID)
	return err
}

// deleteSite removes the site oxdID; the public JWKS route answers 404 for
// it from then on.
func (e *Engine) deleteSite(ctx context.Context, oxdID string) error {
	err := e.store.DeleteSite(ctx, oxdID)
	e.clientKeys.invalidate(oxdID)
	return err
}
