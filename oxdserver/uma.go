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

	"github.com/oxdgo/oxd/internal/jwtclaims"
	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// resourceName is the AS resource name oxd 3.1.4 uses: "[GET, POST] /photo".
func resourceName(methods []string, path string) string {
	return "[" + strings.Join(methods, ", ") + "] " + path
}

// validateProtect applies the checks of reference §6.1 (plus: empty paths,
// conditions without methods and conditions without scopes are
// invalid_uma_request, as the AS would refuse them).
func validateProtect(res []oxdclient.UMAResource) error {
	if len(res) == 0 {
		return oxdErr(oxdclient.CodeInvalidUMARequest, descNoResources)
	}
	methodsByPath := map[string][]string{}
	for _, r := range res {
		if strings.TrimSpace(r.Path) == "" || len(r.Conditions) == 0 {
			return oxdErr(oxdclient.CodeInvalidUMARequest, descNoResources)
		}
		for _, c := range r.Conditions {
			if len(nonBlank(c.HTTPMethods)) == 0 {
				return oxdErr(oxdclient.CodeInvalidUMARequest, descNoResources)
			}
			for _, m := range c.HTTPMethods {
				if slices.Contains(methodsByPath[r.Path], m) {
					return oxdErr(oxdclient.CodeHTTPMethodNotUnique, descMethodNotUnique)
				}
				methodsByPath[r.Path] = append(methodsByPath[r.Path], m)
			}
		}
	}
	for _, r := range res {
		for _, c := range r.Conditions {
			if c.ScopeExpression != nil {
				if scopeexpr.Validate(c.ScopeExpression.Rule, c.ScopeExpression.Data) != nil {
					return oxdErr(oxdclient.CodeInvalidScopeExpression, descBadExpression)
				}
				continue
			}
			if len(nonBlank(c.Scopes)) == 0 {
				return oxdErr(oxdclient.CodeInvalidUMARequest, descNoResources)
			}
		}
	}
	return nil
}

func (e *Engine) umaRSProtect(ctx context.Context, c *call, p *oxdclient.UMARSProtectParams) (any, error) {
	if err := validateProtect(p.Resources); err != nil {
		return nil, err
	}
	unlock := e.lockSite(c.site.OxdID)
	defer unlock()
	site, err := e.store.GetSite(ctx, c.site.OxdID)
	if errors.Is(err, ErrNotFound) {
		return nil, oxdErr(oxdclient.CodeInvalidOxdID, descInvalidOxdID)
	}
	if err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	if len(site.UMAResources) > 0 && !p.Overwrite {
		return nil, oxdErr(oxdclient.CodeUMAProtectionExists, descProtectionExists)
	}
	uma, err := e.uma(ctx, site)
	if err != nil {
		return nil, err
	}
	if !absURL(uma.ResourceRegistrationEndpoint) {
		return nil, oxdErr(oxdclient.CodeNoUMADiscoveryResponse, descNoUMADiscovery+" (no resource_registration_endpoint)")
	}
	if p.Overwrite && len(site.UMAResources) > 0 {
		for _, r := range site.UMAResources {
			if err := e.deleteResource(ctx, site, uma, r.ID); err != nil {
				return nil, err
			}
		}
		site.UMAResources = nil
		if err := e.putSite(ctx, site); err != nil {
			return nil, fmt.Errorf("store site: %w", err)
		}
	}
	var created []UMAResource
	for _, r := range p.Resources {
		for _, cond := range r.Conditions {
			methods := nonBlank(cond.HTTPMethods)
			res := UMAResource{Path: r.Path, HTTPMethods: methods, Scopes: nonBlank(cond.Scopes), ScopeExpressions: []json.RawMessage{}}
			body := map[string]any{"name": resourceName(methods, r.Path)}
			if cond.ScopeExpression != nil {
				expr, _ := feMarshalJSON(cond.ScopeExpression)
				res.ScopeExpressions = []json.RawMessage{expr}
				res.TicketScopes = slices.Clone(cond.ScopeExpression.Data)
				body["resource_scopes"] = cond.ScopeExpression.Data
				body["scope_expression"] = string(expr)
			} else {
				res.TicketScopes = nonBlank(cond.TicketScopes)
				if len(res.TicketScopes) == 0 {
					res.TicketScopes = res.Scopes
				}
				body["resource_scopes"] = res.Scopes
			}
			id, err := e.createResource(ctx, site, uma, body)
			if err != nil {
				for _, done := range created {
					if derr := e.deleteResource(ctx, site, uma, done.ID); derr != nil {
						e.log.Warn("oxdserver: could not delete a resource after a failed uma_rs_protect", "oxd_id", site.OxdID, "error", derr.Error())
					}
				}
				return nil, err
			}
			res.ID = id
			created = append(created, res)
		}
	}
	site.UMAResources = created
	if err := e.putSite(ctx, site); err != nil {
		return nil, fmt.Errorf("store site: %w", err)
	}
	return oxdIDAnswer{OxdID: nstr(site.OxdID)}, nil
}

func (e *Engine) createResource(ctx context.Context, site *Site, uma *umaConfig, body map[string]any) (string, error) {
	var out struct {
		ID  string `json:"_id"`
		ID2 string `json:"id"`
	}
	err := e.withPAT(ctx, site, func(pat string) error {
		return e.sendJSON(ctx, opRequest{endpoint: "resource_registration", method: http.MethodPost,
			url: uma.ResourceRegistrationEndpoint, json: body, bearer: pat}, &out)
	})
	if err != nil {
		return "", err
	}
	id := out.ID
	if id == "" {
		id = out.ID2
	}
	if id == "" {
		return "", &opCallError{endpoint: "resource_registration", what: whatInvalid, err: errors.New("no _id in the answer")}
	}
	return id, nil
}

func (e *Engine) deleteResource(ctx context.Context, site *Site, uma *umaConfig, id string) error {
	u := strings.TrimRight(uma.ResourceRegistrationEndpoint, "/") + "/" + url.PathEscape(id)
	err := e.withPAT(ctx, site, func(pat string) error {
		_, _, err := e.send(ctx, opRequest{endpoint: "resource_registration", method: http.MethodDelete, url: u, bearer: pat})
		var se *opStatusError
		if errors.As(err, &se) && (se.status == http.StatusNotFound || se.status == http.StatusGone) {
			return nil // already gone
		}
		return err
	})
	return err
}

// findResource scans newest first: exact path (case-insensitive) and method
// (case-insensitive), as 3.1.4.
func findResource(site *Site, path, method string) *UMAResource {
	for i := len(site.UMAResources) - 1; i >= 0; i-- {
		r := &site.UMAResources[i]
		if !strings.EqualFold(r.Path, path) {
			continue
		}
		for _, m := range r.HTTPMethods {
			if strings.EqualFold(m, method) {
				return r
			}
		}
	}
	return nil
}

// requiredScopes are the scopes any one of which grants access: the
// resource's scopes, or the data of its first scope expression.
func requiredScopes(r *UMAResource) []string {
	if len(r.Scopes) > 0 {
		return r.Scopes
	}
	for _, raw := range r.ScopeExpressions {
		var x struct {
			Data []string `json:"data"`
		}
		if json.Unmarshal(raw, &x) == nil && len(x.Data) > 0 {
			return x.Data
		}
	}
	return nil
}

func (e *Engine) umaRSCheckAccess(ctx context.Context, c *call, p *oxdclient.UMARSCheckAccessParams) (any, error) {
	site := c.site
	method := strings.TrimSpace(p.HTTPMethod)
	if method == "" {
		return nil, oxdErr(oxdclient.CodeInvalidHTTPMethod, descNoHTTPMethod)
	}
	path := strings.TrimSpace(p.Path)
	if path == "" {
		return nil, oxdErr(oxdclient.CodeInvalidPathParameter, descNoPath)
	}
	res := findResource(site, path, method)
	if res == nil {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, fmt.Sprintf(descNotProtectedFmt, p.Path, p.HTTPMethod))
	}
	uma, err := e.uma(ctx, site)
	if err != nil {
		return nil, err
	}
	if rpt := strings.TrimSpace(p.RPT.Reveal()); rpt != "" {
		granted, err := e.rptGrants(ctx, site, uma, rpt, res)
		if err != nil {
			return nil, err
		}
		if granted {
			return checkAccessAnswer{Access: oxdclient.AccessGranted}, nil
		}
	}
	scopes := res.TicketScopes
	if len(scopes) == 0 {
		scopes = requiredScopes(res)
	}
	ticket, err := e.registerTicket(ctx, site, uma, res.ID, scopes)
	if err != nil {
		return nil, err
	}
	header := `UMA realm="rs",as_uri="` + site.OPHost + `",error="insufficient_scope",ticket="` + ticket + `"`
	return checkAccessAnswer{Access: oxdclient.AccessDenied, WWWAuthenticateHeader: nstr(header), Ticket: nstr(ticket)}, nil
}

// rptGrants introspects the RPT and applies the "any one scope" rule of
// reference §6.2 to the matched resource.
func (e *Engine) rptGrants(ctx context.Context, site *Site, uma *umaConfig, rpt string, res *UMAResource) (bool, error) {
	in, err := e.introspectRPTRaw(ctx, site, uma, rpt)
	if err != nil {
		return false, err
	}
	if !in.active() {
		return false, nil
	}
	if exp, ok := jwtclaims.NumericDate(in["exp"]); ok && !e.now().Before(exp) {
		return false, nil
	}
	need := requiredScopes(res)
	perms, _ := in["permissions"].([]any)
	for _, raw := range perms {
		perm, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		if id, _ := perm["resource_id"].(string); id != res.ID {
			continue
		}
		if exp, ok := jwtclaims.NumericDate(perm["exp"]); ok && !e.now().Before(exp) {
			continue
		}
		scopes, _ := perm["resource_scopes"].([]any)
		for _, s := range scopes {
			if str, ok := s.(string); ok && slices.Contains(need, str) {
				return true, nil
			}
		}
	}
	return false, nil
}

// introspectRPTRaw introspects an RPT at the UMA AS's introspection
// endpoint.
func (e *Engine) introspectRPTRaw(ctx context.Context, site *Site, uma *umaConfig, rpt string) (introspection, error) {
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	endpoint := uma.IntrospectionEndpoint
	if endpoint == "" {
		endpoint = disc.IntrospectionEndpoint
	}
	return e.introspect(ctx, site, disc, endpoint, rpt)
}

// registerTicket asks the AS for a permission ticket (UMA FedAuthz §4).
func (e *Engine) registerTicket(ctx context.Context, site *Site, uma *umaConfig, resourceID string, scopes []string) (string, error) {
	if !absURL(uma.PermissionEndpoint) {
		return "", oxdErr(oxdclient.CodeNoUMADiscoveryResponse, descNoUMADiscovery+" (no permission_endpoint)")
	}
	if scopes == nil {
		scopes = []string{}
	}
	body := []map[string]any{{"resource_id": resourceID, "resource_scopes": scopes}}
	var out struct {
		Ticket string `json:"ticket"`
	}
	err := e.withPAT(ctx, site, func(pat string) error {
		return e.sendJSON(ctx, opRequest{endpoint: "permission", method: http.MethodPost, url: uma.PermissionEndpoint, json: body, bearer: pat}, &out)
	})
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(out.Ticket) == "" {
		return "", &opCallError{endpoint: "permission", what: whatInvalid, err: errors.New("no ticket in the answer")}
	}
	return out.Ticket, nil
}

func (e *Engine) introspectRPT(ctx context.Context, c *call, p *oxdclient.IntrospectRPTParams) (any, error) {
	site := c.site
	rpt := strings.TrimSpace(p.RPT.Reveal())
	if rpt == "" {
		return nil, oxdErr(oxdclient.CodeInvalidRPTParameter, descNoRPT)
	}
	uma, err := e.uma(ctx, site)
	if err != nil {
		return nil, err
	}
	in, err := e.introspectRPTRaw(ctx, site, uma, rpt)
	if err != nil {
		return nil, err
	}
	a := introspectRPTAnswer{
		Active:      in.active(),
		Exp:         rawOrNull(in["exp"]),
		Iat:         rawOrNull(in["iat"]),
		Nbf:         rawOrNull(in["nbf"]),
		Permissions: []rptPermission{},
		ClientID:    nstr(in.str("client_id")),
		Sub:         nstr(in.str("sub")),
		Aud:         rawOrNull(in["aud"]),
		Iss:         nstr(in.str("iss")),
		JTI:         nstr(in.str("jti")),
	}
	perms, _ := in["permissions"].([]any)
	for _, raw := range perms {
		perm, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		rp := rptPermission{Exp: rawOrNull(perm["exp"]), ResourceScopes: []string{}}
		rp.ResourceID, _ = perm["resource_id"].(string)
		scopes, _ := perm["resource_scopes"].([]any)
		for _, s := range scopes {
			if str, ok := s.(string); ok {
				rp.ResourceScopes = append(rp.ResourceScopes, str)
			}
		}
		a.Permissions = append(a.Permissions, rp)
	}
	return a, nil
}

func (e *Engine) umaRPGetRPT(ctx context.Context, c *call, p *oxdclient.UMARPGetRPTParams) (any, error) {
	site := c.site
	ticket := strings.TrimSpace(p.Ticket)
	if ticket == "" {
		return nil, oxdErr(oxdclient.CodeInvalidTicketParameter, descNoTicket)
	}
	uma, err := e.uma(ctx, site)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {grantUMATicket}, "ticket": {ticket}}
	if v := strings.TrimSpace(p.ClaimToken.Reveal()); v != "" {
		form.Set("claim_token", v)
	}
	if v := strings.TrimSpace(p.ClaimTokenFormat); v != "" {
		form.Set("claim_token_format", v)
	}
	if v := strings.TrimSpace(p.PCT.Reveal()); v != "" {
		form.Set("pct", v)
	}
	if v := strings.TrimSpace(p.RPT.Reveal()); v != "" {
		form.Set("rpt", v)
	}
	if scope := nonBlank(p.Scope); len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	// The UMA AS's token endpoint is the audience of client assertions.
	creds := e.creds(site, nil, uma.TokenEndpoint)
	creds.Issuer = uma.Issuer
	tok, err := e.tokenRequest(ctx, uma.TokenEndpoint, creds, form)
	if err != nil {
		var se *opStatusError
		if errors.As(err, &se) {
			if ni := needInfo(se.body); ni != nil {
				return nil, &oxdclient.Error{Code: oxdclient.CodeNeedInfo, Description: descNeedInfo, Details: ni}
			}
		}
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, oxdErr(oxdclient.CodeInternalError, descFailedRPT)
	}
	return rptAnswer{AccessToken: nstr(tok.AccessToken), TokenType: nstr(tok.TokenType), PCT: nstr(tok.PCT), Updated: tok.Upgraded}, nil
}

// needInfo returns the details of a need_info answer of the AS (UMA Grant
// §3.3.6) with the keys of oxd's UmaNeedInfoResponse, or nil.
func needInfo(body []byte) json.RawMessage {
	var v struct {
		Error          string          `json:"error"`
		Ticket         string          `json:"ticket"`
		RequiredClaims json.RawMessage `json:"required_claims"`
		RedirectUser   string          `json:"redirect_user"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error != oxdclient.CodeNeedInfo {
		return nil
	}
	claims := v.RequiredClaims
	if len(claims) == 0 {
		claims = json.RawMessage("null")
	}
	out, err := feMarshalJSON(struct {
		Error          string          `json:"error"`
		RequiredClaims json.RawMessage `json:"required_claims"`
		RedirectUser   nstr            `json:"redirect_user"`
		Ticket         nstr            `json:"ticket"`
	}{v.Error, claims, nstr(v.RedirectUser), nstr(v.Ticket)})
	if err != nil {
		return nil
	}
	return out
}

func (e *Engine) umaClaimsGatheringURL(ctx context.Context, c *call, p *oxdclient.UMARPGetClaimsGatheringURLParams) (any, error) {
	site := c.site
	ticket := strings.TrimSpace(p.Ticket)
	if ticket == "" {
		return nil, oxdErr(oxdclient.CodeInvalidTicketParameter, descNoTicket)
	}
	redirect := strings.TrimSpace(p.ClaimsRedirectURI)
	if redirect == "" || !validRedirect(redirect) {
		return nil, oxdErr(oxdclient.CodeInvalidClaimsRedirectURIParameter, descNoClaimsRedirect)
	}
	uma, err := e.uma(ctx, site)
	if err != nil {
		return nil, err
	}
	if !absURL(uma.ClaimsInteractionEndpoint) {
		return nil, oxdErr(oxdclient.CodeNoUMADiscoveryResponse, descNoUMADiscovery+" (no claims_interaction_endpoint)")
	}
	state := randomToken()
	rec := stateRecord{kind: recClaims}
	if err := e.store.PutValue(ctx, valueKey(keyState, site.OxdID, state), rec.encode(), e.cfg.StateTTL); err != nil {
		return nil, fmt.Errorf("store state: %w", err)
	}
	var q query
	q.add("client_id", site.ClientID)
	q.add("ticket", ticket)
	q.add("claims_redirect_uri", redirect)
	q.add("state", state)
	return claimsGatheringAnswer{URL: nstr(withQuery(uma.ClaimsInteractionEndpoint, q)), State: nstr(state)}, nil
}
