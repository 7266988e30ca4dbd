package devop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// PolicyRequest is what a UMA policy decides on: one permission of a
// permission ticket, requested by a client at the token endpoint with the
// uma-ticket grant.
type PolicyRequest struct {
	// ClientID is the client asking for the RPT.
	ClientID string
	// ResourceID is the registered resource (its _id).
	ResourceID string
	// Scopes are the resource scopes requested for it.
	Scopes []string
	// Claims are the requesting party's claims gathered so far for this
	// ticket: from the claims-gathering page, a pushed ID token
	// (claim_token) or a PCT. Never nil.
	Claims map[string]string
}

type policyEffect int

const (
	effectDeny policyEffect = iota // the zero value denies
	effectGrant
	effectNeedInfo
)

// PolicyDecision is the answer of a UMA policy: Grant, Deny, or NeedInfo
// with the names of the claims still required. The zero value denies.
type PolicyDecision struct {
	effect policyEffect
	claims []string
}

// Grant allows the requested permission.
func Grant() PolicyDecision { return PolicyDecision{effect: effectGrant} }

// Deny refuses the requested permission (403 request_denied).
func Deny() PolicyDecision { return PolicyDecision{effect: effectDeny} }

// NeedInfo asks for more claims about the requesting party (403 need_info
// with a new ticket and the claims-gathering URL). Without any claim name
// it denies: an empty requirement must not turn into a grant (UMA Grant
// §5.6).
func NeedInfo(claims ...string) PolicyDecision {
	cs := []string{}
	for _, c := range claims {
		if c != "" && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return Deny()
	}
	return PolicyDecision{effect: effectNeedInfo, claims: cs}
}

// String describes the decision ("grant", "deny", "need_info(country)").
func (d PolicyDecision) String() string {
	switch d.effect {
	case effectGrant:
		return "grant"
	case effectNeedInfo:
		return "need_info(" + strings.Join(d.claims, ",") + ")"
	default:
		return "deny"
	}
}

// DefaultPolicy is the UMA policy used when OPConfig.UMAPolicy is nil. It
// decides by the names of resource scopes, with the prefixes of the
// reference UMA layer for the certified test OP ("deny…", "claims…"), so
// that one RP test suite can run against both:
//
//   - a scope starting with "deny" is always denied;
//   - a scope starting with "claims" needs the claim "country" (need_info
//     until it has been gathered on the claims page or pushed with an ID
//     token of a user who has it, such as the demo user alice);
//   - every other scope is granted.
func DefaultPolicy(req PolicyRequest) PolicyDecision {
	for _, s := range req.Scopes {
		if strings.HasPrefix(s, "deny") {
			return Deny()
		}
	}
	for _, s := range req.Scopes {
		if strings.HasPrefix(s, "claims") && strings.TrimSpace(req.Claims["country"]) == "" {
			return NeedInfo("country")
		}
	}
	return Grant()
}

// claimTokenFormatIDToken is the claim token format of an OIDC ID token
// (UMA Grant §3.3.1).
const claimTokenFormatIDToken = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"

// Bounds on UMA inputs.
const (
	maxScopesPerResource = 100
	maxPermissionsPerReq = 100
	maxClaimValueLen     = 256
)

// resourceDesc is a resource description (UMA FedAuthz §3.1).
type resourceDesc struct {
	Name            string          `json:"name,omitempty"`
	Type            string          `json:"type,omitempty"`
	Description     string          `json:"description,omitempty"`
	IconURI         string          `json:"icon_uri,omitempty"`
	ResourceScopes  []string        `json:"resource_scopes"`
	ScopeExpression json.RawMessage `json:"scope_expression,omitempty"`
}

func parseResourceDesc(r *http.Request) (resourceDesc, *oauthError) {
	var in struct {
		resourceDesc
		LegacyScopes []string `json:"scopes"`
	}
	if err := readJSON(r, &in); err != nil {
		return resourceDesc{}, oauthErr(http.StatusBadRequest, "invalid_request", err.Error())
	}
	d := in.resourceDesc
	if d.ResourceScopes == nil {
		d.ResourceScopes = in.LegacyScopes
	}
	if d.ResourceScopes == nil {
		return resourceDesc{}, oauthErr(http.StatusBadRequest, "invalid_request", "resource_scopes is required")
	}
	if len(d.ResourceScopes) > maxScopesPerResource {
		return resourceDesc{}, oauthErr(http.StatusBadRequest, "invalid_request", "too many resource_scopes")
	}
	for _, s := range d.ResourceScopes {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n") {
			return resourceDesc{}, oauthErr(http.StatusBadRequest, "invalid_request", "resource scopes must be non-empty and contain no spaces")
		}
	}
	if string(d.ScopeExpression) == "null" {
		d.ScopeExpression = nil
	}
	return d, nil
}

// protectionToken checks the PAT of a protection API request (Bearer
// access token with scope uma_protection) and returns its client_id.
func (op *OP) protectionToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := bearerToken(r)
	var rec *tokenRec
	if ok {
		rec = op.accessTokenWithScope(tok, "uma_protection")
	}
	if rec == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oxdtest", error="invalid_token", scope="uma_protection"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "a PAT (access token with scope uma_protection) is required")
		return "", false
	}
	return rec.clientID, true
}

// handleResourceSet serves resource registration (UMA FedAuthz §3):
// POST/GET on the collection, GET/PUT/DELETE on one resource. Resources
// belong to the client of the PAT that created them; other clients do not
// see them.
func (op *OP) handleResourceSet(w http.ResponseWriter, r *http.Request, id string) {
	owner, ok := op.protectionToken(w, r)
	if !ok {
		return
	}
	if id == "" {
		switch r.Method {
		case http.MethodPost:
			d, oe := parseResourceDesc(r)
			if oe != nil {
				writeErr(w, oe)
				return
			}
			rid := randomID()
			op.mu.Lock()
			op.st.resources[rid] = &resourceRec{owner: owner, desc: d}
			op.mu.Unlock()
			w.Header().Set("Location", op.url(pathResourceSet+"/"+rid))
			writeJSON(w, http.StatusCreated, map[string]string{"_id": rid})
		case http.MethodGet:
			op.mu.Lock()
			ids := []string{}
			for rid, res := range op.st.resources {
				if res.owner == owner {
					ids = append(ids, rid)
				}
			}
			op.mu.Unlock()
			slices.Sort(ids)
			writeJSON(w, http.StatusOK, ids)
		default:
			allowMethods(w, r, http.MethodGet, http.MethodPost)
		}
		return
	}
	if !allowMethods(w, r, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	op.mu.Lock()
	res := op.st.resources[id]
	if res != nil && res.owner != owner {
		res = nil
	}
	var d resourceDesc
	if res != nil {
		d = res.desc
	}
	op.mu.Unlock()
	if res == nil {
		writeOAuthError(w, http.StatusNotFound, "not_found", "no such resource")
		return
	}
	switch r.Method {
	case http.MethodGet:
		out := map[string]any{"_id": id, "resource_scopes": nonNil(d.ResourceScopes)}
		for k, v := range map[string]string{"name": d.Name, "type": d.Type, "description": d.Description, "icon_uri": d.IconURI} {
			if v != "" {
				out[k] = v
			}
		}
		if d.ScopeExpression != nil {
			out["scope_expression"] = d.ScopeExpression
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodPut:
		nd, oe := parseResourceDesc(r)
		if oe != nil {
			writeErr(w, oe)
			return
		}
		op.mu.Lock()
		if cur := op.st.resources[id]; cur != nil && cur.owner == owner {
			cur.desc = nd
		}
		op.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"_id": id})
	case http.MethodDelete:
		op.mu.Lock()
		delete(op.st.resources, id)
		op.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// handlePermission serves the permission endpoint (UMA FedAuthz §4): the
// resource server asks for a ticket for one permission or an array of
// them, on resources its PAT's client registered.
func (op *OP) handlePermission(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	owner, ok := op.protectionToken(w, r)
	if !ok {
		return
	}
	var raw json.RawMessage
	if err := readJSON(r, &raw); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	var reqs []permission
	trimmed := bytes.TrimSpace(raw)
	var err error
	if len(trimmed) > 0 && trimmed[0] == '[' {
		err = json.Unmarshal(trimmed, &reqs)
	} else {
		var one permission
		err = json.Unmarshal(trimmed, &one)
		reqs = []permission{one}
	}
	if err != nil || len(reqs) == 0 || len(reqs) > maxPermissionsPerReq {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "body must be a permission request object or a non-empty array of them")
		return
	}
	op.mu.Lock()
	for i, p := range reqs {
		res := op.st.resources[p.ResourceID]
		if p.ResourceID == "" || res == nil || res.owner != owner {
			op.mu.Unlock()
			writeOAuthError(w, http.StatusBadRequest, "invalid_resource_id", "resource "+fmt.Sprint(i)+" is not registered by this resource server")
			return
		}
		for _, s := range p.Scopes {
			if !slices.Contains(res.desc.ResourceScopes, s) {
				op.mu.Unlock()
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "a requested scope is not registered for resource "+fmt.Sprint(i))
				return
			}
		}
		reqs[i] = permission{ResourceID: p.ResourceID, Scopes: intersect(p.Scopes, p.Scopes)}
	}
	now := op.now()
	op.sweepLocked(now)
	ticket := randomValue()
	op.st.tickets[digestOf(ticket)] = &ticketRec{owner: owner, perms: reqs, claims: map[string]string{}, expires: now.Add(op.cfg.TicketTTL)}
	op.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"ticket": ticket})
}

// takeTicketLocked removes and returns a live ticket; op.mu is held.
func (op *OP) takeTicketLocked(ticket string, now time.Time) *ticketRec {
	k := digestOf(ticket)
	t := op.st.tickets[k]
	delete(op.st.tickets, k)
	if t == nil || now.After(t.expires) {
		return nil
	}
	return t
}

// newTicketLocked stores t under a fresh ticket value; op.mu is held.
func (op *OP) newTicketLocked(t *ticketRec, now time.Time) string {
	v := randomValue()
	t.expires = now.Add(op.cfg.TicketTTL)
	op.st.tickets[digestOf(v)] = t
	return v
}

// claimsFromIDToken verifies a pushed ID token issued by this OP and
// returns the claims it vouches for: its string claims and the stored
// string claims of its user.
func (op *OP) claimsFromIDToken(token string) (map[string]string, error) {
	claims, err := op.verifyOwnJWT(token)
	if err != nil {
		return nil, err
	}
	exp, _ := claims["exp"].(float64)
	if op.now().Unix() > int64(exp) {
		return nil, fmt.Errorf("%w: expired", errBadJWT)
	}
	out := map[string]string{}
	for k, v := range claims {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	sub, _ := claims["sub"].(string)
	if u, ok := op.userBySubject(sub); ok {
		for k, v := range u.Claims {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	return out, nil
}

// grantUMATicket serves the uma-ticket grant (UMA Grant §3.3.1–§3.3.6).
func (op *OP) grantUMATicket(w http.ResponseWriter, c *clientRec, form url.Values) {
	if c.public() {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "public clients may not use the uma-ticket grant")
		return
	}
	ticket := form.Get("ticket")
	if ticket == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "ticket is required")
		return
	}
	claimToken, claimFormat := form.Get("claim_token"), form.Get("claim_token_format")
	if (claimToken == "") != (claimFormat == "") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "claim_token and claim_token_format go together")
		return
	}

	op.mu.Lock()
	now := op.now()
	t := op.takeTicketLocked(ticket, now) // single use, whatever happens next
	var oe *oauthError
	claims := map[string]string{}
	var upgrade *tokenRec
	switch {
	case t == nil:
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "invalid or expired ticket")
	case t.client != "" && t.client != c.id:
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "the ticket was issued to another client")
	default:
		if pct := form.Get("pct"); pct != "" {
			rec := op.tokenLocked(pct, now)
			if rec == nil || rec.kind != kindPCT || rec.clientID != c.id {
				oe = oauthErr(http.StatusBadRequest, "invalid_grant", "invalid or expired pct")
				break
			}
			for k, v := range rec.claims {
				claims[k] = v
			}
		}
		for k, v := range t.claims {
			claims[k] = v
		}
		if rpt := form.Get("rpt"); rpt != "" {
			if rec := op.tokenLocked(rpt, now); rec != nil && rec.kind == kindRPT && rec.clientID == c.id {
				upgrade = rec
			}
		}
		for i, p := range t.perms {
			if op.st.resources[p.ResourceID] == nil {
				oe = oauthErr(http.StatusBadRequest, "invalid_grant", "a resource of the ticket is no longer registered")
				break
			}
			t.perms[i].Scopes = slices.Clone(p.Scopes)
		}
		if oe != nil {
			break
		}
		// Requested scopes (UMA Grant §3.3.1) are added to the resources
		// that registered them; one that no resource has is invalid_scope.
		for _, s := range splitScope(umaScopeParam(form.Get("scope"))) {
			found := false
			for i, p := range t.perms {
				if slices.Contains(op.st.resources[p.ResourceID].desc.ResourceScopes, s) {
					found = true
					if !slices.Contains(p.Scopes, s) {
						t.perms[i].Scopes = append(t.perms[i].Scopes, s)
					}
				}
			}
			if !found {
				oe = oauthErr(http.StatusBadRequest, "invalid_scope", "a requested scope is not available for the ticket's resources")
				break
			}
		}
	}
	op.mu.Unlock()
	if oe != nil {
		writeErr(w, oe)
		return
	}
	if claimToken != "" {
		if claimFormat != claimTokenFormatIDToken {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unsupported claim_token_format")
			return
		}
		pushed, err := op.claimsFromIDToken(claimToken)
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the claim_token is not a valid ID token of this OP")
			return
		}
		for k, v := range pushed {
			claims[k] = v
		}
	}

	denied, required := false, []string{}
	for _, p := range t.perms {
		d := op.decide(PolicyRequest{ClientID: c.id, ResourceID: p.ResourceID, Scopes: slices.Clone(p.Scopes), Claims: cloneClaims(claims)})
		switch d.effect {
		case effectGrant:
		case effectNeedInfo:
			for _, n := range d.claims {
				if !slices.Contains(required, n) {
					required = append(required, n)
				}
			}
		default:
			denied = true
		}
	}
	if denied {
		writeOAuthError(w, http.StatusForbidden, "request_denied", "")
		return
	}

	op.mu.Lock()
	now = op.now()
	if len(required) > 0 {
		nt := op.newTicketLocked(&ticketRec{owner: t.owner, perms: t.perms, claims: claims, required: required, client: c.id}, now)
		op.mu.Unlock()
		rc := make([]map[string]any, 0, len(required))
		for _, n := range required {
			rc = append(rc, map[string]any{
				"claim_token_format": []string{claimTokenFormatIDToken},
				"claim_type":         "string",
				"friendly_name":      n,
				"issuer":             []string{op.issuer},
				"name":               n,
			})
		}
		writeJSON(w, http.StatusForbidden, map[string]any{
			"error":           "need_info",
			"ticket":          nt,
			"required_claims": rc,
			"redirect_user":   op.url(pathClaims),
		})
		return
	}
	var rpt string
	var exp time.Time
	upgraded := false
	if upgrade != nil && op.tokenLocked(form.Get("rpt"), now) == upgrade {
		rpt, exp, upgraded = form.Get("rpt"), upgrade.expires, true
		upgrade.perms = mergePermissions(upgrade.perms, t.perms, exp.Unix())
	} else {
		exp = now.Add(op.cfg.AccessTokenTTL)
		rpt = op.newTokenLocked(&tokenRec{
			kind: kindRPT, clientID: c.id, issued: now, expires: exp,
			perms: mergePermissions(nil, t.perms, exp.Unix()),
		})
	}
	pct := op.newTokenLocked(&tokenRec{
		kind: kindPCT, clientID: c.id, claims: claims, issued: now, expires: now.Add(op.cfg.RefreshTokenTTL),
	})
	op.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rpt,
		"token_type":   "Bearer",
		"expires_in":   int64(exp.Sub(now) / time.Second),
		"pct":          pct,
		"upgraded":     upgraded,
	})
}

// umaScopeParam returns the scope parameter of an uma-ticket request.
// oxd-server 3.1.4 URL-encodes it once more before form encoding (and
// Gluu's AS decodes it again), so a value that still holds percent
// escapes or '+' separators is decoded once, for compatibility with
// clients that copy oxd.
func umaScopeParam(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// decide runs the policy; a panicking policy denies.
func (op *OP) decide(req PolicyRequest) (d PolicyDecision) {
	defer func() {
		if v := recover(); v != nil {
			op.log.Error("devop: UMA policy panicked; denying", "resource_id", req.ResourceID)
			d = Deny()
		}
	}()
	return op.policy(req)
}

func cloneClaims(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mergePermissions adds perms to base (union of scopes per resource) and
// sets every permission's exp.
func mergePermissions(base, perms []permission, exp int64) []permission {
	out := make([]permission, 0, len(base)+len(perms))
	for _, p := range base {
		out = append(out, permission{ResourceID: p.ResourceID, Scopes: slices.Clone(p.Scopes), Exp: exp})
	}
	for _, p := range perms {
		i := slices.IndexFunc(out, func(q permission) bool { return q.ResourceID == p.ResourceID })
		if i < 0 {
			out = append(out, permission{ResourceID: p.ResourceID, Scopes: slices.Clone(p.Scopes), Exp: exp})
			continue
		}
		for _, s := range p.Scopes {
			if !slices.Contains(out[i].Scopes, s) {
				out[i].Scopes = append(out[i].Scopes, s)
			}
		}
	}
	return out
}

// handleClaims serves the claims interaction endpoint (UMA Grant §3.3.2,
// §3.3.3). GET shows a form asking for the claims the policy requires;
// the POST answers with a redirect to claims_redirect_uri carrying a new
// ticket (which holds the gathered claims and works only for this client)
// and the client's state. claims_redirect_uri must exactly match one of
// the client's registered claims_redirect_uris or redirect_uris; on any
// problem before that is known, an error page is shown, never a redirect.
func (op *OP) handleClaims(w http.ResponseWriter, r *http.Request, _ string) {
	switch r.Method {
	case http.MethodGet:
		op.claimsForm(w, r)
	case http.MethodPost:
		op.claimsSubmit(w, r)
	default:
		allowMethods(w, r, http.MethodGet, http.MethodPost)
	}
}

const claimsFormField = "oxdtest_interaction"

func (op *OP) claimsForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if noRepeats(q) != nil {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "A parameter is repeated.")
		return
	}
	c := op.clientByID(q.Get("client_id"))
	if c == nil {
		renderMessage(w, http.StatusBadRequest, "Unknown client", "The application that sent you here is not registered.")
		return
	}
	redirect := q.Get("claims_redirect_uri")
	if redirect == "" || !(slices.Contains(c.meta.ClaimsRedirectURIs, redirect) || slices.Contains(c.meta.RedirectURIs, redirect)) {
		renderMessage(w, http.StatusBadRequest, "Invalid redirect URI", "The claims_redirect_uri is not registered for this application.")
		return
	}
	state := q.Get("state")
	if len(state) > maxParamLen {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "The state parameter is too long.")
		return
	}
	ticket := q.Get("ticket")
	op.mu.Lock()
	now := op.now()
	t := op.st.tickets[digestOf(ticket)]
	var perms []permission
	var claims map[string]string
	var required []string
	valid := ticket != "" && t != nil && !now.After(t.expires) && (t.client == "" || t.client == c.id)
	if valid {
		perms, claims, required = slices.Clone(t.perms), cloneClaims(t.claims), slices.Clone(t.required)
	}
	op.mu.Unlock()
	if !valid {
		renderMessage(w, http.StatusBadRequest, "Request expired", "The permission ticket is unknown or expired. Go back to the application and try again.")
		return
	}
	if len(required) == 0 {
		for _, p := range perms {
			d := op.decide(PolicyRequest{ClientID: c.id, ResourceID: p.ResourceID, Scopes: slices.Clone(p.Scopes), Claims: cloneClaims(claims)})
			if d.effect == effectNeedInfo {
				for _, n := range d.claims {
					if !slices.Contains(required, n) {
						required = append(required, n)
					}
				}
			}
		}
	}
	if len(required) == 0 {
		// Nothing to ask: hand a fresh ticket back straight away.
		op.finishClaims(w, r, c.id, ticket, redirect, state, nil)
		return
	}
	binding := op.browserBinding(w, r)
	id := op.newInteraction(&interaction{
		kind: iaClaims, browser: binding, clientID: c.id, ticket: ticket,
		claimsRedirect: redirect, claimsState: state, required: required,
	})
	renderPage(w, http.StatusOK, "claims", pageData{
		Title: "More information needed", Client: c.meta.ClientName, Action: op.url(pathClaims),
		Interaction: id, Claims: required,
	})
}

// claimsSubmit receives the claims form. Its hidden field has a name of
// its own (claimsFormField) so that no claim name collides with it; a
// missing value shows the form again.
func (op *OP) claimsSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	id := r.PostForm.Get(claimsFormField)
	ia := op.interactionByID(id, iaClaims)
	if ia == nil {
		renderMessage(w, http.StatusBadRequest, "Request expired", "This form has expired or was already used. Go back to the application and try again.")
		return
	}
	if !op.browserMatches(r, ia) {
		renderMessage(w, http.StatusForbidden, "Invalid request", "This form was not opened in this browser.")
		return
	}
	gathered := map[string]string{}
	for _, n := range ia.required {
		v := strings.TrimSpace(r.PostForm.Get(n))
		if v == "" || len(v) > maxClaimValueLen {
			c := op.clientByID(ia.clientID)
			name := ""
			if c != nil {
				name = c.meta.ClientName
			}
			renderPage(w, http.StatusOK, "claims", pageData{
				Title: "More information needed", Client: name, Action: op.url(pathClaims),
				Interaction: id, Claims: ia.required, Error: "Please fill in every field (at most 256 characters).",
			})
			return
		}
		gathered[n] = v
	}
	if !op.takeInteraction(id) {
		renderMessage(w, http.StatusBadRequest, "Request expired", "This form was already used.")
		return
	}
	op.finishClaims(w, r, ia.clientID, ia.ticket, ia.claimsRedirect, ia.claimsState, gathered)
}

// finishClaims replaces the ticket by a new one that carries the gathered
// claims and is bound to the client, then redirects to the client.
func (op *OP) finishClaims(w http.ResponseWriter, r *http.Request, clientID, ticket, redirect, state string, gathered map[string]string) {
	op.mu.Lock()
	now := op.now()
	t := op.takeTicketLocked(ticket, now)
	if t == nil || (t.client != "" && t.client != clientID) {
		op.mu.Unlock()
		renderMessage(w, http.StatusBadRequest, "Request expired", "The permission ticket expired meanwhile. Go back to the application and try again.")
		return
	}
	claims := cloneClaims(t.claims)
	for k, v := range gathered {
		claims[k] = v
	}
	nt := op.newTicketLocked(&ticketRec{owner: t.owner, perms: t.perms, claims: claims, client: clientID}, now)
	op.mu.Unlock()
	q := url.Values{"ticket": {nt}}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, appendQuery(redirect, q), redirectStatus(r))
}
