package oxd

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
)

// umaGuard is the UMA state of one Auth: declarations, settings, the
// resolved issuer, the grant cache and the flights. New creates it; the
// Auth is passed to its methods.
type umaGuard struct {
	settings atomic.Pointer[umaSettings] // nil: defaults
	issuer   atomic.Pointer[string]

	mu    sync.Mutex
	paths map[string]*umaPath // by template
	order []string            // templates in declaration order
	errs  []error             // invalid declarations

	cache  grantCache
	flight singleflight.Group
	owners rptOwners
}

// uma returns a's guard.
func (a *Auth) uma() *umaGuard { return a.umaG }

func newUMAGuard() *umaGuard {
	g := &umaGuard{paths: map[string]*umaPath{}}
	g.cache.init(DefaultUMAMaxGrantTTL, DefaultUMAMaxGrants)
	g.owners.init(DefaultUMAMaxGrants)
	return g
}

// settingsOrDefault returns the settings, or the defaults for a.
func (g *umaGuard) settingsOrDefault(a *Auth) *umaSettings {
	if s := g.settings.Load(); s != nil {
		return s
	}
	s, err := a.umaSettings(UMAConfig{})
	if err != nil {
		// Only a Realm rejected by New could fail; New refuses those.
		s = &umaSettings{realm: "oxd", maxTTL: DefaultUMAMaxGrantTTL, maxGrants: DefaultUMAMaxGrants}
	}
	g.settings.CompareAndSwap(nil, s)
	return g.settings.Load()
}

// browserMode reports whether browser RP mode applies to a condition.
func (g *umaGuard) browserMode(c *umaCond) bool {
	if c.browser {
		return true
	}
	s := g.settings.Load()
	return s != nil && s.browser
}
