package oxd

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// umaGrantSkew is subtracted from an RPT's expiry: the AS's clock may be
// ahead of ours.
const umaGrantSkew = 5 * time.Second

// grantKey identifies a grant: the hash of the RPT (never the RPT), the
// method and the route template.
type grantKey struct {
	rpt              [sha256.Size]byte
	method, template string
}

// flightKey is the single-flight key of a grant check.
func (k grantKey) flightKey() string {
	return string(k.rpt[:]) + "\x00" + k.method + "\x00" + k.template
}

// grantEntry is a cached grant. until is zero while the RPT's expiry is
// being read (info not done yet); the grant is then valid until
// min(t0+maxTTL, info.exp−skew).
type grantEntry struct {
	t0    time.Time
	until time.Time
	info  *rptInfo
}

// rptInfo is what introspection told about an RPT: its expiry (the
// earliest of the token's and its permissions'). done is closed when
// known; ok is false when the RPT must not be cached.
type rptInfo struct {
	done    chan struct{}
	exp     time.Time // zero: no expiry given
	ok      bool
	waiting []grantKey // grants recorded before done; guarded by grantCache.mu
}

// grantCache caches grants only, bounded in size. Denials are never
// cached: each needs a fresh single-use ticket.
type grantCache struct {
	mu     sync.Mutex
	maxTTL time.Duration // <0: disabled
	max    int
	grants map[grantKey]grantEntry
	rpts   map[[sha256.Size]byte]*rptInfo
}

func (c *grantCache) init(maxTTL time.Duration, max int) {
	c.maxTTL, c.max = maxTTL, max
	c.grants = map[grantKey]grantEntry{}
	c.rpts = map[[sha256.Size]byte]*rptInfo{}
}

func (c *grantCache) setLimits(maxTTL time.Duration, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxTTL, c.max = maxTTL, max
	if maxTTL < 0 {
		clear(c.grants)
	}
}

func (c *grantCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.grants)
	clear(c.rpts)
}

// len reports the number of cached grants (tests).
func (c *grantCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.grants)
}

// untilLocked computes the end of a grant made at t0 for an RPT.
func (c *grantCache) untilLocked(t0 time.Time, info *rptInfo) time.Time {
	until := t0.Add(c.maxTTL)
	if !info.exp.IsZero() {
		if e := info.exp.Add(-umaGrantSkew); e.Before(until) {
			until = e
		}
	}
	return until
}

// lookup reports a live cached grant (never with the cache disabled). A
// grant whose RPT expiry is still being read is waited for (bounded by
// ctx).
func (c *grantCache) lookup(ctx context.Context, k grantKey, now func() time.Time) bool {
	c.mu.Lock()
	e, ok := c.grants[k]
	if !ok {
		c.mu.Unlock()
		return false
	}
	if e.until.IsZero() {
		info := e.info
		c.mu.Unlock()
		select {
		case <-info.done:
		case <-ctx.Done():
			return false
		}
		c.mu.Lock()
		e, ok = c.grants[k]
		if !ok || e.until.IsZero() {
			c.mu.Unlock()
			return false
		}
	}
	if now().Before(e.until) {
		c.mu.Unlock()
		return true
	}
	delete(c.grants, k)
	c.mu.Unlock()
	return false
}

// add records a grant made at t0. It returns an rptInfo to fill when the
// RPT's expiry is not known yet (the caller introspects it).
func (c *grantCache) add(k grantKey, t0 time.Time) (fill *rptInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxTTL < 0 {
		return nil
	}
	c.makeRoomLocked(t0)
	info := c.rpts[k.rpt]
	if info == nil {
		info = &rptInfo{done: make(chan struct{})}
		c.rpts[k.rpt] = info
		fill = info
	}
	select {
	case <-info.done:
		if !info.ok {
			return fill
		}
		if until := c.untilLocked(t0, info); t0.Before(until) {
			c.grants[k] = grantEntry{t0: t0, until: until, info: info}
		}
	default:
		c.grants[k] = grantEntry{t0: t0, info: info}
		info.waiting = append(info.waiting, k)
	}
	return fill
}

// filled publishes the RPT's expiry and settles the grants waiting for
// it: kept until their end, or dropped when the RPT is unusable or
// already expired.
func (c *grantCache) filled(h [sha256.Size]byte, info *rptInfo, exp time.Time, ok bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info.exp, info.ok = exp, ok
	close(info.done)
	if !ok && c.rpts[h] == info {
		delete(c.rpts, h)
	}
	waiting := info.waiting
	info.waiting = nil
	for _, k := range waiting {
		e, found := c.grants[k]
		if !found || e.info != info || !e.until.IsZero() {
			continue
		}
		if !ok {
			delete(c.grants, k)
			continue
		}
		until := c.untilLocked(e.t0, info)
		if !now.Before(until) {
			delete(c.grants, k)
			continue
		}
		e.until = until
		c.grants[k] = e
	}
}

// makeRoomLocked keeps both maps under the size bound: expired entries go
// first, then arbitrary ones.
func (c *grantCache) makeRoomLocked(now time.Time) {
	if len(c.grants) >= c.max {
		for k, e := range c.grants {
			if !e.until.IsZero() && !now.Before(e.until) {
				delete(c.grants, k)
			}
		}
		for k, e := range c.grants {
			if len(c.grants) < c.max {
				break
			}
			if !e.until.IsZero() { // pending entries settle soon
				delete(c.grants, k)
			}
		}
	}
	if len(c.rpts) >= c.max {
		for h, info := range c.rpts {
			select {
			case <-info.done:
				if !info.exp.IsZero() && !now.Before(info.exp) {
					delete(c.rpts, h)
				}
			default:
			}
		}
		for h, info := range c.rpts {
			if len(c.rpts) < c.max {
				break
			}
			select {
			case <-info.done:
				delete(c.rpts, h)
			default:
			}
		}
	}
}

// grantCached records a grant just made by oxd. When the RPT's expiry is
// unknown it is read with introspect_rpt in the background: the request
// that got the grant is not delayed (one oxd round trip), and requests
// for the same grant meanwhile wait for the expiry instead of asking oxd
// again.
func (g *umaGuard) grantCached(k grantKey, rpt string) {
	fill := g.cache.add(k, g.now())
	if fill == nil {
		return
	}
	go func() {
		ctx, cancel := g.oxdCtx(context.Background())
		defer cancel()
		exp, ok := g.rptExpiry(ctx, rpt)
		g.cache.filled(k.rpt, fill, exp, ok, g.now())
	}()
}

// rptExpiry introspects an RPT: the earliest of its exp and its
// permissions' exp. ok is false when it is inactive, not yet valid, or
// cannot be introspected.
func (g *umaGuard) rptExpiry(ctx context.Context, rpt string) (exp time.Time, ok bool) {
	in, err := g.client.IntrospectRPT(ctx, oxdclient.IntrospectRPTParams{OxdID: g.oxdID, RPT: oxdclient.Secret(rpt)})
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "oxd: introspect_rpt failed; the grant is not cached", slog.String("error", err.Error()))
		return time.Time{}, false
	}
	if !in.Active {
		return time.Time{}, false
	}
	now := g.now()
	if in.Nbf > 0 && now.Before(time.Unix(in.Nbf, 0)) {
		return time.Time{}, false
	}
	if in.Exp > 0 {
		exp = time.Unix(in.Exp, 0)
	}
	for _, p := range in.Permissions {
		if p.Exp > 0 {
			if pe := time.Unix(p.Exp, 0); exp.IsZero() || pe.Before(exp) {
				exp = pe
			}
		}
	}
	return exp, true
}

// rptOwners remembers which user each RPT obtained in browser mode was
// given to (by hash), to refuse an RPT that oxd hands to a second user.
type rptOwners struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]string
}

func (o *rptOwners) init(max int) {
	o.max = max
	o.m = map[[sha256.Size]byte]string{}
}

// claim records subject as the owner of the RPT; false when another
// subject owns it.
func (o *rptOwners) claim(h [sha256.Size]byte, subject string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.m[h]; ok {
		return s == subject
	}
	if len(o.m) >= o.max {
		for k := range o.m {
			delete(o.m, k)
			if len(o.m) < o.max/2 {
				break
			}
		}
	}
	o.m[h] = subject
	return true
}
