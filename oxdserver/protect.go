package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

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

// introspect asks the OP about token, authenticating as site: with
// client_secret_basic when the OP accepts it (or does not say), else (or
// when basic is refused and the OP did not list its methods) with the
// site's PAT as a bearer token, as Gluu's oxAuth expects.
func (e *Engine) introspect(ctx context.Context, site *Site, disc *oidcConfig, endpoint, token string) (introspection, error) {
	if !absURL(endpoint) {
		return nil, oxdErr(oxdclient.CodeNoConnectDiscoveryResponse, descNoDiscovery+" (no introspection_endpoint)")
	}
	form := url.Values{"token": {token}}
	methods := disc.IntrospectionAuthMethods
	basicOK := site.ClientSecret != "" && supports(methods, "client_secret_basic", true)
	if basicOK {
		var in introspection
		err := e.sendJSON(ctx, opRequest{endpoint: "introspection", method: http.MethodPost, url: endpoint, form: form,
			basic: &clientCreds{site.ClientID, site.ClientSecret}}, &in)
		var se *opStatusError
		if err == nil || methods != nil || !errors.As(err, &se) || (se.status != http.StatusUnauthorized && se.status != http.StatusForbidden) {
			return in, err
		}
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
// server's only OP is used; with several, the caller must name one.
func (e *Engine) tenantOf(ctx context.Context, token, issuer string) (*Site, error) {
	if token == "" {
		return nil, oxdErr(oxdclient.CodeBlankProtectionAccessToken, descBlankPAT)
	}
	sites, err := e.store.ListSites(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
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

// validateProtectionToken introspects token with the credentials of setup
// and checks it is active and has the oxd scope. It returns the token's
// client_id.
func (e *Engine) validateProtectionToken(ctx context.Context, setup *Site, token string) (string, error) {
	disc, err := e.oidc(ctx, setup.OPHost, setup.OPDiscoveryPath)
	if err != nil {
		return "", err
	}
	in, err := e.introspect(ctx, setup, disc, disc.IntrospectionEndpoint, token)
	if err != nil {
		return "", err
	}
	if !in.active() {
		return "", oxdErr(oxdclient.CodeInactiveProtectionAccessToken, descInactivePAT)
	}
	if exp, ok := numericDate(in["exp"]); ok && !e.now().Before(exp) {
		return "", oxdErr(oxdclient.CodeInactiveProtectionAccessToken, descInactivePAT)
	}
	clientID := strings.TrimSpace(in.str("client_id"))
	if clientID == "" {
		return "", oxdErr(oxdclient.CodeInvalidIntrospectionResponse, descNoClientIDIntro)
	}
	if !slices.Contains(in.scopes(), "oxd") {
		return "", oxdErr(oxdclient.CodeProtectionAccessTokenInsufficientScope, descInsufficientScope)
	}
	return clientID, nil
}

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
		tok, err := e.tokenRequest(ctx, disc.TokenEndpoint, site, url.Values{"grant_type": {"client_credentials"}, "scope": {"uma_protection"}})
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

// forgetPATs drops the cached PATs of a site.
func (e *Engine) forgetPATs(oxdID string) {
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
