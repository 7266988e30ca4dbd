package oxdserver

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
)

// ErrNotFound is returned by a [Store] for an unknown site or a missing,
// expired or already taken value.
var ErrNotFound = errors.New("oxdserver: not found")

// Store keeps the engine's state: sites (registered clients) and one-time
// values with a time to live (login states with their nonce and PKCE
// verifier, claims-gathering states).
//
// Secrets are kept at rest in plain form: a site holds its client secret,
// the private keys of a private_key_jwt client and its registration access
// token. Protect the store (file permissions,
// Redis ACLs) accordingly. Tokens (access, refresh, id tokens, RPTs, PATs)
// are never stored.
//
// Implementations must be safe for concurrent use. The engine serialises
// its own read-modify-write of one site within a process; several engines
// sharing a store (replicas) may race on concurrent updates of the same
// site (last write wins), but never on one-time values: TakeValue is atomic.
type Store interface {
	// GetSite returns a copy of the site, or ErrNotFound.
	GetSite(ctx context.Context, oxdID string) (*Site, error)
	// PutSite creates or replaces the site.
	PutSite(ctx context.Context, site *Site) error
	// DeleteSite removes the site; ErrNotFound if there is none.
	DeleteSite(ctx context.Context, oxdID string) error
	// ListSites returns copies of all sites, in no particular order.
	ListSites(ctx context.Context) ([]*Site, error)
	// PutValue stores a one-time value under key for ttl. Stores bound the
	// number of pending values (see DefaultMaxValues): when a bound is
	// reached the oldest value of the group (the key up to its first '/':
	// the engine's keys are "<kind>:<oxd_id>/<random>"), or at the store's
	// bound the oldest value of the largest group, is evicted first.
	PutValue(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// TakeValue returns and deletes the value atomically: of several
	// concurrent callers (in any process sharing the store) at most one
	// gets it. ErrNotFound when missing or expired.
	TakeValue(ctx context.Context, key string) ([]byte, error)
	// Close releases the store's resources.
	Close() error
}

// Site is what the engine stores for one oxd_id: an OP client and its
// settings. The JSON names are those of oxd-server 3.1.4's stored Rp, as
// returned by get_rp.
//
// Site holds the client secret, the private keys of a private_key_jwt
// client and the registration access token in plain form; it redacts itself when printed or logged.
type Site struct {
	OxdID                       string   `json:"oxd_id"`
	OPHost                      string   `json:"op_host"`
	OPDiscoveryPath             string   `json:"op_discovery_path,omitempty"`
	AuthorizationRedirectURI    string   `json:"authorization_redirect_uri,omitempty"`
	PostLogoutRedirectURI       string   `json:"logout_redirect_uri,omitempty"`
	ApplicationType             string   `json:"application_type,omitempty"`
	RedirectURIs                []string `json:"redirect_uris,omitempty"`
	ClaimsRedirectURIs          []string `json:"claims_redirect_uri,omitempty"`
	ResponseTypes               []string `json:"response_types,omitempty"`
	FrontChannelLogoutURIs      []string `json:"front_channel_logout_uri,omitempty"`
	BackChannelLogoutURI        string   `json:"back_channel_logout_uri,omitempty"`
	ClientID                    string   `json:"client_id"`
	ClientSecret                string   `json:"client_secret,omitempty"`
	RegistrationAccessToken     string   `json:"client_registration_access_token,omitempty"`
	RegistrationClientURI       string   `json:"client_registration_client_uri,omitempty"`
	ClientIDIssuedAt            int64    `json:"client_id_issued_at,omitempty"`      // epoch seconds
	ClientSecretExpiresAt       int64    `json:"client_secret_expires_at,omitempty"` // epoch seconds, 0 = never
	ClientName                  string   `json:"client_name,omitempty"`
	SectorIdentifierURI         string   `json:"sector_identifier_uri,omitempty"`
	ClientJWKSURI               string   `json:"client_jwks_uri,omitempty"`
	TokenEndpointAuthSigningAlg string   `json:"token_endpoint_auth_signing_alg,omitempty"`
	TokenEndpointAuthMethod     string   `json:"token_endpoint_auth_method,omitempty"`
	// ClientKeys are the private keys of a private_key_jwt client (the
	// storage form holds the private keys, like ClientSecret; get_rp shows
	// the public keys only).
	ClientKeys               *clientauth.KeySet `json:"client_keys,omitempty"`
	ClientRequestURIs        []string           `json:"client_request_uris,omitempty"`
	IsSetupClient            bool               `json:"is_setup_client,omitempty"`
	SetupOxdID               string             `json:"setup_oxd_id,omitempty"`
	SetupClientID            string             `json:"setup_client_id,omitempty"`
	Scope                    []string           `json:"scope,omitempty"`
	UILocales                []string           `json:"ui_locales,omitempty"`
	ClaimsLocales            []string           `json:"claims_locales,omitempty"`
	AcrValues                []string           `json:"acr_values,omitempty"`
	GrantTypes               []string           `json:"grant_types,omitempty"`
	Contacts                 []string           `json:"contacts,omitempty"`
	TrustedClient            bool               `json:"trusted_client,omitempty"`
	UMAResources             []UMAResource      `json:"uma_protected_resources,omitempty"`
	OxdRPProgrammingLanguage string             `json:"oxd_rp_programming_language,omitempty"`
	// Preregistered is true for a client registered outside oxd (client_id
	// and client_secret given to register_site).
	Preregistered bool `json:"preregistered,omitempty"`
}

// UMAResource is one protected (path, condition) of a site, registered as
// one resource at the AS (reference §6.1).
type UMAResource struct {
	ID               string            `json:"id"`
	Path             string            `json:"path"`
	HTTPMethods      []string          `json:"http_methods"`
	Scopes           []string          `json:"scopes"`
	ScopeExpressions []json.RawMessage `json:"scope_expressions"`
	TicketScopes     []string          `json:"ticketScopes"`
}

// Clone returns a deep copy of s: no slice, nested resource, key set or
// raw JSON value is shared with s. A Store that keeps decoded sites (as
// redisstore does to save decoding an unchanged site) hands out clones, so
// that a caller changing its copy changes nothing else.
func (s *Site) Clone() *Site { return s.clone() }

// clone returns a deep copy of s: no slice, nested resource or raw JSON
// value is shared with s. Keep it in step with the fields of Site and
// UMAResource (TestSiteCloneCoversEveryField fails when a field is missed).
func (s *Site) clone() *Site {
	c := *s
	c.RedirectURIs = slices.Clone(s.RedirectURIs)
	c.ClaimsRedirectURIs = slices.Clone(s.ClaimsRedirectURIs)
	c.ResponseTypes = slices.Clone(s.ResponseTypes)
	c.FrontChannelLogoutURIs = slices.Clone(s.FrontChannelLogoutURIs)
	c.ClientRequestURIs = slices.Clone(s.ClientRequestURIs)
	c.Scope = slices.Clone(s.Scope)
	c.UILocales = slices.Clone(s.UILocales)
	c.ClaimsLocales = slices.Clone(s.ClaimsLocales)
	c.AcrValues = slices.Clone(s.AcrValues)
	c.GrantTypes = slices.Clone(s.GrantTypes)
	c.Contacts = slices.Clone(s.Contacts)
	c.ClientKeys = s.ClientKeys.Clone()
	if s.UMAResources != nil {
		c.UMAResources = make([]UMAResource, len(s.UMAResources))
		for i := range s.UMAResources {
			c.UMAResources[i] = s.UMAResources[i].clone()
		}
	}
	return &c
}

// clone returns a deep copy of r.
func (r UMAResource) clone() UMAResource {
	c := r
	c.HTTPMethods = slices.Clone(r.HTTPMethods)
	c.Scopes = slices.Clone(r.Scopes)
	c.TicketScopes = slices.Clone(r.TicketScopes)
	if r.ScopeExpressions != nil {
		c.ScopeExpressions = make([]json.RawMessage, len(r.ScopeExpressions))
		for i, x := range r.ScopeExpressions {
			c.ScopeExpressions[i] = slices.Clone(x)
		}
	}
	return c
}

// String never reveals the site's secrets.
func (s *Site) String() string { return fmt.Sprintf("oxdserver.Site(%s)", s.OxdID) }

// GoString never reveals the site's secrets.
func (s *Site) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without secrets.
func (s *Site) LogValue() slog.Value {
	return slog.GroupValue(slog.String("oxd_id", s.OxdID), slog.String("op_host", s.OPHost))
}

// Bounds on pending one-time values (login and claims-gathering states)
// of every store, the same in the memory, file and Redis stores: at most
// DefaultMaxValues in the store and DefaultMaxValuesPerGroup per group (one
// kind of value of one site). A pending login is one value, its state,
// with the nonce and PKCE verifier in a 61-byte record; it holds about 270
// bytes in the memory and file stores and about 450 bytes in Redis (key,
// record, index entry; TestMemoryStorePendingLoginBytes,
// TestRedisStorePendingLoginBytes), so one site's pending logins hold at
// most about 2.7 MB in memory or 4.5 MB in Redis, and the store's at most
// about 27 MB or 45 MB, whatever callers do. When a group's bound is reached its oldest
// value is evicted; when the store's bound is reached, the oldest value of
// the largest group, so one tenant's flood evicts its own pending logins
// before another tenant's. An evicted login fails with "state not
// registered" (the middleware starts it again); values are all pending
// logins, never signed-in sessions, which the engine does not keep.
const (
	DefaultMaxValues         = 100_000
	DefaultMaxValuesPerGroup = 10_000
)

// valueGroup is the group of a one-time value's key: the key up to its
// first '/', or "" (no group).
func valueGroup(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// MemoryStore is the default [Store]: everything in memory, lost on
// restart, not shared between processes. Pending values are bounded by
// MaxValues and MaxValuesPerGroup.
type MemoryStore struct {
	// MaxValues and MaxValuesPerGroup bound the pending one-time values
	// (defaults DefaultMaxValues, DefaultMaxValuesPerGroup); set them
	// before first use.
	MaxValues, MaxValuesPerGroup int

	mu sync.Mutex
	// sites holds each site as decoded from its JSON encoding (so that a
	// site reads back exactly as it would from the encoded form); it is
	// never handed out: GetSite and ListSites return deep copies.
	sites  map[string]*Site
	values map[string]*memValue
	order  list.List             // of *memValue, oldest first
	groups map[string]*list.List // of *memValue by group, oldest first
	now    func() time.Time
	sweep  int // PutValue calls until the next sweep of expired values
}

type memValue struct {
	key, group string
	v          []byte
	exp        time.Time
	elem, gel  *list.Element
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{sites: map[string]*Site{}, values: map[string]*memValue{}, groups: map[string]*list.List{}, now: time.Now}
}

func (m *MemoryStore) removeLocked(v *memValue) {
	delete(m.values, v.key)
	m.order.Remove(v.elem)
	if g := m.groups[v.group]; g != nil {
		g.Remove(v.gel)
		if g.Len() == 0 {
			delete(m.groups, v.group)
		}
	}
}

func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// GetSite implements Store.
func (m *MemoryStore) GetSite(_ context.Context, oxdID string) (*Site, error) {
	m.mu.Lock()
	s, ok := m.sites[oxdID]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	return s.clone(), nil
}

// PutSite implements Store.
func (m *MemoryStore) PutSite(_ context.Context, site *Site) error {
	if site == nil || site.OxdID == "" {
		return errors.New("oxdserver: site without oxd_id")
	}
	// The JSON round trip keeps what the store reads back identical to what
	// a store of encoded sites would (empty lists dropped, raw JSON
	// compacted, invalid UTF-8 replaced) and detaches it from the caller's
	// site.
	b, err := json.Marshal(site)
	if err != nil {
		return err
	}
	var s Site
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("oxdserver: site does not decode: %w", err)
	}
	m.mu.Lock()
	m.sites[site.OxdID] = &s
	m.mu.Unlock()
	return nil
}

// DeleteSite implements Store.
func (m *MemoryStore) DeleteSite(_ context.Context, oxdID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sites[oxdID]; !ok {
		return ErrNotFound
	}
	delete(m.sites, oxdID)
	return nil
}

// ListSites implements Store.
func (m *MemoryStore) ListSites(_ context.Context) ([]*Site, error) {
	m.mu.Lock()
	out := make([]*Site, 0, len(m.sites))
	for _, s := range m.sites {
		out = append(out, s.clone())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Site) int {
		switch {
		case a.OxdID < b.OxdID:
			return -1
		case a.OxdID > b.OxdID:
			return 1
		}
		return 0
	})
	return out, nil
}

// PutValue implements Store.
func (m *MemoryStore) PutValue(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("oxdserver: value without a time to live")
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep--
	if m.sweep <= 0 {
		for _, v := range m.values {
			if !now.Before(v.exp) {
				m.removeLocked(v)
			}
		}
		m.sweep = max(1024, len(m.values))
	}
	if old := m.values[key]; old != nil {
		m.removeLocked(old)
	}
	group := valueGroup(key)
	g := m.groups[group]
	if g == nil {
		g = list.New()
		m.groups[group] = g
	}
	// Oldest first: of the group, then of the store.
	for g.Len() >= limitOr(m.MaxValuesPerGroup, DefaultMaxValuesPerGroup) {
		m.removeLocked(g.Front().Value.(*memValue))
	}
	for len(m.values) >= limitOr(m.MaxValues, DefaultMaxValues) {
		m.removeLocked(m.largestGroupLocked().Front().Value.(*memValue))
	}
	if m.groups[group] == nil {
		m.groups[group] = g
	}
	v := &memValue{key: key, group: group, v: slices.Clone(value), exp: now.Add(ttl)}
	v.elem = m.order.PushBack(v)
	v.gel = g.PushBack(v)
	m.values[key] = v
	return nil
}

// largestGroupLocked returns the group holding the most values (of equally
// large groups, the one whose oldest value expires first). At the store's
// global bound the oldest value of that group is evicted, not the oldest
// of the store: a tenant that floods the store with pending logins evicts
// its own first, and another tenant's few pending logins survive until
// every group is as large as theirs. The scan is over the groups (one per
// kind and site), not over the values.
func (m *MemoryStore) largestGroupLocked() *list.List {
	var best *list.List
	for _, g := range m.groups {
		switch {
		case g.Len() == 0:
		case best == nil, g.Len() > best.Len():
			best = g
		case g.Len() == best.Len() && g.Front().Value.(*memValue).exp.Before(best.Front().Value.(*memValue).exp):
			best = g // of equally large groups, the one with the oldest value
		}
	}
	return best
}

// TakeValue implements Store.
func (m *MemoryStore) TakeValue(_ context.Context, key string) ([]byte, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[key]
	if !ok {
		return nil, ErrNotFound
	}
	m.removeLocked(v)
	if !now.Before(v.exp) {
		return nil, ErrNotFound
	}
	return v.v, nil
}

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }

// CountSites implements StoreCounter.
func (m *MemoryStore) CountSites(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.sites)), nil
}

// CountValues implements StoreCounter: the pending values not yet expired.
func (m *MemoryStore) CountValues(context.Context) (int64, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, v := range m.values {
		if now.Before(v.exp) {
			n++
		}
	}
	return n, nil
}
