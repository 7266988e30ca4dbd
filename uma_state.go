package oxd

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"golang.org/x/sync/singleflight"
)

// umaGuard is the UMA state of one Auth: declarations, settings, the
// resolved issuer, the grant cache and the flights. It is kept outside the
// Auth struct, in a table keyed by a weak pointer to the Auth, and holds
// no reference to the Auth itself (the Auth is passed to its methods), so
// an unreachable Auth and its guard are collected together.
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

var umaGuards sync.Map // weak.Pointer[Auth] → *umaGuard

// uma returns a's guard, creating it on first use.
func (a *Auth) uma() *umaGuard {
	k := weak.Make(a)
	if g, ok := umaGuards.Load(k); ok {
		return g.(*umaGuard)
	}
	g := newUMAGuard()
	actual, loaded := umaGuards.LoadOrStore(k, g)
	if !loaded {
		runtime.AddCleanup(a, func(k weak.Pointer[Auth]) { umaGuards.Delete(k) }, k)
	}
	return actual.(*umaGuard)
}

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
