package oxdserver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/internal/jwtclaims"
	"github.com/oxdgo/oxd/oxdclient"
)

// introspection is an RFC 7662 introspection answer.
type introspection map[string]any

func (in introspection) active() bool {
	switch v := in["active"].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func (in introspection) str(k string) string {
	switch v := in[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// scopes is the union of "scope" (string or array) and "scopes" (array).
func (in introspection) scopes() []string {
	var out []string
	add := func(v any) {
		switch x := v.(type) {
		case string:
			for _, s := range strings.Fields(x) {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		case []any:
			for _, y := range x {
				if s, ok := y.(string); ok && s != "" && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	add(in["scope"])
	add(in["scopes"])
	return out
}

// acr is acr_values as a string (oxAuth), or acr.
func (in introspection) acr() string {
	switch v := in["acr_values"].(type) {
	case string:
		return v
	case []any:
		var parts []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	}
	return in.str("acr")
}

// introspect asks the OP about token, authenticating as site with the
// site's token_endpoint_auth_method when the OP accepts it at its
// introspection endpoint (introspection_endpoint_auth_methods_supported;
// an OP that does not list them is tried), else (or when that is refused
// and the OP did not list its methods) with the site's PAT as a bearer
// token, as Gluu's oxAuth expects.
func (e *Engine) introspect(ctx context.Context, site *Site, disc *oidcConfig, endpoint, token string) (introspection, error) {
	if !absURL(endpoint) {
		return nil, oxdErr(oxdclient.CodeNoConnectDiscoveryResponse, descNoDiscovery+" (no introspection_endpoint)")
	}
	form := url.Values{"token": {token}}
	methods := disc.IntrospectionEndpointAuthMethodsSupported
	creds := e.creds(site, disc, disc.TokenEndpoint)
	direct := creds.Validate() == nil
	if direct && methods != nil {
		direct = clientauth.CheckSupported(creds.Method, methods) == nil
	}
	if direct {
		var in introspection
		err := e.sendJSON(ctx, opRequest{endpoint: "introspection", method: http.MethodPost, url: endpoint, form: form, auth: creds}, &in)
		var se *opStatusError
		if err == nil || methods != nil || !errors.As(err, &se) || (se.status != http.StatusUnauthorized && se.status != http.StatusForbidden) {
			return in, err
		}
	}
	if !direct && creds.Method == clientauth.MethodNone {
		// A public client has no PAT either (client_credentials needs a
		// confidential client).
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "Client authentication: a public client (token_endpoint_auth_method none) cannot authenticate at the OP's introspection endpoint, which lists "+
			quoteMethods(methods)+" in introspection_endpoint_auth_methods_supported; register the site with a confidential client to introspect tokens.")
	}
	var in introspection
	err := e.withPAT(ctx, site, func(pat string) error {
		in = nil
		return e.sendJSON(ctx, opRequest{endpoint: "introspection", method: http.MethodPost, url: endpoint, form: form, bearer: pat}, &in)
	})
	return in, err
}

// checkProtection enforces the protection_access_token of reference §4 for
// the command's site: the token must belong to the site's setup client
// (for a setup site: to that setup client itself). Unlike 3.1.4 there is no
// exception for update_site on a setup site, and get_rp is checked too.
func (e *Engine) checkProtection(ctx context.Context, c *call) error {
	site := c.site
	if c.token == "" {
		return oxdErr(oxdclient.CodeBlankProtectionAccessToken, descBlankPAT)
	}
	setup, want := site, site.ClientID
	if !site.IsSetupClient {
		if site.SetupClientID == "" || site.SetupOxdID == "" {
			return oxdErr(oxdclient.CodeNoSetupClientForOxdID, descNoSetupClient)
		}
		s, err := e.store.GetSite(ctx, site.SetupOxdID)
		if errors.Is(err, ErrNotFound) {
			return oxdErr(oxdclient.CodeNoSetupClientForOxdID, descNoSetupClient)
		}
		if err != nil {
			return fmt.Errorf("load setup site: %w", err)
		}
		setup, want = s, site.SetupClientID
	}
	clientID, err := e.validateProtectionToken(ctx, setup, c.token)
	if err != nil {
		return err
	}
	if clientID != want || setup.ClientID != want {
		return oxdErr(oxdclient.CodeInvalidProtectionAccessToken, descInvalidPAT)
	}
	return nil
}

// tenantOf returns the setup site whose client the protection token
// belongs to. The token is shown only to the OP named by the caller
// (issuer, from op_host and op_discovery_path), introspected with the
// first setup site of that OP: trying every OP that has setup sites would
// hand the token to OPs that other tenants run. Without an issuer the
// server's only OP is used; with several, the caller must name one. sites
// are the store's sites.
func (e *Engine) tenantOf(ctx context.Context, sites []*Site, token, issuer string) (*Site, error) {
	if token == "" {
		return nil, oxdErr(oxdclient.CodeBlankProtectionAccessToken, descBlankPAT)
	}
	byOP := map[string][]*Site{}
	var order []string
	for _, s := range sites {
		if !s.IsSetupClient {
			continue
		}
		k := discoveryIssuer(s.OPHost, s.OPDiscoveryPath)
		if byOP[k] == nil {
			order = append(order, k)
		}
		byOP[k] = append(byOP[k], s)
	}
	if issuer != "" {
		if byOP[issuer] == nil {
			return nil, oxdErr(oxdclient.CodeInvalidProtectionAccessToken, descInvalidPAT)
		}
		order = []string{issuer}
	} else if len(order) > 1 {
		return nil, badRequest("get_rp with list needs op_host (the OP of the caller's setup client) when the server serves several OPs.")
	}
	var firstErr error
	for _, k := range order {
		setups := byOP[k]
		clientID, err := e.validateProtectionToken(ctx, setups[0], token)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, s := range setups {
			if s.ClientID == clientID {
				return s, nil
			}
		}
	}
	var oe *oxdclient.Error
	if errors.As(firstErr, &oe) && len(order) == 1 {
		return nil, firstErr
	}
	return nil, oxdErr(oxdclient.CodeInvalidProtectionAccessToken, descInvalidPAT)
}

// validateProtectionToken checks token with the credentials of setup (see
// introspectProtectionToken) and returns the token's client_id. A positive
// answer is cached (Config.ProtectionCacheTTL): the cache key is the SHA-256
// of the token together with the setup site, its client and its OP, so an
// answer obtained for one tenant never serves another, and concurrent
// checks of one token for one setup site share one introspection.
func (e *Engine) validateProtectionToken(ctx context.Context, setup *Site, token string) (string, error) {
	ttl, size := e.protCacheLimits()
	if ttl <= 0 || size <= 0 {
		clientID, _, err := e.checkAtOP(ctx, setup, token)
		e.tel.protectionChecked(ctx, false, err)
		return clientID, err
	}
	key := protKey(setup, token)
	if clientID, ok := e.prot.get(key, e.now()); ok {
		e.tel.protectionChecked(ctx, true, nil)
		return clientID, nil
	}
	ch := e.flight.DoChan("prot "+hex.EncodeToString(key[:]), func() (any, error) {
		// The introspection outlives a caller that gives up, so that the
		// others waiting on it are not failed by that caller's deadline.
		// Each request to the OP is bounded by OPTimeout; this bounds the
		// whole check (discovery, introspection, PAT, introspection again).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*e.cfg.OPTimeout)
		defer cancel()
		now := e.now()
		clientID, exp, err := e.checkAtOP(ctx, setup, token)
		if err != nil {
			return nil, err
		}
		until := now.Add(ttl)
		if end := exp.Add(-protCacheMargin); !exp.IsZero() && end.Before(until) {
			until = end
		}
		if until.After(now) {
			e.prot.put(key, protEntry{oxdID: setup.OxdID, clientID: clientID}, until, size)
		}
		return clientID, nil
	})
	select {
	case <-ctx.Done():
		e.tel.protectionChecked(ctx, false, ctx.Err())
		return "", ctx.Err()
	case res := <-ch:
		e.tel.protectionChecked(ctx, false, res.Err)
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	}
}

// checkAtOP is introspectProtectionToken within the bounds of
// e.protChecks, of which the checks with one setup site's credentials
// (made-up tokens aimed at one tenant) take at most
// protectionChecksPerSetup, running or waiting.
func (e *Engine) checkAtOP(ctx context.Context, setup *Site, token string) (string, time.Time, error) {
	give, ok := e.protShares.take(setup.OxdID, protectionChecksPerSetup)
	if !ok {
		return "", time.Time{}, oxdErr(oxdclient.CodeInternalError, descProtectionChecksBusy)
	}
	defer give()
	leave, err := e.protChecks.enter(ctx)
	if errors.Is(err, errBusy) {
		return "", time.Time{}, oxdErr(oxdclient.CodeInternalError, descProtectionChecksBusy)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	defer leave()
	return e.introspectProtectionToken(ctx, setup, token)
}

// introspectProtectionToken introspects token with the credentials of setup
// and checks it is active, not past its exp and has the oxd scope. It
// returns the token's client_id and its exp (zero when the OP gave none).
func (e *Engine) introspectProtectionToken(ctx context.Context, setup *Site, token string) (string, time.Time, error) {
	disc, err := e.oidc(ctx, setup.OPHost, setup.OPDiscoveryPath)
	if err != nil {
		return "", time.Time{}, err
	}
	in, err := e.introspect(ctx, setup, disc, disc.IntrospectionEndpoint, token)
	if err != nil {
		return "", time.Time{}, err
	}
	if !in.active() {
		return "", time.Time{}, oxdErr(oxdclient.CodeInactiveProtectionAccessToken, descInactivePAT)
	}
	exp, hasExp := jwtclaims.NumericDate(in["exp"])
	if hasExp && !e.now().Before(exp) {
		return "", time.Time{}, oxdErr(oxdclient.CodeInactiveProtectionAccessToken, descInactivePAT)
	}
	if !hasExp {
		exp = time.Time{}
	}
	clientID := strings.TrimSpace(in.str("client_id"))
	if clientID == "" {
		return "", time.Time{}, oxdErr(oxdclient.CodeInvalidIntrospectionResponse, descNoClientIDIntro)
	}
	if !slices.Contains(in.scopes(), "oxd") {
		return "", time.Time{}, oxdErr(oxdclient.CodeProtectionAccessTokenInsufficientScope, descInsufficientScope)
	}
	return clientID, exp, nil
}

// Defaults of the protection token cache (Config.ProtectionCacheTTL and
// Config.ProtectionCacheSize).
const (
	DefaultProtectionCacheTTL  = time.Minute
	DefaultProtectionCacheSize = 10000
)

// Bounds of the protection token checks not answered from the cache: each
// costs requests to the OP (introspection, maybe discovery and a PAT), and
// any caller who knows an oxd_id can send made-up tokens.
const (
	protectionChecksInFlight = 8
	protectionChecksWaiting  = 256
	// protectionChecksPerSetup bounds the checks, running or waiting,
	// with the credentials of one setup site: a flood aimed at one
	// tenant (or at get_rp's list) leaves the others most of the bounds.
	protectionChecksPerSetup = 32
)

const descProtectionChecksBusy = "Too many protection access token checks are in progress: try again later."

// protCacheMargin: a cached protection token answer ends this long before
// the token's exp.
const protCacheMargin = 5 * time.Second

func (e *Engine) protCacheLimits() (time.Duration, int) {
	ttl, size := e.cfg.ProtectionCacheTTL, e.cfg.ProtectionCacheSize
	if ttl == 0 {
		ttl = DefaultProtectionCacheTTL
	}
	if size == 0 {
		size = DefaultProtectionCacheSize
	}
	return ttl, size
}

// protKey is the cache key of a protection token checked with the
// credentials of setup: SHA-256 over the setup site's oxd_id, its
// client_id, its OP and the token. The token itself is kept nowhere.
func protKey(setup *Site, token string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{setup.OxdID, setup.ClientID, discoveryIssuer(setup.OPHost, setup.OPDiscoveryPath), token} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// protEntry is a positive protection token check: the token is active, has
// the oxd scope and belongs to clientID, as introspected with the
// credentials of the setup site oxdID.
type protEntry struct {
	oxdID    string
	clientID string
}

// protCache holds positive protection token checks, least recently used
// evicted first, by protKey.
type protCache struct {
	c ttlCache[[sha256.Size]byte, protEntry]
}

func (c *protCache) get(key [sha256.Size]byte, now time.Time) (string, bool) {
	p, ok := c.c.get(key, now)
	return p.clientID, ok
}

func (c *protCache) put(key [sha256.Size]byte, p protEntry, until time.Time, size int) {
	c.c.put(key, p, until, size)
}

// forget drops the entries checked with the credentials of the setup site
// oxdID.
func (c *protCache) forget(oxdID string) {
	c.c.deleteFunc(func(_ [sha256.Size]byte, p protEntry) bool { return p.oxdID == oxdID })
}

// len is the number of cached entries.
func (c *protCache) len() int { return c.c.len() }

// patEntry is a cached protection API token (UMA PAT) of one site. PATs
// are kept in memory only.
type patEntry struct {
	token string
	exp   time.Time
}

// patMargin: a PAT is renewed this long before it expires.
const patMargin = 10 * time.Second

func patKey(site *Site) string { return site.OxdID + "\x00" + site.ClientID }

// pat returns the site's PAT (client_credentials, scope uma_protection),
// from the cache unless force.
func (e *Engine) pat(ctx context.Context, site *Site, force bool) (string, error) {
	key := patKey(site)
	if !force {
		e.mu.Lock()
		p := e.pats[key]
		e.mu.Unlock()
		if p != nil && e.now().Before(p.exp) {
			return p.token, nil
		}
	}
	ch := e.flight.DoChan("pat "+key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
		if err != nil {
			return nil, err
		}
		tok, err := e.tokenRequest(ctx, disc.TokenEndpoint, e.creds(site, disc, disc.TokenEndpoint), url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}})
		if err != nil {
			return nil, err
		}
		if tok.AccessToken == "" {
			return nil, &opCallError{endpoint: "token", what: whatInvalid, err: errors.New("no access_token in the PAT answer")}
		}
		exp := e.now().Add(5 * time.Minute)
		if n, ok := tok.expiresIn(); ok && n > 0 {
			life := time.Duration(n) * time.Second
			exp = e.now().Add(life - min(patMargin, life/2))
		}
		e.mu.Lock()
		e.pats[key] = &patEntry{token: tok.AccessToken, exp: exp}
		e.mu.Unlock()
		return tok.AccessToken, nil
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	}
}

// forgetPATs drops the cached PATs of a site, and the protection token
// checks made with its credentials.
func (e *Engine) forgetPATs(oxdID string) {
	e.prot.forget(oxdID)
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.pats {
		if strings.HasPrefix(k, oxdID+"\x00") {
			delete(e.pats, k)
		}
	}
}

// withPAT runs fn with the site's PAT; when the AS refuses it (400, 401 or
// 403, as oxd retries), fn runs once more with a fresh PAT.
func (e *Engine) withPAT(ctx context.Context, site *Site, fn func(pat string) error) error {
	pat, err := e.pat(ctx, site, false)
	if err != nil {
		return err
	}
	err = fn(pat)
	var se *opStatusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.status != http.StatusUnauthorized && se.status != http.StatusForbidden && se.status != http.StatusBadRequest {
		return err
	}
	e.mu.Lock()
	if p := e.pats[patKey(site)]; p != nil && p.token == pat {
		delete(e.pats, patKey(site))
	}
	e.mu.Unlock()
	fresh, perr := e.pat(ctx, site, true)
	if perr != nil {
		return err
	}
	return fn(fresh)
}

// quoteMethods renders an OP's method list for an error (bounded: the list
// is the OP's input).
func quoteMethods(l []string) string { return clientauth.QuoteList(l, 8, 32) }
